"""DUO and AUV weights inside nnU-Net v2, on the CPU, on the real sample cohort (the ``nnunet`` extra).

One module-scoped pipeline, as a user runs it: ``auv nnunet export`` of the scored small cohort
(one case excluded, one with a corrected label, two classes), ``nnUNetv2_plan_and_preprocess``
(2d), two epochs of ``nnUNetTrainerDUO`` through ``nnUNetv2_train -device cpu`` (a subclass
with a handful of iterations), one of ``nnUNetTrainerAUVWeighted`` through ``auv train
--engine nnunet``, and ``nnUNetv2_predict`` with the DUO model. nnU-Net's folders are
temporary; its worker pools are kept to one process.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

pytest.importorskip("nnunetv2")

from nnunetv2.training.loss.compound_losses import DC_and_CE_loss  # noqa: E402
from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss  # noqa: E402
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer  # noqa: E402
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager  # noqa: E402

from auvcore.cli import main  # noqa: E402
from auvcore.curation import ExclusionList, save_exclusions  # noqa: E402
from auvcore.errors import InputError  # noqa: E402
from auvcore.files import file_sha256  # noqa: E402
from auvcore.nnunet.discovery import trainer_folder  # noqa: E402
from auvcore.nnunet.export import export_dataset  # noqa: E402
from auvcore.nnunet.losses import WeightedDiceCELoss  # noqa: E402
from auvcore.nnunet.scales import SCALES_FILE, CaseScales  # noqa: E402
from auvcore.nnunet.trainers import heads_file  # noqa: E402
from auvcore.results import NnUNetProgressReader, ResultsFolder, read_case_record, save_correction  # noqa: E402

DATASET_ID = 17
DATASET = "Dataset017_Sample"
#: nnU-Net subclasses, as a user writes them: a handful of iterations, and no final validation (predict is tested).
TINY_TRAINERS = '''
import torch
from auvcore.nnunet.trainers import nnUNetTrainerAUVWeighted, nnUNetTrainerDUO


class nnUNetTrainerDUO_Tiny(nnUNetTrainerDUO):
    def __init__(self, plans, configuration, fold, dataset_json, device=torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs, self.num_iterations_per_epoch, self.num_val_iterations_per_epoch = 2, 2, 1

    def perform_actual_validation(self, save_probabilities=False):
        pass


class nnUNetTrainerAUVWeighted_Tiny(nnUNetTrainerAUVWeighted):
    def __init__(self, plans, configuration, fold, dataset_json, device=torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs, self.num_iterations_per_epoch, self.num_val_iterations_per_epoch = 1, 2, 1

    def perform_actual_validation(self, save_probabilities=False):
        pass
'''


def _script(name: str) -> str:
    """An nnU-Net console script of this interpreter's environment."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert found, f"{name} is not installed beside {sys.executable}"
    return found


def _run(command: list[str], env: dict[str, str], timeout: int = 600) -> str:
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(command)} failed ({result.returncode}):\n{output[-4000:]}"
    return output


@pytest.fixture(scope="module")
def nnunet(scored: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The whole pipeline once: what each step wrote and printed."""
    root = tmp_path_factory.mktemp("nnunet")
    results = root / "results"
    shutil.copytree(scored, results)
    folder = ResultsFolder(results)
    decisions = ExclusionList()
    decisions.exclude("mr", None, note="another modality")
    save_exclusions(folder.exclusions, decisions)
    source = sitk.ReadImage(str(read_case_record(folder.case_json("ct_fast")).label))
    fixed = sitk.GetArrayFromImage(source)
    fixed[:, :, :60][fixed[:, :, :60] == 5] = 0  # part of the liver removed
    corrected = sitk.GetImageFromArray(fixed)
    corrected.CopyInformation(source)
    correction = save_correction(folder, "ct_fast", corrected, note="liver cut")

    trainers = root / "trainers"
    trainers.mkdir()
    (trainers / "auv_tiny_trainers.py").write_text(TINY_TRAINERS)
    env = {**os.environ, "nnUNet_raw": str(root / "raw"), "nnUNet_preprocessed": str(root / "preprocessed"),
           "nnUNet_results": str(root / "results_nnunet"), "nnUNet_def_n_proc": "1",
           "nnUNet_extTrainer": os.pathsep.join([str(trainer_folder()), str(trainers)])}
    assert main(["nnunet", "export", str(results), "--dataset-id", str(DATASET_ID), "--name", "Sample", "--raw",
                 str(root / "raw"), "--classes", "liver,spleen"]) == 0
    _run([_script("nnUNetv2_plan_and_preprocess"), "-d", str(DATASET_ID), "-c", "2d", "-np", "1", "-npfp", "1"],
         {**env, "nnUNet_n_proc_DA": "1"})
    training_env = {**env, "nnUNet_n_proc_DA": "0"}  # augmentation in the training process
    duo_log = _run([_script("nnUNetv2_train"), str(DATASET_ID), "2d", "all", "-tr", "nnUNetTrainerDUO_Tiny", "-device", "cpu"],
                   training_env)
    weighted_log = _run([sys.executable, "-m", "auvcore.cli", "train", "--engine", "nnunet", str(DATASET_ID), "2d", "all",
                         "-tr", "nnUNetTrainerAUVWeighted_Tiny", "-device", "cpu"], training_env)
    images = root / "to_segment"
    images.mkdir()
    record = read_case_record(folder.case_json("mr"))
    shutil.copyfile(record.image, images / "mr_0000.nii.gz")  # the excluded case, never trained on
    _run([_script("nnUNetv2_predict"), "-i", str(images), "-o", str(root / "segmented"), "-d", str(DATASET_ID), "-c", "2d",
          "-f", "all", "-tr", "nnUNetTrainerDUO_Tiny", "-device", "cpu", "--disable_tta", "-npp", "0", "-nps", "0"], env)  # in one process
    model = root / "results_nnunet" / DATASET / "nnUNetTrainerDUO_Tiny__nnUNetPlans__2d"
    return {"root": root, "results": results, "dataset": root / "raw" / DATASET, "correction": correction, "env": env,
            "duo_log": duo_log, "weighted_log": weighted_log, "model": model, "image": Path(record.image),
            "segmentation": root / "segmented" / "mr.nii.gz"}


def test_export_writes_the_retained_cases_with_their_corrected_labels_and_s(nnunet: dict) -> None:
    dataset, results = nnunet["dataset"], ResultsFolder(nnunet["results"])
    described = json.loads((dataset / "dataset.json").read_text())
    assert described["labels"] == {"background": 0, "spleen": 1, "liver": 2}  # renumbered, by their source values 1 and 5
    assert described["channel_names"] == {"0": "CT"} and described["numTraining"] == 2
    assert sorted(p.name for p in (dataset / "imagesTr").iterdir()) == ["ct_fast_0000.nii.gz", "ct_full_0000.nii.gz"]
    written = sitk.GetArrayFromImage(sitk.ReadImage(str(dataset / "labelsTr" / "ct_fast.nii.gz")))
    fixed = sitk.GetArrayFromImage(sitk.ReadImage(str(results.root / nnunet["correction"].file)))
    assert np.array_equal(written == 2, fixed == 5) and np.array_equal(written == 1, fixed == 1)
    assert not np.isin(written, [3, 4, 5, 6]).any()  # kidney and stomach are background here
    source = sitk.ReadImage(str(read_case_record(results.case_json("ct_fast")).label))
    assert sitk.ReadImage(str(dataset / "labelsTr" / "ct_fast.nii.gz")).GetSpacing() == source.GetSpacing()
    scales = CaseScales.read(dataset / SCALES_FILE)
    written_scales = json.loads((dataset / SCALES_FILE).read_text())
    assert written_scales["excluded"] == ["mr"] and "1 of 2 case(s) use their corrected label" in written_scales["labels"]
    record = read_case_record(results.case_json("ct_full"))
    assert scales.classes == ("spleen", "liver") and sorted(scales.cases) == ["ct_fast", "ct_full"]
    assert scales.cases["ct_full"]["liver"] == next(c.S for c in record.classes if c.name == "liver")


def test_export_with_original_labels_writes_the_source_labels(nnunet: dict, tmp_path: Path) -> None:
    exported = export_dataset(nnunet["results"], DATASET_ID + 1, "Original", raw=tmp_path, original_labels=True,
                              classes=["liver", "spleen"])
    assert exported.corrected == () and "--original-labels" in exported.labels and "ct_fast" in exported.labels
    written = sitk.GetArrayFromImage(sitk.ReadImage(str(exported.folder / "labelsTr" / "ct_fast.nii.gz")))
    source = sitk.GetArrayFromImage(sitk.ReadImage(str(read_case_record(ResultsFolder(nnunet["results"]).case_json("ct_fast")).label)))
    assert np.array_equal(written == 2, source == 5) and np.array_equal(written == 1, source == 1)


def test_export_never_overwrites_a_dataset_id(nnunet: dict) -> None:
    dataset = nnunet["dataset"]
    before = file_sha256(dataset / "dataset.json")
    with pytest.raises(InputError, match="already holds nnU-Net dataset 17"):
        export_dataset(nnunet["results"], DATASET_ID, "Other", raw=dataset.parent)
    assert file_sha256(dataset / "dataset.json") == before
    assert sorted(p.name for p in dataset.parent.iterdir() if not p.name.startswith(".")) == [DATASET]


def test_two_duo_epochs_through_nnunetv2_train_have_finite_losses_and_bounded_noise(nnunet: dict) -> None:
    log = nnunet["duo_log"]
    assert "Using trainer 'nnUNetTrainerDUO_Tiny'" in log
    losses = [float(v) for v in re.findall(r"train_loss (\S+)", log)]
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses)
    duo = re.findall(r"DUO: eps_hat (\S+), max \|n\(x\)\| (\S+), purifying (\w+)", log)
    assert [p for _, _, p in duo] == ["False", "True"]  # warm-up 0.4 of 2 epochs: the first one
    assert all(0 < float(peak) <= 3.0 for _, peak, _ in duo) and all(0 < float(eps) < 0.5 for eps, _, _ in duo)
    reader = NnUNetProgressReader()
    reports = [p for p in map(reader, log.splitlines()) if p is not None]
    assert [(p.epoch, p.epochs) for p in reports] == [(1, 2), (2, 2)] and reports[-1].fraction == 1.0


def test_the_final_checkpoint_is_nnunets_own_network_with_the_background_logit_at_zero(nnunet: dict) -> None:
    model = nnunet["model"]
    checkpoint = torch.load(model / "fold_all" / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    assert checkpoint["trainer_name"] == "nnUNetTrainerDUO_Tiny"
    plans = PlansManager(str(model / "plans.json"))
    configuration = plans.get_configuration("2d")
    stock = nnUNetTrainer.build_network_architecture(plans, configuration, 1, 3, enable_deep_supervision=False)
    stock.load_state_dict(checkpoint["network_weights"])  # strict: no noise head in it
    for layer in stock.decoder.seg_layers:
        assert not layer.weight[0].any() and not layer.bias[0].any()
    heads = torch.load(heads_file(model / "fold_all" / "checkpoint_final.pth"), weights_only=True)
    assert heads["duo_form"] == "disagree" and len([k for k in heads["noise_heads"] if k.endswith("raw_scale")]) == 4


def test_a_duo_step_leaves_the_background_logit_at_zero_and_trains_every_noise_head(nnunet: dict, tmp_path: Path,
                                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """In this process, on the exported dataset's plans: one step on a batch of nnU-Net's shape."""
    from auvcore.nnunet.trainers import nnUNetTrainerDUO

    monkeypatch.setenv("nnUNet_preprocessed", nnunet["env"]["nnUNet_preprocessed"])
    monkeypatch.setenv("nnUNet_results", str(tmp_path))
    preprocessed = Path(nnunet["env"]["nnUNet_preprocessed"]) / DATASET
    plans = {**json.loads((preprocessed / "nnUNetPlans.json").read_text()), "continue_training": False}  # as nnUNetv2_train
    trainer = nnUNetTrainerDUO(plans, "2d", "all", json.loads((preprocessed / "dataset.json").read_text()), torch.device("cpu"))
    trainer.initialize()
    torch.manual_seed(0)
    data = torch.randn(2, 1, *trainer.configuration_manager.patch_size)
    label = torch.zeros(2, 1, *data.shape[2:])
    label[:, :, 20:70, 30:90] = 2
    label[:, :, 40:60, 10:30] = 1
    scales = trainer._get_deep_supervision_scales()
    targets = [torch.nn.functional.interpolate(label, scale_factor=tuple(s), mode="nearest") for s in scales]
    trainer.on_train_epoch_start()
    trainer.level_loss.purifying = True
    trainer.optimizer.zero_grad()
    loss = trainer.loss(trainer.network(data), targets)
    loss.backward()
    assert torch.isfinite(loss)
    layers = trainer.network.decoder.seg_layers
    assert layers[0].weight.grad is None  # the lowest output has nnU-Net's weight 0
    assert all(not layer.weight.grad[0].any() and not layer.bias.grad[0].any() for layer in layers[1:])
    assert all(layer.weight.grad[1:].abs().sum() > 0 for layer in layers[1:])
    used = [head for head in trainer.noise_heads.heads[:-1]]
    assert all(head.body[0].weight.grad is not None and head.body[0].weight.grad.abs().sum() > 0 for head in used)
    assert all(head.raw_scale.grad is not None for head in used)
    assert 0 < trainer.level_loss.noise_peak <= 3.0


def test_stock_nnunetv2_predict_segments_on_the_images_grid(nnunet: dict) -> None:
    image, segmentation = sitk.ReadImage(str(nnunet["image"])), sitk.ReadImage(str(nnunet["segmentation"]))
    assert segmentation.GetSize() == image.GetSize()
    assert np.allclose(segmentation.GetSpacing(), image.GetSpacing()) and np.allclose(segmentation.GetOrigin(), image.GetOrigin())
    assert np.allclose(segmentation.GetDirection(), image.GetDirection())
    assert set(np.unique(sitk.GetArrayFromImage(segmentation)).tolist()) <= {0, 1, 2}


def test_auv_weighted_training_runs_through_auv_train_engine_nnunet(nnunet: dict) -> None:
    log = nnunet["weighted_log"]
    assert "auv train: nnUNetv2_train" in log and "Using trainer 'nnUNetTrainerAUVWeighted_Tiny'" in log
    assert math.isfinite(float(re.findall(r"train_loss (\S+)", log)[-1]))
    folder = nnunet["root"] / "results_nnunet" / DATASET / "nnUNetTrainerAUVWeighted_Tiny__nnUNetPlans__2d" / "fold_all"
    assert (folder / "checkpoint_final.pth").is_file()


def test_weighted_dice_ce_with_unit_weights_is_nnunets_dice_ce() -> None:
    torch.manual_seed(0)
    logits, target = torch.randn(3, 4, 10, 12), torch.randint(0, 4, (3, 1, 10, 12)).float()
    ours = WeightedDiceCELoss(num_classes=3, batch_dice=True)
    theirs = DC_and_CE_loss({"batch_dice": True, "smooth": 1e-5, "do_bg": False, "ddp": False}, {}, weight_ce=1, weight_dice=1,
                            dice_class=MemoryEfficientSoftDiceLoss)
    assert torch.allclose(ours(logits, target), theirs(logits, target), atol=1e-6)
    ours.weights = torch.tensor([3.0, 1.0, 1.0])
    assert not torch.allclose(ours(logits, target), theirs(logits, target), atol=1e-3)
