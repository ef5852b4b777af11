"""Does curation give a better model? Plant label errors in the training cases, filter, train, test on clean labels.

The cohort is split into training and test cases (``ordered``: the last cases
of the manifest are the test ones, which keeps slabs of one scan spatially
apart; or ``random``). A seeded fraction of the *training* cases gets one label
corruption each (``auvcore.audit.corruptions``, the audit's kinds and
magnitudes); test labels stay clean. The noisy training cohort is scored once
with every scorer, then each arm trains the 2d configuration with each seed:

* ``noisy``: every training case (the baseline);
* ``oracle``: the planted cases removed (the ceiling of filtering);
* ``random``: a random share removed (the floor);
* ``filter:<scorer>``: the cases above the scorer's ``keep`` quantile removed, on
  case scores made with the benchmark's ``aggregate``, or with another one for
  a filter written ``<scorer>@<aggregate>`` (``auv@paper``: the paper's AUV)
  (``filter:cleanlab`` reads out-of-fold probabilities of ``oof_folds`` models
  the benchmark trains on the noisy training cases first, :mod:`auvcore.duo.oof`);
* ``duo:<form>``: every case, with DUO in each form of ``duo_forms``;
* ``duo+filter``: DUO (``duo_form``) after the filter that found the planted cases best (no such arm without a filter).

Arms that exclude the same cases with the same loss and seed share one trained model.

Per arm: Dice per class on the clean test cases (mean and sd over seeds), the
mean Dice's gain over ``noisy`` with a paired 95% confidence interval over
seeds, the share of the oracle's gain it recovers, and the precision and
recall of its exclusions at finding the planted cases.

The clean test cases are scored too (in a folder of their own, so that they do
not move the training cases' scales), and each scorer's class and case values
are correlated with the ``noisy`` model's Dice on them, S also with the number
of slices a class spans (:mod:`.correlations`; the paper's Table 4).
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import pandas as pd

from ..audit.runner import PlantedCase, plant_repeat
from ..audit.settings import LABEL_KINDS, AuditSettings
from ..cohort import CaseScorer, ScoreSettings, score_cohort
from ..curation import ExclusionList, save_exclusions
from ..datasets import CaseSpec
from ..errors import InputError
from ..files import atomic_write_bytes, write_json_atomic
from ..results.structures import read_structures
from ..scales import ClassSetWarning
from ..scorers.registry import CLEANLAB, parse_scorers
from .correlations import score_correlations
from .settings import BenchmarkSettings, split_filter

if TYPE_CHECKING:
    from ..duo.config import TrainConfig


def split_cases(specs: Sequence[CaseSpec], fraction: float, how: str, seed: int = 0) -> tuple[list[CaseSpec], list[CaseSpec]]:
    """(training, test) cases; at least one of each."""
    if len(specs) < 4:
        raise InputError(specs[0].image if specs else "dataset", f"a curation benchmark needs at least 4 cases, got {len(specs)}")
    count = min(len(specs) - 2, max(1, round(fraction * len(specs))))
    order = list(range(len(specs))) if how == "ordered" else list(np.random.default_rng(seed).permutation(len(specs)))
    test = set(order[-count:])
    return [s for i, s in enumerate(specs) if i not in test], [s for i, s in enumerate(specs) if i in test]


def _write_manifest(specs: Sequence[CaseSpec], folder: Path) -> Path:
    """A manifest of the cases, their class names in a labels file beside it."""
    names: dict[int, str] = {}
    for spec in specs:
        names.update(spec.class_names)
    write_json_atomic(folder / "labels.json", {"labels": {"background": 0, **{name: i for i, name in sorted(names.items())}}})
    rows = ["case_id,image,label,label_names", *(f"{s.case_id},{s.image},{s.label},labels.json" for s in specs)]
    atomic_write_bytes(folder / "manifest.csv", ("\n".join(rows) + "\n").encode())
    return folder / "manifest.csv"


def filter_case_scores(results: pd.DataFrame, scores: Path, filters: Sequence[str], aggregate: str) -> pd.DataFrame:
    """The results table with a column per filter written ``scorer@aggregate``: its case scores re-aggregated
    from the case records in ``scores`` (the other filters read the scorer's own column)."""
    from ..cohort.stage import scorer_case_scores
    from ..results.case_record import read_case_record
    from ..results.layout import ResultsFolder

    own = [name for name in filters if "@" in name]
    if not own:  # every filter reads its scorer's column: no case record to read
        return results
    folder = ResultsFolder(scores)
    records = [read_case_record(folder.case_json(str(case_id))) for case_id in results["case_id"]]
    results = results.copy()
    for name in own:
        results[name] = scorer_case_scores(records, *split_filter(name, aggregate))
    return results


#: Seeds the random arm apart from the planting (``default_rng(0)`` and ``default_rng([0, 0])`` draw the same
#: numbers, so a plain ``seed`` once made the random arm remove exactly the planted cases).
RANDOM_ARM_STREAM = 0x52414E44


def arm_exclusions(results: pd.DataFrame, planted: set[str], settings: BenchmarkSettings, seed: int) -> dict[str, set[str]]:
    """Each arm's excluded training cases (``duo`` arms are added by the caller)."""
    ids = results["case_id"].astype(str).tolist()
    rng = np.random.default_rng([RANDOM_ARM_STREAM, seed])
    arms = {"noisy": set(), "oracle": set(planted),
            "random": set(rng.choice(ids, size=max(1, round((1 - settings.keep) * len(ids))), replace=False).tolist())}
    for scorer in settings.filters:
        if scorer in results.columns:
            decisions = ExclusionList()
            decisions.apply_quantile(results, settings.keep, by=scorer)
            arms[f"filter:{scorer}"] = decisions.excluded()
    return arms


def _precision_recall(excluded: set[str], planted: set[str]) -> tuple[float, float]:
    hits = len(excluded & planted)
    return (hits / len(excluded) if excluded else math.nan, hits / len(planted) if planted else math.nan)


def class_dice(predicted: np.ndarray, reference: np.ndarray, predicted_ids: dict[str, int], reference_ids: dict[str, int]) -> dict[str, float]:
    """Dice per class name held by the reference (NaN where neither has the class)."""
    dice = {}
    for name, reference_id in reference_ids.items():
        truth = reference == reference_id
        guess = predicted == predicted_ids[name] if name in predicted_ids else np.zeros_like(truth)
        total = truth.sum() + guess.sum()
        dice[name] = 2.0 * float((truth & guess).sum()) / float(total) if total else math.nan
    return dice


def _evaluate(run: Path, tests: Sequence[CaseSpec], device: str) -> pd.DataFrame:
    """Dice per clean test case and class: columns case_id, class, dice."""
    from ..devices import resolve_device
    from ..duo.predict import load_model, segment
    from ..imaging import load_case

    torch_device = resolve_device(device)
    model, plan = load_model(run, torch_device)
    predicted_ids = dict(zip(plan.classes, plan.label_ids))
    rows = []
    for spec in tests:
        reference = load_case(spec.image, spec.label).labels
        reference_ids = {spec.name_of(int(i)): int(i) for i in np.unique(reference) if i != 0}
        reference_ids = {k: v for k, v in reference_ids.items() if k in predicted_ids}
        dice = class_dice(segment(model, plan, spec.image, torch_device), reference, predicted_ids, reference_ids)
        rows.extend({"case_id": spec.case_id, "class": name, "dice": value} for name, value in dice.items())
    return pd.DataFrame(rows, columns=["case_id", "class", "dice"])


def _score(specs: Sequence[CaseSpec], out: Path, settings: ScoreSettings, scorer: CaseScorer) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClassSetWarning)  # the aggregation is the benchmark's setting, said in its output
        return score_cohort(specs, out, settings, scorer=scorer, progress=False, emit=lambda _: None)


def _make_oof(manifest: Path, out: Path, settings: BenchmarkSettings, emit: Callable[[str], None]) -> Path:
    """Out-of-fold probabilities of the noisy training cases, from models trained as cheaply as an arm (no DUO)."""
    from ..duo.oof import make_oof

    make_oof(_training_config(manifest, out, settings, 0, None), settings.oof_folds, emit=emit)
    return out


def _training_config(manifest: Path, run: Path, settings: BenchmarkSettings, seed: int, duo_form: str | None,
                     exclusions: Path | None = None) -> TrainConfig:
    """The benchmark's small 2d training of one arm (or one out-of-fold model)."""
    from ..duo.config import TrainConfig

    return TrainConfig(dataset=str(manifest), out=str(run), config="2d", duo=duo_form is not None,
                       duo_form=duo_form or settings.duo_form, duo_warmup=settings.duo_warmup if duo_form else 0.0,
                       epochs=settings.epochs,
                       steps_per_epoch=settings.steps_per_epoch, seed=seed, val_fraction=0.0,
                       exclusions=None if exclusions is None else str(exclusions), base_filters=settings.base_filters,
                       batch=settings.batch, in_plane_spacing=settings.in_plane_spacing, lr=settings.lr,
                       device=settings.device, classes=settings.classes, log_every=10**6)


def _train_and_evaluate(run: Path, manifest: Path, tests: Sequence[CaseSpec], excluded: set[str], duo_form: str | None,
                        seed: int, arm: str, settings: BenchmarkSettings) -> pd.DataFrame:
    """Train one arm's model (kept when ``run`` already holds it); its Dice per test case and class.

    What the model was trained for is written beside it (``<run>.arm.json``); a run of the same name
    trained for other settings (a rerun in the same ``--out`` with other options) is refused, not reused.
    """
    from dataclasses import asdict

    from ..duo.checkpoint import LATEST, training_finished
    from ..duo.trainer import train

    exclusions = run.parent / f"{run.name}.exclusions.json"
    config = _training_config(manifest, run, settings, seed, duo_form, exclusions)
    # Where and how fast it runs does not change what is trained.
    identity = {"excluded": sorted(excluded), "planting": _planting(settings),
                **{k: v for k, v in asdict(config).items() if k not in ("resume", "device", "workers", "log_every")}}
    identity = json.loads(json.dumps(identity))  # tuples as lists, as read back
    marker = run.parent / f"{run.name}.arm.json"
    # An arm trained before a setting existed was trained with its default.
    stored = {"duo_warmup": 0.0, **json.loads(marker.read_text(encoding="utf-8"))} if marker.is_file() else None
    if run.exists() and (stored is None or _what_was_trained(stored) != _what_was_trained(identity)):
        raise InputError(run, f"was trained for other benchmark settings than this run's arm {arm}; "
                              "choose a new --out (or remove the folder to retrain it)")
    write_json_atomic(marker, identity)
    decisions = ExclusionList()
    for case_id in sorted(excluded):
        decisions.exclude(case_id, None, note=f"benchmark arm {arm}")
    save_exclusions(exclusions, decisions)
    if not training_finished(run, config.epochs):
        # A stopped arm goes on where it was; stopped again (SIGTERM / SIGINT: exit status 130 / 143), the benchmark stops too.
        if train(replace(config, resume=(run / LATEST).exists())) != 0:
            raise InterruptedError(f"the training of arm {arm} in {run} was stopped; run the same command again to resume")
    return _evaluate(run, tests, settings.device)


def _planting(settings: BenchmarkSettings) -> dict:
    """The settings that decide an arm's training labels: which cases train and what was planted in them."""
    return {"rate": settings.rate, "kinds": list(settings.kinds or LABEL_KINDS), "magnitudes": dict(settings.magnitudes),
            "plant_seed": settings.plant_seed, "test_fraction": settings.test_fraction, "split": settings.split}


#: Where an arm's files live; a benchmark folder that is moved or copied holds the same trained arms.
_ARM_LOCATION = ("dataset", "out", "exclusions")


def _what_was_trained(record: dict) -> dict:
    """An arm's recorded settings without where it lives and, for an arm without DUO, the DUO settings it ignored.

    Example:
        >>> a = {"dataset": "/a/manifest.csv", "duo": False, "duo_form": "paper", "lr": 0.05}
        >>> _what_was_trained(a) == _what_was_trained({**a, "dataset": "/b/manifest.csv", "duo_form": "boundary"})
        True
        >>> _what_was_trained({**a, "duo": True}) == _what_was_trained({**a, "duo": True, "duo_form": "boundary"})
        False
    """
    return {k: v for k, v in record.items()
            if k not in _ARM_LOCATION and (record.get("duo") or not k.startswith("duo_"))}


def run_benchmark(specs: Sequence[CaseSpec], out: str | Path, settings: BenchmarkSettings,
                  emit: Callable[[str], None] = print) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Plant, score, train every arm with every seed, and evaluate.

    Returns one row per (arm, seed, class) (``benchmark_runs.csv``) and the
    scorers' correlations with the ``noisy`` model's test Dice (``correlations.csv``).
    """
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    training, tests = split_cases(specs, settings.test_fraction, settings.split)
    planted: list[PlantedCase] = plant_repeat(training, AuditSettings(fraction=settings.rate, kinds=settings.kinds or LABEL_KINDS,
                                                                      magnitudes=settings.magnitudes, seed=settings.plant_seed),
                                              0, out, target_classes=settings.classes)
    by_source = {p.source.case_id: p for p in planted}
    noisy = [by_source[s.case_id].spec if s.case_id in by_source else s for s in training]
    planted_ids = {p.spec.case_id for p in planted}
    manifest = _write_manifest(noisy, out)
    pd.DataFrame([{"case_id": p.spec.case_id, "kind": p.corruption.kind, "magnitude": p.corruption.magnitude,
                   "classes": " ".join(p.source.name_of(c) for c in p.corruption.classes),
                   "changed_voxels": p.corruption.changed_voxels}
                  for p in planted]).to_csv(out / "planted.csv", index=False)
    emit(f"benchmark: {len(training)} training cases ({len(planted)} planted), {len(tests)} clean test cases; "
         f"filters at keep {settings.keep} with --aggregate {settings.aggregate}")
    scorers = parse_scorers(",".join((*(split_filter(f, settings.aggregate)[0] for f in settings.filters), "label_check")))
    oof = str(_make_oof(manifest, out / "oof", settings, emit)) if CLEANLAB in scorers else None
    score_settings = ScoreSettings(scorers=scorers, aggregate=settings.aggregate, device=settings.device, oof=oof)
    case_scorer = CaseScorer(score_settings)  # one model for both cohorts
    results = filter_case_scores(_score(noisy, out / "scores", score_settings, case_scorer), out / "scores",
                                 settings.filters, settings.aggregate)
    # The test cases have no out-of-fold probabilities: cleanlab is left out there.
    test_settings = replace(score_settings, scorers=tuple(n for n in scorers if n != CLEANLAB), oof=None)
    test_results = _score(tests, out / "test_scores", test_settings, case_scorer)
    noisy_dice: list[pd.DataFrame] = []
    rows = []
    # Arms that exclude the same cases with the same loss train the same model: train it once.
    trained: dict[tuple[frozenset[str], str | None, int], tuple[Path, pd.DataFrame]] = {}
    for seed in settings.seeds:
        arms = arm_exclusions(results, planted_ids, settings, seed)
        quality = {name: _precision_recall(excluded, planted_ids) for name, excluded in arms.items()}
        for name, excluded, form, source in arm_plans(arms, quality, settings):
            key = (frozenset(excluded), form, seed)
            if key not in trained:
                run = out / "runs" / f"{name.replace(':', '_').replace('+', '_')}_s{seed}"
                trained[key] = (run, _train_and_evaluate(run, manifest, tests, excluded, form, seed, name, settings))
            run, per_case = trained[key]
            if name == "noisy":
                noisy_dice.append(per_case)
            dice = per_case.groupby("class", sort=False)["dice"].mean().to_dict()
            precision, recall = quality[source]
            emit(f"benchmark: seed {seed} {name}: mean Dice {np.nanmean(list(dice.values())):.4f} ({run.name})")
            rows.extend({"arm": name, "seed": seed, "class": c, "dice": d, "excluded": len(excluded),
                         "precision": precision, "recall": recall, "filter": source if name == "duo+filter" else "",
                         "run": run.name}
                        for c, d in dice.items())
    table = pd.DataFrame(rows)
    table.to_csv(out / "benchmark_runs.csv", index=False)
    dice = pd.concat(noisy_dice).groupby(["case_id", "class"], as_index=False)["dice"].mean()  # mean over seeds
    correlations = score_correlations(read_structures(out / "test_scores"), test_results, dice, test_settings.scorers)
    correlations.to_csv(out / "correlations.csv", index=False)
    emit("benchmark: correlation with the noisy model's Dice on the test cases (auv: S per class, AUV per case)\n"
         + correlations[["level", "scorer", "against", "n", "pearson", "spearman"]].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return table, correlations


ArmPlan = tuple[str, set[str], str | None, str]


def arm_plans(arms: dict[str, set[str]], quality: dict[str, tuple[float, float]], settings: BenchmarkSettings) -> list[ArmPlan]:
    """What each arm trains: (arm, excluded cases, DUO form or None, the arm whose exclusions it uses).

    ``duo+filter`` takes the exclusions of the filter that found the planted cases best (precision,
    then recall); without a filter arm it would be ``duo:<form>`` again, so it is left out, as every
    DUO arm is with ``--duo-forms none``.

    Example:
        >>> s = BenchmarkSettings(duo_forms=("disagree",))
        >>> [p[0] for p in arm_plans({"noisy": set(), "filter:fisher": {"a"}}, {"noisy": (0, 0), "filter:fisher": (1, 1)}, s)]
        ['noisy', 'filter:fisher', 'duo:disagree', 'duo+filter']
        >>> [p[0] for p in arm_plans({"noisy": set()}, {"noisy": (0, 0)}, s)]
        ['noisy', 'duo:disagree']
    """
    plans: list[ArmPlan] = [(name, excluded, None, name) for name, excluded in arms.items()]
    plans += [(f"duo:{form}", set(), form, "noisy") for form in settings.duo_forms]
    filters = [name for name in arms if name.startswith("filter:")]
    if settings.duo_forms and filters:
        best = max(filters, key=lambda n: (np.nan_to_num(quality[n][0]), np.nan_to_num(quality[n][1])))
        plans.append(("duo+filter", arms[best], settings.duo_form, best))
    return plans


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """Per arm: mean Dice (mean and sd over seeds), gain over ``noisy`` with a paired 95% CI, oracle share, precision, recall."""
    from scipy.stats import t as student_t

    per_seed = runs.groupby(["arm", "seed"], sort=False)["dice"].mean().unstack("seed")
    noisy = per_seed.loc["noisy"]
    oracle_gain = float((per_seed.loc["oracle"] - noisy).mean()) if "oracle" in per_seed.index else math.nan
    rows = []
    for arm, values in per_seed.iterrows():
        gains = (values - noisy).to_numpy(dtype=float)
        n = np.isfinite(gains).sum()
        half = float(student_t.ppf(0.975, n - 1) * np.nanstd(gains, ddof=1) / math.sqrt(n)) if n >= 2 else math.nan
        first = runs[runs["arm"] == arm].iloc[0]
        rows.append({"arm": arm, "mean_dice": float(np.nanmean(values)), "sd_dice": float(np.nanstd(values, ddof=1)) if n >= 2 else math.nan,
                     "gain": float(np.nanmean(gains)), "gain_ci_low": float(np.nanmean(gains)) - half,
                     "gain_ci_high": float(np.nanmean(gains)) + half,
                     "oracle_share": float(np.nanmean(gains)) / oracle_gain if oracle_gain and np.isfinite(oracle_gain) else math.nan,
                     "excluded": int(first["excluded"]), "precision": first["precision"], "recall": first["recall"]})
    return pd.DataFrame(rows)


def sensitivity(summary: pd.DataFrame) -> str:
    """Whether the benchmark can judge a filter: the oracle's gain against twice the seed-to-seed sd.

    The sd is the larger of the noisy and oracle arms' sd of the mean Dice over seeds; with one seed
    there is none, and the benchmark says so rather than calling itself sensitive.

    Example:
        >>> table = pd.DataFrame({"arm": ["noisy", "oracle"], "gain": [0.0, 0.05], "sd_dice": [0.01, 0.02]})
        >>> sensitivity(table)
        'sensitive: the oracle gains 0.0500 mean Dice over the noisy baseline, more than twice the seed-to-seed sd (0.0200)'
    """
    arms = summary.set_index("arm")
    if "oracle" not in arms.index:
        return "sensitivity unknown: no oracle arm"
    gain = float(arms.loc["oracle", "gain"])
    spread = float(arms.loc[["noisy", "oracle"], "sd_dice"].astype(float).max())  # NaN with one seed
    if not np.isfinite(spread):
        return f"sensitivity unknown: the oracle gains {gain:.4f} mean Dice, and one seed gives no seed-to-seed sd"
    sensitive = gain > 2 * spread
    return (f"{'sensitive' if sensitive else 'NOT sensitive'}: the oracle gains {gain:.4f} mean Dice over the noisy "
            f"baseline, {'more' if sensitive else 'not more'} than twice the seed-to-seed sd ({spread:.4f})")


def write_page(summary: pd.DataFrame, runs: pd.DataFrame, correlations: pd.DataFrame, path: str | Path) -> None:
    """A self-contained HTML page: the summary table, each arm's gain with its confidence interval, and the correlations."""
    import html

    from matplotlib.figure import Figure

    from ..figures import png_data_uri

    figure = Figure(figsize=(7.0, 0.4 * len(summary) + 1.2))
    axes = figure.add_subplot()
    y = np.arange(len(summary))
    axes.errorbar(summary["gain"], y, xerr=[summary["gain"] - summary["gain_ci_low"], summary["gain_ci_high"] - summary["gain"]],
                  fmt="o", capsize=3)
    axes.axvline(0.0, color="grey", linewidth=0.8)
    axes.set_yticks(y, summary["arm"].tolist(), fontsize=8)
    axes.set_xlabel("mean Dice gain over the noisy baseline (95% CI over seeds)")
    per_class = runs.pivot_table(index="arm", columns="class", values="dice", aggfunc="mean", sort=False)
    page = ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>AUV curation benchmark</title></head><body>"
            "<h1>Does curation give a better model?</h1>"
            f"<p>{html.escape(sensitivity(summary))}.</p>"
            f"<img alt='gain per arm' src='{png_data_uri(figure)}'>"
            f"<h2>Arms</h2>{summary.to_html(index=False, float_format=lambda v: f'{v:.4f}', na_rep='')}"
            f"<h2>Dice per class on the clean test cases (mean over seeds)</h2>{per_class.to_html(float_format=lambda v: f'{v:.3f}', na_rep='')}"
            "<h2>Scores against the noisy model's Dice on the test cases</h2>"
            "<p>Per structure: each scorer's class value (auv: S, low = hard) against the Dice the noisy arm reached on it "
            "(mean over seeds), and S against the slices the class spans; per case: the case score (auv: the cohort AUV) "
            "against the case's mean Dice. cleanlab has no values here: the test cases have no out-of-fold probabilities.</p>"
            f"{correlations.to_html(index=False, float_format=lambda v: f'{v:.3g}', na_rep='')}"
            f"<p>{html.escape(str(len(runs['seed'].unique())))} seed(s).</p></body></html>\n")
    atomic_write_bytes(path, page.encode("utf-8"))


def benchmark_json(settings: BenchmarkSettings) -> dict:
    """The settings as written beside the results."""
    return {**settings.__dict__, "seeds": list(settings.seeds), "filters": list(settings.filters),
            "duo_forms": list(settings.duo_forms), "kinds": None if settings.kinds is None else list(settings.kinds),
            "in_plane_spacing": None if settings.in_plane_spacing is None else list(settings.in_plane_spacing),
            "classes": None if settings.classes is None else list(settings.classes)}


def run_and_report(specs: Sequence[CaseSpec], out: str | Path, settings: BenchmarkSettings) -> pd.DataFrame:
    """The whole benchmark: runs, ``benchmark.csv``, ``correlations.csv``, ``benchmark.html`` and ``settings.json``; returns the summary."""
    out = Path(out)
    runs, correlations = run_benchmark(specs, out, settings)
    summary = summarise(runs)
    summary.to_csv(out / "benchmark.csv", index=False)
    write_page(summary, runs, correlations, out / "benchmark.html")
    write_json_atomic(out / "settings.json", benchmark_json(settings))
    return summary
