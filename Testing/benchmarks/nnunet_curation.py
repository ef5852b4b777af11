"""The curation benchmark's arms with nnU-Net v2 as the trainer, on the same planted noise as the bundled trainer.

Usage:
    python Testing/benchmarks/nnunet_curation.py --build-slabs slabs      # slabs/ct_manifest.csv, the reported cohort
    auv benchmark-curation slabs/ct_manifest.csv --out BENCH ...               # planting, scores, the bundled arms
    python Testing/benchmarks/nnunet_curation.py --dataset slabs/ct_manifest.csv --bench BENCH --work WORK
        [--seeds 0,1,2] [--configuration 2d] [--epochs 5] [--iterations 50] [--lr 0.01] [--arms noisy,duo:disagree] [--device cpu]

``BENCH`` is a folder written by ``auv benchmark-curation DATASET --out BENCH ...``: its planted noisy
training cases (``planted.csv``), their scores (``scores/``, a results folder), its settings and the
bundled trainer's Dice (``benchmark_runs.csv``, read when the benchmark has finished). Nothing is planted
or scored again: for the arms ``noisy``, ``oracle``, the best filter (the filter arm with the best
precision, then recall, at finding the planted cases, as ``duo+filter`` picks it) and ``duo:<form>``,
each with the exclusions the benchmark's own rule gives (``auvcore.benchmark.curation.arm_exclusions``),
the script

1. exports the arm's training cases with ``auv nnunet export`` (the benchmark's scores folder, the arm's
   exclusions, the benchmark's ``--classes``) and runs ``nnUNetv2_plan_and_preprocess`` on them;
2. trains nnU-Net on every case (fold ``all``) for each seed: nnU-Net's own trainer for the arms without
   DUO, ``nnUNetTrainerDUO`` (``auv train``'s form and warm-up) for the DUO arm, both at the budget
   ``--epochs`` x ``--iterations`` (``nnunet_trainers/auv_benchmark_trainers.py``, seeded). With
   ``--plans cpu`` (the default) nnU-Net's 2d plans are edited to the bundled arms' CPU budget (6 mm in-plane,
   64 x 64 patches, batch 16, 8 features in the first of nnU-Net's 5 stages: :data:`CPU_2D`), written as a
   plans file of their own, as nnU-Net documents; ``--plans nnunet`` keeps nnU-Net's plans;
3. segments the clean test cases (the same split as the benchmark's) with ``nnUNetv2_predict`` and takes
   the Dice per class against their clean labels, as the benchmark does.

It prints, per arm, the Dice per seed with mean and sd for nnU-Net and for the bundled trainer (from
``BENCH``), each trainer's ranking of the arms and whether the rankings agree, and writes
``WORK/nnunet_benchmark.csv``. Every step is resumable: exported datasets, preprocessing, finished
trainings and predictions are kept in ``WORK`` and reused (a stopped training goes on with ``--c``).

On a GPU, ``--configuration 3d_fullres --device cuda`` runs the 3d version (``nnunet_curation_gpu.sh``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from auvcore.benchmark.curation import arm_exclusions, class_dice, filter_case_scores, split_cases
from auvcore.benchmark.settings import BenchmarkSettings
from auvcore.curation import ExclusionList, save_exclusions
from auvcore.results import read_results
from auvcore.datasets import discover_cases
from auvcore.files import write_json_atomic
from auvcore.nnunet.discovery import trainer_folder
from auvcore.nnunet.export import export_dataset

TRAINERS = Path(__file__).resolve().parent / "nnunet_trainers"
SAMPLE_DIR = Path(__file__).resolve().parents[1] / "data" / "sample_cohort"
PLAIN, DUO = "nnUNetTrainer_AUVBudget", "nnUNetTrainerDUO_AUVBudget"


def _script(name: str) -> str:
    return shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name) or name


def _run(command: list[str], env: dict[str, str], log: Path) -> None:
    """Run one nnU-Net step, its output in ``log``; a failure stops the benchmark with the log's tail."""
    started = time.monotonic()
    with log.open("w") as stream:
        code = subprocess.call(command, env=env, stdout=stream, stderr=subprocess.STDOUT)
    if code != 0:
        raise SystemExit(f"{' '.join(command)} failed ({code}); see {log}:\n" + "".join(log.read_text().splitlines(True)[-30:]))
    print(f"  {Path(command[0]).name} {' '.join(command[1:4])}: {time.monotonic() - started:.0f} s", flush=True)


def load_settings(path: Path) -> BenchmarkSettings:
    """The benchmark's settings as ``auv benchmark-curation`` writes them (``settings.json``)."""
    data = json.loads(path.read_text())
    listed = ("seeds", "filters", "duo_forms", "kinds", "in_plane_spacing", "classes")
    return BenchmarkSettings(**{k: tuple(v) if k in listed and v is not None else v for k, v in data.items()})


def compared_arms(bench: Path, settings: BenchmarkSettings, seed: int) -> dict[str, set[str]]:
    """Each compared arm's excluded training cases, by the benchmark's own rule (:func:`arm_exclusions`): ``noisy``,
    ``oracle``, the filter that found the planted cases best (precision, then recall, as ``duo+filter`` picks it)
    and ``duo:<form>``."""
    planted = set(pd.read_csv(bench / "planted.csv")["case_id"].astype(str))
    results = filter_case_scores(read_results(bench / "scores"), bench / "scores", settings.filters, settings.aggregate)
    arms = arm_exclusions(results, planted, settings, seed)
    filters = [name for name in arms if name.startswith("filter:")]
    if not filters:
        raise SystemExit(f"{bench} was run without a filter; the comparison needs one")

    def quality(name: str) -> tuple[float, float]:
        hits = len(arms[name] & planted)
        return (hits / len(arms[name]) if arms[name] else 0.0, hits / len(planted) if planted else 0.0)

    best = max(filters, key=quality)
    return {"noisy": arms["noisy"], "oracle": arms["oracle"], best: arms[best], f"duo:{settings.duo_form}": set()}


def bundled_dice(bench: Path) -> pd.DataFrame | None:
    """The bundled trainer's Dice per arm, seed and class (``benchmark_runs.csv``), when the benchmark has finished."""
    path = bench / "benchmark_runs.csv"
    return pd.read_csv(path) if path.is_file() else None


def _environment(work: Path) -> dict[str, str]:
    return {**os.environ, "nnUNet_raw": str(work / "raw"), "nnUNet_preprocessed": str(work / "preprocessed"),
            "nnUNet_results": str(work / "results"), "nnUNet_def_n_proc": "1",
            "nnUNet_extTrainer": os.pathsep.join([str(trainer_folder()), str(TRAINERS)])}


#: The 2d CPU budget, as the bundled arms were trained (``--in-plane-spacing 6 --batch 16 --base-filters 8``): a plans
#: file beside nnU-Net's own (nnU-Net's documented way to change its plans), used with ``--plans cpu``.
CPU_PLANS = "nnUNetPlans_cpu"
CPU_2D = {"spacing": [6.0, 6.0], "patch_size": [64, 64], "batch_size": 16, "features_per_stage": [8, 16, 32, 64, 128]}


def cpu_plans(plans: dict) -> dict:
    """nnU-Net's plans with its 2d configuration at the CPU budget (:data:`CPU_2D`); the network stays nnU-Net's U-Net
    (its stages, kernels, strides and depth for a 64 x 64 patch are those nnU-Net plans: 5 stages down to 4 x 4)."""
    budget = json.loads(json.dumps(plans))
    budget["plans_name"] = CPU_PLANS
    config = budget["configurations"]["2d"]
    config.update({key: CPU_2D[key] for key in ("spacing", "patch_size", "batch_size")}, data_identifier=f"{CPU_PLANS}_2d")
    architecture = config["architecture"]["arch_kwargs"]
    if architecture["n_stages"] != len(CPU_2D["features_per_stage"]):
        raise SystemExit(f"nnU-Net planned {architecture['n_stages']} stages; the CPU budget is made for 5")
    architecture["features_per_stage"] = CPU_2D["features_per_stage"]
    architecture["strides"] = [[1, 1]] + [[2, 2]] * 4
    budget["configurations"] = {"2d": config}
    return budget


def prepare(bench: Path, work: Path, excluded: frozenset[str], dataset_id: int, classes: list[str] | None,
            configuration: str, plans: str, env: dict[str, str], exclusions: Path) -> None:
    """Export and preprocess the training cases of one exclusion set (kept when done before)."""
    name = f"Dataset{dataset_id:03d}_Bench"
    if not (work / "raw" / name).is_dir():
        exported = export_dataset(bench / "scores", dataset_id, "Bench", raw=work / "raw", exclusions=exclusions,
                                  classes=classes)
        assert set(exported.excluded) == excluded, (exported.excluded, excluded)
        print(exported.describe(), flush=True)
    folder = work / "preprocessed" / name
    planning = {**env, "nnUNet_n_proc_DA": "1"}
    if not (folder / f"{plans}_{configuration}").is_dir():
        if plans == CPU_PLANS:
            if not (folder / "nnUNetPlans.json").is_file():
                _run([_script("nnUNetv2_plan_and_preprocess"), "-d", str(dataset_id), "-c", configuration, "-npfp", "1",
                      "--no_pp"], planning, work / "logs" / f"plan_{dataset_id}.log")
            write_json_atomic(folder / f"{CPU_PLANS}.json", cpu_plans(json.loads((folder / "nnUNetPlans.json").read_text())))
            _run([_script("nnUNetv2_preprocess"), "-d", str(dataset_id), "-plans_name", CPU_PLANS, "-c", configuration,
                  "-np", "1"], planning, work / "logs" / f"preprocess_{dataset_id}.log")
        else:
            _run([_script("nnUNetv2_plan_and_preprocess"), "-d", str(dataset_id), "-c", configuration, "-np", "1",
                  "-npfp", "1"], planning, work / "logs" / f"plan_{dataset_id}.log")


def test_dice(prediction: Path, tests, label_values: dict[str, int], classes: list[str] | None) -> dict[str, float]:
    """Mean Dice per class over the clean test cases (as the benchmark's ``_evaluate``: NaN where neither has it)."""
    per_case = []
    for spec in tests:
        reference = sitk.GetArrayFromImage(sitk.ReadImage(str(spec.label)))
        predicted = sitk.GetArrayFromImage(sitk.ReadImage(str(prediction / f"{spec.case_id}.nii.gz")))
        reference_ids = {spec.name_of(int(v)): int(v) for v in np.unique(reference) if v != 0}
        reference_ids = {k: v for k, v in reference_ids.items() if k in label_values and (classes is None or k in classes)}
        per_case.append(class_dice(predicted, reference, label_values, reference_ids))
    return pd.DataFrame(per_case).mean(skipna=True).to_dict()


def ranking(means: pd.Series) -> list[str]:
    return means.sort_values(ascending=False, kind="stable").index.tolist()


def build_slabs(folder: Path) -> Path:
    """The README's benchmark cohort: the sample CT's 14 slabs (7 slabs, each with both labelings), their manifest."""
    from auvcore.sample_data import build_slab_cohort

    manifest = build_slab_cohort(SAMPLE_DIR, folder)
    rows = [line for line in manifest.read_text().splitlines() if not line.startswith("mr_")]
    ct_manifest = folder / "ct_manifest.csv"
    ct_manifest.write_text("\n".join(rows) + "\n")
    return ct_manifest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-slabs", metavar="FOLDER", help="write the CT slab cohort's manifest to FOLDER and stop")
    parser.add_argument("--dataset", help="the dataset given to auv benchmark-curation")
    parser.add_argument("--bench", help="the folder auv benchmark-curation wrote")
    parser.add_argument("--work", help="nnU-Net's folders and this benchmark's output")
    parser.add_argument("--seeds", default=None, help="comma-separated seeds (default: the benchmark's)")
    parser.add_argument("--settings", help="the benchmark's settings.json (default: BENCH/settings.json, written when it ends)")
    parser.add_argument("--configuration", default="2d")
    parser.add_argument("--plans", choices=("cpu", "nnunet"), default="cpu",
                        help="cpu: the 2d CPU budget (6 mm, 64 x 64, batch 16, 8 base features); nnunet: nnU-Net's own plans")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=50, help="training iterations per epoch")
    parser.add_argument("--val-iterations", type=int, default=2, help="nnU-Net's pseudo-Dice iterations per epoch")
    parser.add_argument("--lr", type=float, default=None, help="initial learning rate (default: nnU-Net's 0.01)")
    parser.add_argument("--arms", default=None,
                        help="comma-separated arms to train, e.g. noisy,duo:disagree (default: noisy, oracle, the best filter, DUO)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--first-id", type=int, default=600, help="nnU-Net dataset ids from this one on")
    args = parser.parse_args()
    if args.build_slabs:
        print(build_slabs(Path(args.build_slabs)))
        return 0
    if not (args.dataset and args.bench and args.work):
        parser.error("--dataset, --bench and --work are needed (or --build-slabs)")

    bench, work = Path(args.bench).resolve(), Path(args.work).resolve()
    (work / "logs").mkdir(parents=True, exist_ok=True)
    (work / "exclusions").mkdir(exist_ok=True)
    settings = load_settings(Path(args.settings) if args.settings else bench / "settings.json")
    classes = list(settings.classes) if settings.classes else None
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else list(settings.seeds)
    _, tests = split_cases(discover_cases(args.dataset), settings.test_fraction, settings.split)
    env = _environment(work)
    budget = {**env, "nnUNet_n_proc_DA": "0", "AUV_BENCH_EPOCHS": str(args.epochs),
              "AUV_BENCH_ITERATIONS": str(args.iterations), "AUV_BENCH_VAL_ITERATIONS": str(args.val_iterations)}
    if args.lr is not None:
        budget["AUV_BENCH_LR"] = str(args.lr)
    images = work / "test_images"
    images.mkdir(exist_ok=True)
    for spec in tests:
        target = images / f"{spec.case_id}_0000.nii.gz"
        if not target.exists():
            sitk.WriteImage(sitk.ReadImage(str(spec.image)), str(target))
    plans = CPU_PLANS if args.plans == "cpu" else "nnUNetPlans"
    if plans == CPU_PLANS and args.configuration != "2d":
        parser.error("--plans cpu is a 2d budget; use --plans nnunet for 3d_fullres")
    print(f"nnU-Net {args.configuration} ({plans}), {args.epochs} x {args.iterations} iterations, seeds {seeds}; "
          f"{len(tests)} clean test cases", flush=True)

    datasets: dict[frozenset[str], int] = {}
    rows = []
    for seed in seeds:
        for arm, excluded in compared_arms(bench, settings, seed).items():
            if args.arms and arm not in args.arms.split(","):
                continue
            key = frozenset(excluded)
            if key not in datasets:
                datasets[key] = args.first_id + len(datasets)
                decisions = ExclusionList()
                for case_id in sorted(key):
                    decisions.exclude(case_id, None, note=f"benchmark arm {arm}")
                exclusions = work / "exclusions" / f"{datasets[key]}.json"
                save_exclusions(exclusions, decisions)
                prepare(bench, work, key, datasets[key], classes, args.configuration, plans, env, exclusions)
            dataset_id = datasets[key]
            trainer = DUO if arm.startswith("duo:") else PLAIN
            seeded = {**env, "nnUNet_results": str(work / "results" / f"s{seed}")}  # nnU-Net's model folder has no seed
            model = (Path(seeded["nnUNet_results"]) / f"Dataset{dataset_id:03d}_Bench" /
                     f"{trainer}__{plans}__{args.configuration}")
            stem = f"{dataset_id}_{trainer}_s{seed}"
            if not (model / "fold_all" / "checkpoint_final.pth").is_file():
                print(f"{arm} seed {seed}: training {trainer} on dataset {dataset_id} ({len(key)} excluded)", flush=True)
                resume = ["--c"] if (model / "fold_all" / "checkpoint_latest.pth").is_file() else []
                _run([_script("nnUNetv2_train"), str(dataset_id), args.configuration, "all", "-tr", trainer, "-p", plans,
                      "-device", args.device, *resume], {**budget, "nnUNet_results": seeded["nnUNet_results"], "AUV_BENCH_SEED": str(seed)},
                     work / "logs" / f"train_{stem}.log")
            prediction = work / "predictions" / stem
            if not all((prediction / f"{spec.case_id}.nii.gz").is_file() for spec in tests):
                _run([_script("nnUNetv2_predict"), "-i", str(images), "-o", str(prediction), "-d", str(dataset_id),
                      "-c", args.configuration, "-f", "all", "-tr", trainer, "-p", plans, "-device", args.device,
                      "-npp", "0", "-nps", "0"], seeded, work / "logs" / f"predict_{stem}.log")
            labels = json.loads((model / "dataset.json").read_text())["labels"]
            dice = test_dice(prediction, tests, {k: int(v) for k, v in labels.items() if k != "background"}, classes)
            for cls, value in dice.items():
                rows.append({"arm": arm, "seed": seed, "class": cls, "nnunet_dice": value, "excluded": len(key),
                             "trainer": trainer, "dataset": dataset_id})
            print(f"{arm} seed {seed}: nnU-Net mean Dice {np.nanmean(list(dice.values())):.4f}", flush=True)

    table = pd.DataFrame(rows)
    bundled = bundled_dice(bench)
    if bundled is None:
        print(f"{bench}/benchmark_runs.csv is not there yet (auv benchmark-curation has not finished): no bundled figures")
        table["bundled_dice"] = np.nan
    else:
        bundled = bundled.groupby(["arm", "seed", "class"], as_index=False)["dice"].mean().rename(columns={"dice": "bundled_dice"})
        table = table.merge(bundled, on=["arm", "seed", "class"], how="left")
    table.to_csv(work / "nnunet_benchmark.csv", index=False)
    per_seed = table.groupby(["arm", "seed"], sort=False)[["nnunet_dice", "bundled_dice"]].mean()
    lines = ["| arm | nnU-Net Dice per seed | nnU-Net mean ± sd | bundled Dice per seed | bundled mean ± sd |",
             "| --- | --- | --- | --- | --- |"]
    means = {}
    for arm, values in per_seed.groupby(level="arm", sort=False):
        cells = []
        for column in ("nnunet_dice", "bundled_dice"):
            series = values[column].to_numpy(dtype=float)
            sd = f" ± {np.std(series, ddof=1):.3f}" if len(series) > 1 else ""
            cells += [" / ".join(f"{v:.3f}" for v in series), f"{np.mean(series):.3f}{sd}"]
            means.setdefault(column, {})[arm] = float(np.mean(series))
        lines.append(f"| `{arm}` | " + " | ".join(cells) + " |")
    print("\n".join(lines))
    nnunet_order, bundled_order = ranking(pd.Series(means["nnunet_dice"])), ranking(pd.Series(means["bundled_dice"]))
    print(f"ranking, nnU-Net: {' > '.join(nnunet_order)}\nranking, bundled: {' > '.join(bundled_order)}\n"
          f"the rankings {'agree' if nnunet_order == bundled_order else 'differ'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
