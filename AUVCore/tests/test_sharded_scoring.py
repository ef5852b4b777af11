"""Sharded scoring (job arrays with --shard + auv merge, and torchrun) equals one process exactly."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd

from auvcore.cli import main


def _same_results(out, scored):
    pd.testing.assert_frame_equal(pd.read_csv(out / "results.csv"), pd.read_csv(scored / "results.csv"), check_exact=True)
    assert json.loads((out / "reference.json").read_text()) == json.loads((scored / "reference.json").read_text())


def test_shards_then_merge_equal_one_process(small_cohort, scored, tmp_path, capsys):
    manifest = str(small_cohort / "manifest.csv")
    for shard in ("0/2", "1/2"):
        assert main(["score", manifest, "--out", str(tmp_path), "--shard", shard, "--device", "cpu", "--no-progress"]) == 0
    assert not (tmp_path / "results.csv").exists()
    assert "PROGRESS case=1/1 id=ct_fast status=ok" in capsys.readouterr().out
    assert main(["merge", manifest, "--out", str(tmp_path / "results.csv")]) == 0  # the folder, or the table it gets
    _same_results(tmp_path, scored)


def test_merge_names_the_missing_shard(small_cohort, tmp_path, capsys):
    manifest = str(small_cohort / "manifest.csv")
    assert main(["score", manifest, "--out", str(tmp_path), "--shard", "1/3", "--device", "cpu", "--no-progress"]) == 0
    assert main(["merge", manifest, "--out", str(tmp_path)]) == 2
    assert "ct_full.json: is missing: case 'ct_full' has not been scored" in capsys.readouterr().err


def test_torchrun_with_two_cpu_processes_equals_one_process(small_cohort, scored, tmp_path):
    # Same thread count per process as the one-process run, so the floating-point work is the same.
    env = {**os.environ, "OMP_NUM_THREADS": str(__import__("torch").get_num_threads())}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29531",
               "-m", "auvcore.cli", "score", str(small_cohort / "manifest.csv"), "--out", str(tmp_path),
               "--device", "cpu", "--no-progress"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    _same_results(tmp_path, scored)
