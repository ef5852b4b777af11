"""Running an image encoder fast, and keeping one volume's embeddings for reuse.

The encoder dominates the cost of scoring (about 75 GFLOPs a slice for
LiteMedSAM), so it gets the attention: batching on a GPU, bfloat16 autocast on
CUDA for a caller that asks for it (the built-in backends do not: scoring runs
in float32), and on the CPU a choice of execution (eager or ``torch.compile``)
measured by ``Testing/benchmarks/encoder_speed.py``.
"""

from __future__ import annotations

from typing import Any, Literal

import torch

Precision = Literal["fp32", "bf16"]


class EncoderRunner:
    """Calls an image encoder in batches on a device.

    Args:
        encoder: maps (B, 3, H, W) float32 to (B, ...) embeddings.
        device: where it runs.
        batch_size: slices per call; default 1 on the CPU (batching does not
            help there) and 16 on CUDA.
        precision: ``bf16`` autocasts on CUDA; the CPU always runs fp32. The
            built-in backends leave it at ``fp32``.
        channels_last: NHWC memory layout for the convolutional stem.
        compile: run the encoder through ``torch.compile`` (a one-off
            compilation, then faster calls; results agree within round-off).

    Example:
        >>> runner = EncoderRunner(torch.nn.Conv2d(3, 4, 1), torch.device("cpu"))
        >>> [tuple(e.shape) for e in runner(torch.zeros(2, 3, 8, 8))]
        [(4, 8, 8), (4, 8, 8)]
    """

    def __init__(
        self,
        encoder: torch.nn.Module,
        device: torch.device,
        batch_size: int | None = None,
        precision: Precision = "fp32",
        channels_last: bool = True,
        compile: bool = False,
    ) -> None:
        self.device = device
        self.batch_size = batch_size or (16 if device.type == "cuda" else 1)
        self.precision = precision if device.type == "cuda" else "fp32"
        self.channels_last = channels_last
        self.encoder = encoder.to(device).eval()
        if channels_last:
            self.encoder = self.encoder.to(memory_format=torch.channels_last)
        if compile:
            self.encoder = torch.compile(self.encoder)

    def describe(self) -> dict[str, Any]:
        """Settings that can change the embeddings, for the backend's ``describe()`` (not the cache key)."""
        return {"precision": self.precision, "device_type": self.device.type}

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Embeddings of each image, as a list of (K, h, w) float32 tensors on the device."""
        outputs: list[torch.Tensor] = []
        for start in range(0, images.shape[0], self.batch_size):
            batch = images[start : start + self.batch_size].to(self.device, non_blocking=True)
            if self.channels_last:
                batch = batch.contiguous(memory_format=torch.channels_last)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
                embedded = self.encoder(batch)
            outputs.extend(embedded.float().contiguous())
        return outputs


class EmbeddingCache:
    """The slice embeddings of the most recent image, keyed by its content hash.

    Cases that share an image (two labelings of one scan) are then encoded once.
    Holding a single image bounds the memory to one volume's embeddings.

    Example:
        >>> cache = EmbeddingCache()
        >>> cache.put("abc", {0: torch.zeros(1)})
        >>> sorted(cache.get("abc", [0, 1])), cache.get("other", [0])
        ([0], {})
    """

    def __init__(self) -> None:
        self._key: str | None = None
        self._embeddings: dict[int, torch.Tensor] = {}

    def get(self, key: str | None, indices: list[int]) -> dict[int, torch.Tensor]:
        if key is None or key != self._key:
            return {}
        return {d: self._embeddings[d] for d in indices if d in self._embeddings}

    def put(self, key: str | None, embeddings: dict[int, torch.Tensor]) -> None:
        if key is None:
            return
        if key != self._key:
            self._key, self._embeddings = key, {}
        self._embeddings.update(embeddings)
