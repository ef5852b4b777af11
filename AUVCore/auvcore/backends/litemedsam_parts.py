"""LiteMedSAM's encoder and box decoder as the runtimes run them: eager PyTorch or exported graphs.

The decoder takes the boxes of several slices in one call, each box pointing at
its slice's embedding. :class:`BoxDecoder` is upstream's prompt encoder and mask
decoder as they are, the reference; the runtimes run
:class:`~auvcore.backends.litemedsam_decoder.FactoredBoxDecoder`, the same function
in fewer FLOPs. Eager PyTorch runs it as it is; ``openvino`` and ``onnxruntime``
run the same module exported with ``torch.onnx.export`` (cached by
:mod:`auvcore.backends.export_cache`), so the runtimes differ only in how the
arithmetic is scheduled.

Example:
    >>> from auvcore.backends.litemedsam import bundled_weights_file, load_litemedsam  # doctest: +SKIP
    >>> model = load_litemedsam(bundled_weights_file(), torch.device("cpu"))  # doctest: +SKIP
    >>> encoder, decoder = build_runners(model, torch.device("cpu"), "openvino", "fp32", "79d8...")  # doctest: +SKIP
    >>> masks = decoder(embeddings, box_slice, boxes)  # (N, 256, 256) mask logits  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from .encoding import EncoderRunner
from . import litemedsam_decoder
from .export_cache import blob_cache_dir, cached_onnx, export_key, export_onnx, source_digest
from .litemedsam_decoder import FactoredBoxDecoder
from .runtimes import CompiledModel, Precision, load_compiled, runtime_version

INPUT_SIZE = 256
EMBEDDING_SHAPE = (256, 64, 64)
#: The exported decoder's name in the model cache (a new name: graphs of the upstream decoder stay apart).
DECODER_PART = "litemedsam-factored-decoder"
#: Boxes per decoder call: each box holds about 40 MB of activations, so 16 stay near 0.6 GB.
DECODER_BOXES = 16

#: (B, 3, 256, 256) images -> one (256, 64, 64) embedding per image.
Encoder = Callable[[torch.Tensor], list[torch.Tensor]]
#: (S, 256, 64, 64) embeddings, (N,) slice of each box, (N, 4) boxes -> (N, 256, 256) mask logits.
Decoder = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


class BoxDecoder(torch.nn.Module):
    """Upstream's prompt encoder and mask decoder for the boxes of several slices at once: the reference
    :class:`~auvcore.backends.litemedsam_decoder.FactoredBoxDecoder` is checked against.

    ``forward(embeddings, box_slice, boxes)``: ``embeddings`` (S, 256, 64, 64),
    ``box_slice`` (N,) int64 indices into them, ``boxes`` (N, 4) x0 y0 x1 y1 in
    the 256 x 256 input; returns the single-mask logits (N, 256, 256).
    """

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.prompt_encoder = model.prompt_encoder
        self.mask_decoder = model.mask_decoder
        self.register_buffer("dense_pe", model.prompt_encoder.get_dense_pe(), persistent=False)

    def forward(self, embeddings: torch.Tensor, box_slice: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        sparse, dense = self.prompt_encoder(points=None, boxes=boxes[:, None, :], masks=None)
        masks, _ = self.mask_decoder(
            image_embeddings=embeddings.index_select(0, box_slice),
            image_pe=self.dense_pe,
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=False,
        )
        return masks[:, 0]


class EagerDecoder:
    """A box decoder module in PyTorch (optionally ``torch.compile``d)."""

    def __init__(self, module: torch.nn.Module, precision: Precision, device: torch.device, compile: bool = False) -> None:
        self.module = torch.compile(module, dynamic=True) if compile else module
        self.precision, self.device = precision, device

    @torch.inference_mode()
    def __call__(self, embeddings: torch.Tensor, box_slice: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            return self.module(embeddings, box_slice, boxes).float()


class ExportedEncoder:
    """The exported image encoder: one slice per call (the TinyViT graph is traced at batch 1)."""

    def __init__(self, compiled: CompiledModel) -> None:
        self.compiled = compiled

    def __call__(self, images: torch.Tensor) -> list[torch.Tensor]:
        arrays = images.numpy()
        return [torch.from_numpy(self.compiled({"images": arrays[i : i + 1]})[0]) for i in range(len(arrays))]


class ExportedDecoder:
    """The exported box decoder."""

    def __init__(self, compiled: CompiledModel) -> None:
        self.compiled = compiled

    def __call__(self, embeddings: torch.Tensor, box_slice: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        feeds = {
            "embeddings": np.ascontiguousarray(embeddings.numpy()),
            "box_slice": box_slice.numpy().astype(np.int64),
            "boxes": boxes.numpy().astype(np.float32),
        }
        return torch.from_numpy(self.compiled(feeds))


def _example_decoder_inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two slices and three boxes: enough for the exporter to see both dynamic axes."""
    boxes = torch.tensor([[10.0, 20.0, 100.0, 120.0], [30.0, 30.0, 90.0, 200.0], [5.0, 5.0, 250.0, 250.0]])
    return torch.zeros(2, *EMBEDDING_SHAPE), torch.tensor([0, 1, 1]), boxes


def _exported(model: torch.nn.Module, runtime: str, precision: Precision, weights_sha256: str) -> tuple[CompiledModel, CompiledModel]:
    version = runtime_version(runtime)
    encoder_export = export_onnx(
        model.image_encoder, (torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE),), ["images"], ["embeddings"], {}
    )
    decoder_export = export_onnx(
        FactoredBoxDecoder(model), _example_decoder_inputs(), ["embeddings", "box_slice", "boxes"], ["masks"],
        {"embeddings": {0: "slices"}, "box_slice": {0: "boxes"}, "boxes": {0: "boxes"}, "masks": {0: "boxes"}},
    )
    encoder_path = cached_onnx("litemedsam-encoder", export_key("litemedsam-encoder", weights_sha256, runtime, version), encoder_export)
    decoder_key = export_key(DECODER_PART, weights_sha256, runtime, version, source_digest(litemedsam_decoder))
    decoder_path = cached_onnx(DECODER_PART, decoder_key, decoder_export)
    blobs = blob_cache_dir(runtime)
    return load_compiled(runtime, encoder_path, precision, blobs), load_compiled(runtime, decoder_path, precision, blobs)


def build_runners(
    model: torch.nn.Module,
    device: torch.device,
    runtime: str,
    precision: Precision,
    weights_sha256: str,
    encoder_batch: int | None = None,
    compile: bool = False,
) -> tuple[Encoder, Decoder]:
    """The encoder and box decoder of ``model`` in ``runtime`` (already resolved: torch, openvino, onnxruntime)."""
    if runtime == "torch":
        encoder = EncoderRunner(model.image_encoder, device, batch_size=encoder_batch, precision=precision, compile=compile)
        return encoder, EagerDecoder(FactoredBoxDecoder(model).to(device).eval(), precision, device, compile=compile)
    encoder_graph, decoder_graph = _exported(model, runtime, precision, weights_sha256)
    return ExportedEncoder(encoder_graph), ExportedDecoder(decoder_graph)
