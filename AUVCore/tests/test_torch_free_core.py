"""The results folder can be read, curated and reported on without PyTorch: the core imports without it.

The ``auv`` command's parser builds without it too, so ``auv --help`` and argument errors come fast.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

TORCH_FREE = ("auvcore", "auvcore.errors", "auvcore.results", "auvcore.curation", "auvcore.scales", "auvcore.scorers.registry",
              "auvcore.backend_registry", "auvcore.audit", "auvcore.nnunet.discovery", "auvcore.nnunet.scales")


@pytest.mark.parametrize("module", TORCH_FREE)
def test_module_imports_without_torch_in_a_fresh_interpreter(module: str):
    code = (f"import sys, {module}\n"
            "heavy = [m for m in ('torch', 'sklearn', 'scipy', 'SimpleITK', 'monai', 'pandas') if m in sys.modules]\n"
            "print(','.join(heavy))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "", f"import {module} loaded {loaded}"


def test_building_the_cli_parser_loads_no_heavy_library_in_a_fresh_interpreter():
    code = ("import sys, auvcore.cli\n"
            "usage = auvcore.cli.build_parser().format_usage()\n"
            "heavy = [m for m in ('torch', 'sklearn', 'monai', 'pandas', 'matplotlib') if m in sys.modules]\n"
            "print(','.join(heavy))\n"
            "print(usage)")
    loaded, usage = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n", 1)
    assert loaded == "", f"building the auv parser loaded {loaded}"
    assert "{score,merge,demo,filter,exclude,include,report,train,oof,predict,nnunet,audit,explain,benchmark-curation,review,propose}" in usage


def test_the_backbone_choices_follow_the_registry_without_torch():
    code = ("import sys, auvcore.cli\n"
            "from auvcore.backend_registry import register_backend\n"
            "register_backend('plugin-backbone', lambda device, checkpoint: None)\n"
            "args = auvcore.cli.build_parser().parse_args(['score', 'x.nii.gz', '--out', 'o', '--backbone', 'plugin-backbone'])\n"
            "print(args.backbone, 'torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "plugin-backbone False"


def test_the_measure_still_loads_on_first_use():
    code = "import sys, auvcore\nassert 'torch' not in sys.modules\nimport torch\nprint(float(auvcore.semantic_scale(torch.eye(4).reshape(1, 4, 4))[0]))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "1.0"


def test_an_unknown_name_is_an_attribute_error():
    import auvcore

    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        auvcore.nothing  # noqa: B018
