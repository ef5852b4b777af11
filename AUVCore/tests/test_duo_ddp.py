"""DDP under torchrun: two CPU processes (gloo) train a few steps and keep identical weights."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

from auvcore.duo.checkpoint import LATEST, load_checkpoint

SCRIPT = textwrap.dedent(
    """
    import sys
    import torch
    from auvcore.duo.distributed import start, stop
    from auvcore.duo.trainer import TrainConfig, Trainer

    manifest, out = sys.argv[1], sys.argv[2]
    config = TrainConfig(dataset=manifest, out=out, epochs=1, steps_per_epoch=2, batch=1, patch=(32, 32, 32),
                         base_filters=8, classes=("liver", "spleen"), device="cpu", val_fraction=0.0, log_every=1, seed=5)
    context = start("cpu")
    trainer = Trainer(config, context)
    initial = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    assert trainer.run() == 0
    state = trainer.model.state_dict()
    changed = any(not torch.equal(initial[k], state[k]) for k in state)
    torch.save({"state": state, "changed": changed, "world": context.world_size}, f"{out}/rank{context.rank}.pt")
    stop(context)
    """
)


def test_two_cpu_ranks_keep_identical_weights(sample_cohort: Path, tmp_path: Path) -> None:
    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT)
    out = tmp_path / "run"
    out.mkdir()
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script), str(sample_cohort / "manifest.csv"), str(out)],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    ranks = [torch.load(out / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert all(rank["world"] == 2 and rank["changed"] for rank in ranks)
    for name, value in ranks[0]["state"].items():
        assert torch.equal(value, ranks[1]["state"][name]), name
    # Rank 0 alone writes the run's files, and its checkpoint holds the shared weights.
    assert result.stdout.count("PROGRESS epoch=1/1 step=1/2") == 1
    saved = load_checkpoint(out / LATEST)["model"]
    assert all(torch.equal(saved[k], ranks[0]["state"][k]) for k in saved)
