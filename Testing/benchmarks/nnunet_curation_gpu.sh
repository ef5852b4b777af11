#!/usr/bin/env bash
# The nnU-Net curation benchmark's 3d_fullres version, on a GPU (the CPU run is 2d; README, "Training with nnU-Net").
# Same cohort, planting and arms as the reported CPU run: the bundled arms trained on the GPU by auv benchmark-curation,
# then noisy, oracle, the best filter and DUO with nnU-Net 3d_fullres. Every step is resumable: rerun to go on.
#
# Usage: bash Testing/benchmarks/nnunet_curation_gpu.sh WORK [SEEDS] [EPOCHS] [ITERATIONS]
#   defaults: seeds 0,1,2; 20 epochs of 50 iterations (about 1.5 min a model on an H100, 12 models).
set -euo pipefail
cd "$(dirname "$0")/../.."
work=${1:?usage: nnunet_curation_gpu.sh WORK [SEEDS] [EPOCHS] [ITERATIONS]}
seeds=${2:-0,1,2}
epochs=${3:-20}
iterations=${4:-50}
python=.venv/bin/python
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
manifest=$("$python" Testing/benchmarks/nnunet_curation.py --build-slabs "$work/slabs")
"$python" -m auvcore.cli benchmark-curation "$manifest" --out "$work/bench" --seeds "$seeds" --rate 0.6 --keep 0.5 \
  --kinds swap --epochs 5 --steps-per-epoch 50 --batch 16 --in-plane-spacing 6 --lr 0.05 --base-filters 8 --classes liver \
  --device cuda --duo-form disagree --duo-warmup 0.4 --filters auv@paper
"$python" Testing/benchmarks/nnunet_curation.py --dataset "$manifest" --bench "$work/bench" --work "$work/nnunet_3d" \
  --seeds "$seeds" --configuration 3d_fullres --device cuda --epochs "$epochs" --iterations "$iterations"
