"""LiteMedSAM's box decoder, factored: the same function as SAM's mask decoder, in fewer FLOPs and no copies.

SAM's two-way transformer lets 7 tokens (the IoU token, 4 mask tokens, the box's
2 corners) and the 4,096 image positions attend to each other through 8 heads of
16 channels. As upstream writes it, every box projects all 4,096 positions to
queries, keys and values (4096 x 256 x 128 multiply-adds each), though a head
then meets only 7 tokens. This module computes the same attention with the
products taken in the other order, so that the 4,096 positions meet the 7 tokens'
56 (head, token) columns instead of 128 projected channels:

- token to image: ``softmax(q W_k^T K^T) (A K) W_v^T``, where upstream has
  ``softmax(q (K W_k^T + b_k)^T) (K W_v^T + b_v)``. The key bias adds the same
  number to a query's every score, which softmax ignores; a row of A sums to 1,
  so the value bias passes through it.
- image to token: ``softmax(K (W_q^T k) + b_q k) (v W_o^T)``, where upstream has
  ``softmax((K W_q^T + b_q) k) v`` then ``W_o``.
- The first layer's image side does not depend on the box: its keys, values and
  queries are projected once per slice, as upstream does, and shared by the
  slice's boxes.
- Upscaling stays in position-major layout: each transposed convolution (kernel 2,
  stride 2) is one matrix product per position, LayerNorm2d a layer norm over the
  last axis, and only the one mask the backend reads (mask token 0) is formed;
  the pixels are put in image order once, on the mask.

The result equals :class:`~auvcore.backends.litemedsam_parts.BoxDecoder`'s up to
float32 round-off (a different order of the same sums); the tests and the decoder
benchmark compare both on real boxes, logits and S.

Example:
    >>> from auvcore.backends.litemedsam import bundled_weights_file, load_litemedsam  # doctest: +SKIP
    >>> decoder = FactoredBoxDecoder(load_litemedsam(bundled_weights_file(), torch.device("cpu")))  # doctest: +SKIP
    >>> decoder(embeddings, box_slice, boxes).shape  # (N, 256, 256) single-mask logits  # doctest: +SKIP
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: LiteMedSAM's (SAM's) transformer: 8 heads of 16 channels after the 2x downsampling of 256.
HEADS = 8
#: Tokens: the IoU token, 4 mask tokens and the box's 2 corners.
TOKENS = 7
#: Embedding grid side.
SIDE = 64
#: Upstream divides each score by sqrt(16); multiplying a factor by 1/4 instead is exact in binary floating point.
SCORE_SCALE = 0.25


def _heads(x: torch.Tensor) -> torch.Tensor:
    """(N, T, 128) -> (N, 8, T, 16)."""
    return x.unflatten(-1, (HEADS, -1)).transpose(1, 2)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(N, 8, T, 16) -> (N, T, 128)."""
    return x.transpose(1, 2).flatten(2)


class FactoredBoxDecoder(torch.nn.Module):
    """Prompt encoder and mask decoder for the boxes of several slices at once (see the module docstring).

    ``forward(embeddings, box_slice, boxes)``: ``embeddings`` (S, 256, 64, 64), ``box_slice`` (N,) int64
    indices into them, ``boxes`` (N, 4) x0 y0 x1 y1 in the 256 x 256 input; returns the single-mask logits
    (N, 256, 256), as :class:`~auvcore.backends.litemedsam_parts.BoxDecoder` does.
    """

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        decoder = model.mask_decoder
        self.prompt_encoder = model.prompt_encoder
        self.transformer = decoder.transformer
        self.hypernetwork = decoder.output_hypernetworks_mlps[0]
        with torch.no_grad():  # constants of the graph, not parameters
            pe = model.prompt_encoder.get_dense_pe()  # (1, 256, 64, 64)
            first, second = decoder.output_upscaling[0], decoder.output_upscaling[3]
            constants = {
                "image_pe": pe.flatten(2).transpose(1, 2),  # (1, 4096, 256)
                "no_mask": model.prompt_encoder.no_mask_embed.weight.reshape(1, 1, -1),
                "output_tokens": torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight]),
                # ConvTranspose2d weight (in, out, 2, 2) -> (in, 2 * 2 * out): each input position's four output pixels.
                "up1_weight": first.weight.permute(0, 2, 3, 1).flatten(1),
                "up1_bias": first.bias.repeat(4),
                "up2_weight": second.weight.permute(0, 2, 3, 1).flatten(1),
                "up2_bias": second.bias.repeat(4),
            }
        for name, value in constants.items():
            self.register_buffer(name, value.detach().contiguous(), persistent=False)
        self.norm2d = decoder.output_upscaling[1]

    def forward(self, embeddings: torch.Tensor, box_slice: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        first = self.transformer.layers[0]
        # Per slice: the first layer's image side (no box in it yet), laid out as the products read it.
        src = (embeddings.flatten(2).transpose(1, 2) + self.no_mask).contiguous()  # (S, 4096, 256)
        with_pe = src + self.image_pe
        slice_keys = _heads(first.cross_attn_token_to_image.k_proj(with_pe)).transpose(-1, -2).contiguous()  # (S, 8, 16, 4096)
        slice_values = _heads(first.cross_attn_token_to_image.v_proj(src)).contiguous()  # (S, 8, 4096, 16)
        slice_queries = first.cross_attn_image_to_token.q_proj(with_pe)  # (S, 4096, 128)

        sparse = self.prompt_encoder._embed_boxes(boxes[:, None, :])  # (N, 2, 256)
        tokens = torch.cat([self.output_tokens.expand(sparse.shape[0], -1, -1), sparse], dim=1)  # (N, 7, 256)

        # Layer 0 (upstream skips the tokens' positional encoding in its self-attention).
        queries = first.norm1(first.self_attn(q=tokens, k=tokens, v=tokens))
        attention = first.cross_attn_token_to_image
        q = _heads(attention.q_proj(queries + tokens)) * SCORE_SCALE  # (N, 8, 7, 16)
        weights = torch.softmax(q @ slice_keys.index_select(0, box_slice), dim=-1)
        queries = first.norm2(queries + attention.out_proj(_merge_heads(weights @ slice_values.index_select(0, box_slice))))
        queries = first.norm3(queries + first.mlp(queries))
        keys = first.norm4(self._image_to_token(first.cross_attn_image_to_token, src.index_select(0, box_slice), queries,
                                                tokens, slice_queries.index_select(0, box_slice), None))

        for layer in self.transformer.layers[1:]:
            queries = layer.norm1(queries + layer.self_attn(q=queries + tokens, k=queries + tokens, v=queries))
            with_pe = keys + self.image_pe
            queries = layer.norm2(queries + self._token_to_image(layer.cross_attn_token_to_image, queries + tokens, with_pe, keys))
            queries = layer.norm3(queries + layer.mlp(queries))
            keys = layer.norm4(self._image_to_token(layer.cross_attn_image_to_token, keys, queries, tokens, None, with_pe))
        final = self.transformer.final_attn_token_to_image
        queries = self.transformer.norm_final_attn(queries + self._token_to_image(final, queries + tokens, keys + self.image_pe, keys))
        return self._mask(keys, self.hypernetwork(queries[:, 1]))

    @staticmethod
    def _token_to_image(attention: torch.nn.Module, q: torch.Tensor, with_pe: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """Upstream ``attention(q=q, k=with_pe, v=keys)`` with the 4,096 positions met by 56 columns, not 128."""
        per_head = _heads(attention.q_proj(q)) * SCORE_SCALE  # (N, 8, 7, 16)
        key_weight = attention.k_proj.weight.unflatten(0, (HEADS, -1))  # (8, 16, 256)
        scores = (per_head @ key_weight).flatten(1, 2) @ with_pe.transpose(-1, -2)  # (N, 56, 4096); k's bias cancels in softmax
        weights = torch.softmax(scores, dim=-1)
        mixed = (weights @ keys).unflatten(1, (HEADS, TOKENS))  # (N, 8, 7, 256): a row of weights sums to 1
        value_weight = attention.v_proj.weight.unflatten(0, (HEADS, -1))  # (8, 16, 256)
        values = mixed @ value_weight.transpose(-1, -2) + attention.v_proj.bias.unflatten(0, (HEADS, 1, -1))  # (N, 8, 7, 16)
        return attention.out_proj(_merge_heads(values))

    @staticmethod
    def _image_to_token(attention: torch.nn.Module, keys: torch.Tensor, queries: torch.Tensor, tokens: torch.Tensor,
                        projected: torch.Tensor | None, with_pe: torch.Tensor | None) -> torch.Tensor:
        """``keys`` plus upstream's ``attention(q=keys + pe, k=queries + tokens, v=queries)``, (N, 4096, 256); the
        image side either ``projected`` already (the first layer's per-slice queries) or ``with_pe``, to be met by
        56 columns."""
        token_keys = _heads(attention.k_proj(queries + tokens)) * SCORE_SCALE  # (N, 8, 7, 16)
        token_values = _heads(attention.v_proj(queries))
        if projected is not None:  # (N, 4096, 128) @ the heads' keys block-diagonal, (N, 128, 56)
            eye = torch.eye(HEADS, dtype=projected.dtype, device=projected.device).reshape(1, HEADS, 1, HEADS, 1)
            scores = projected @ (token_keys.transpose(-1, -2).unsqueeze(3) * eye).flatten(1, 2).flatten(2)
        else:  # K W_q^T k + b_q k, with W_q^T k (N, 256, 56) formed first
            query_weight = attention.q_proj.weight.unflatten(0, (HEADS, -1))  # (8, 16, 256)
            columns = (token_keys @ query_weight).flatten(1, 2)  # (N, 56, 256)
            offsets = (token_keys @ attention.q_proj.bias.unflatten(0, (HEADS, -1, 1))).flatten(1, 3)  # (N, 56)
            scores = torch.baddbmm(offsets.unsqueeze(1), with_pe, columns.transpose(-1, -2))
        weights = torch.softmax(scores.unflatten(-1, (HEADS, TOKENS)), dim=-1).flatten(2)  # (N, 4096, 56)
        out_weight = attention.out_proj.weight.unflatten(1, (HEADS, -1))  # (256, 8, 16)
        # Each head's weights sum to 1, so the 8 heads' rows of (v W_o^T + b_o / 8) carry the output bias once.
        mixed = torch.einsum("nhtd,ohd->nhto", token_values, out_weight).flatten(1, 2) + attention.out_proj.bias / HEADS
        return torch.baddbmm(keys, weights, mixed)  # (N, 56, 256) -> keys + (N, 4096, 256)

    def _mask(self, keys: torch.Tensor, hyper: torch.Tensor) -> torch.Tensor:
        """Upscaling and mask token 0's product, position-major, then the (N, 256, 256) mask in image order."""
        up = torch.addmm(self.up1_bias, keys.flatten(0, 1), self.up1_weight).unflatten(-1, (4, -1))  # (N*4096, 4, 64)
        up = F.gelu(F.layer_norm(up, (up.shape[-1],), self.norm2d.weight, self.norm2d.bias, self.norm2d.eps))
        up = F.gelu(torch.addmm(self.up2_bias, up.flatten(0, 1), self.up2_weight))  # (N*16384, 4*32)
        mask = torch.bmm(up.reshape(hyper.shape[0], -1, hyper.shape[-1]), hyper.unsqueeze(2))  # (N, 65536, 1)
        # (y, x, i, j, k, l) -> row 4y + 2i + k, column 4x + 2j + l
        mask = mask.reshape(-1, SIDE, SIDE, 2, 2, 2, 2).permute(0, 1, 3, 5, 2, 4, 6)
        return mask.reshape(-1, 4 * SIDE, 4 * SIDE)
