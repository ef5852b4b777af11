"""Does LiteMedSAM segment a structure from one point? Dice of its box- and point-prompted masks on the real CT.

Usage: python Testing/benchmarks/point_prompts.py [--slices 10 15]

For each of liver, spleen, right kidney and stomach on the given slices of
the sample CT (``ct_full_model``), the mask decoder is prompted once by the
label's box and once by one positive point at the label's interior-most
pixel (argmax of its distance transform; SAM's prompt encoder pads a
point-only prompt with a "not a point" token), on the same image embedding,
and the mask (logits > 0) is compared with the label on the logit grid.
LiteMedSAM was trained with boxes: the point-prompted masks are near empty,
which is why ``auv`` has no point-prompted scorer.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from auvcore.backends import create_backend
from auvcore.backends.litemedsam import prepare_slices
from auvcore.imaging import load_case, normalise_intensity
from auvcore.prompts import slice_boxes
from auvcore.sample_data import fetch_sample_cohort
from auvcore.scorers.grid import labels_on_grid

CLASSES = {"liver": 5, "spleen": 1, "kidney_right": 2, "stomach": 6}


def interior_point(mask: np.ndarray) -> tuple[float, float]:
    """(x, y) of the pixel farthest from the mask's edge."""
    row, column = np.unravel_index(np.argmax(ndimage.distance_transform_edt(np.pad(mask, 1))), np.add(mask.shape, 2))
    return float(column - 1), float(row - 1)


@torch.inference_mode()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, nargs="+", default=[10, 15])
    args = parser.parse_args()
    folder = fetch_sample_cohort(Path("Testing/data/sample_cohort")).parent
    case = load_case(folder / "example_ct_sm.nii.gz", folder / "example_seg.nii.gz")
    volume = normalise_intensity(case.image, "ct")
    model = create_backend("litemedsam", device="cpu", runtime="torch").model
    images, grid = prepare_slices(volume, args.slices)
    embeddings = model.image_encoder(images)
    scale = 256 / max(volume.shape[1:])
    boxes = slice_boxes(case.labels, list(CLASSES.values()))

    def dice(embedding: torch.Tensor, truth: np.ndarray, **prompt: object) -> float:
        sparse, dense = model.prompt_encoder(masks=None, **prompt)
        masks, _ = model.mask_decoder(image_embeddings=embedding[None], image_pe=model.prompt_encoder.get_dense_pe(),
                                      sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=False)
        predicted = (masks[0, 0, : grid[0], : grid[1]] > 0).numpy()
        return 2 * float((predicted & truth).sum()) / float(predicted.sum() + truth.sum())

    print("| class | slice | box Dice | point Dice |\n| --- | --- | --- | --- |")
    for c, (name, class_id) in enumerate(CLASSES.items()):
        for embedding, d in zip(embeddings, args.slices):
            if not boxes.present[c, d]:
                continue
            truth = labels_on_grid(case.labels[d], grid) == class_id
            x, y = ((np.array(interior_point(case.labels[d] == class_id)) + 0.5) * scale - 0.5).tolist()
            box = torch.from_numpy(boxes.boxes[c, d] * scale).float()[None, None]
            point = (torch.tensor([[[x, y]]]), torch.ones(1, 1))
            print(f"| {name} | {d} | {dice(embedding, truth, points=None, boxes=box):.3f} | {dice(embedding, truth, points=point, boxes=None):.3f} |")


if __name__ == "__main__":
    main()
