"""The results folder can be read, curated and reported on without PyTorch: the core imports without it."""

from __future__ import annotations

import subprocess
import sys

import pytest

TORCH_FREE = ("auvcore", "auvcore.errors", "auvcore.results", "auvcore.curation", "auvcore.scales", "auvcore.scorers.registry")


@pytest.mark.parametrize("module", TORCH_FREE)
def test_module_imports_without_torch_in_a_fresh_interpreter(module: str):
    code = (f"import sys, {module}\n"
            "heavy = [m for m in ('torch', 'sklearn', 'scipy', 'SimpleITK', 'monai', 'pandas') if m in sys.modules]\n"
            "print(','.join(heavy))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "", f"import {module} loaded {loaded}"


def test_the_measure_still_loads_on_first_use():
    code = "import sys, auvcore\nassert 'torch' not in sys.modules\nimport torch\nprint(float(auvcore.semantic_scale(torch.eye(4).reshape(1, 4, 4))[0]))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "1.0"


def test_an_unknown_name_is_an_attribute_error():
    import auvcore

    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        auvcore.nothing  # noqa: B018
