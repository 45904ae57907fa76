"""The scene priors: decoder-only transformers over [condition tokens; image tokens] (DALL-E v1).

Ramesh et al. 2021 ("Zero-Shot Text-to-Image Generation") model the caption's tokens followed
by the image's VQ codes, read in raster order, as one sequence with a causal transformer. This
is the same at laptop size: ``text_len`` word ids (core.nets.text.Tokenizer, padded), a
begin-of-image token, then ``grid * grid`` codes of a VQ-VAE (core.nets.vqvae). The loss is the
cross-entropy of the image codes only (the text is given, never generated).

Classifier-free guidance (Ho & Salimans 2022) needs the model to know the unconditional
distribution too: training replaces the caption by padding for a share of the images, and
sampling mixes the two predictions (core/pipelines/scene.py).

The layout prior (:class:`LayoutPrior`) is the same network with an explicit layout in place
of the caption: the layout stage of core/data/layouts.py turns a prompt into background,
shapes, colours, sizes and boxes, and the image codes are drawn conditioned on those tokens
(Make-A-Scene's scene tokens, Gafni et al. 2022), so what the prompt asks for is decided
before the first code is drawn. :class:`CodePrior` holds what the two share.

``forward(cond, codes)`` returns the logits of every image code (training, scoring);
``start(cond, cache)`` and ``step(codes, cache)`` run the same network incrementally with a
key/value cache for sampling.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from core.nets.text import PAD, SPECIALS, Block, KVCache, Tokenizer
from core.registry import register


@dataclass
class CodePriorConfig:
    """What every code prior shares: the VQ-VAE grid it models and the transformer's size."""

    grid: int = 8  # the VQ-VAE's codes per side
    codebook_size: int = 512
    width: int = 192
    layers: int = 4
    heads: int = 6
    vqvae: str = ""  # name of the VQ-VAE whose codes this prior models
    vqvae_sha256: str = ""  # and its weights' hash, so a different VQ-VAE is refused

    def __post_init__(self) -> None:
        if self.grid < 1 or self.codebook_size < 2:
            raise ValueError("grid and codebook_size must be positive")
        if self.width % self.heads:
            raise ValueError(f"width ({self.width}) must be a multiple of heads ({self.heads})")

    @property
    def image_len(self) -> int:
        return self.grid * self.grid


@dataclass
class PriorConfig(CodePriorConfig):
    vocab: list[str] = field(default_factory=list)  # the caption words (Tokenizer)
    text_len: int = 24  # caption words read; longer captions are cut (with a notice)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.text_len < 1:
            raise ValueError("text_len must be positive")


@dataclass
class LayoutPriorConfig(CodePriorConfig):
    # The layout's token format (core/data/layouts.py, layouts.token_format()): recorded so
    # that weights trained on another format are refused, and read to find each object's
    # tokens and box.
    layout_len: int = 23
    layout_vocab: int = 49
    object_start: int = 2  # the first object's first token
    object_tokens: int = 7  # shape, colour, size, x0, y0, x1, y1
    bin_token: int = 17  # the id of box bin 0
    box_bins: int = 32
    # Where a code cell lies in an object's box: place_bins steps per side over the box and a
    # margin of a quarter of it around it (the cells an anti-aliased edge reaches).
    place_bins: int = 12

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.layout_len < 1 or self.layout_vocab < 2:
            raise ValueError("layout_len and layout_vocab must be positive")
        if min(self.object_tokens, self.box_bins, self.place_bins) < 1 \
                or self.object_tokens < 7 or self.object_start < 0:
            raise ValueError("object_tokens (at least 7), box_bins and place_bins must be "
                             "positive")

    @property
    def max_objects(self) -> int:
        return (self.layout_len - self.object_start) // self.object_tokens


class CodePrior(nn.Module):
    """A causal transformer over [condition tokens; begin-of-image; image codes].

    Subclasses say what the condition is: ``_build_condition`` makes its embedding (first, so
    parameters are created in the same order as before the split) and ``embed_condition`` reads
    it. The condition is given, never generated: ``forward`` returns logits of image codes."""

    config: CodePriorConfig
    cond_len: int

    def __init__(self, config: CodePriorConfig) -> None:
        super().__init__()
        self.config = config
        w = config.width
        self._build_condition(w)
        # Index codebook_size is the begin-of-image token.
        self.image_embed = nn.Embedding(config.codebook_size + 1, w)
        self.pos = nn.Parameter(torch.zeros(self.cond_len + config.image_len, w))
        self.blocks = nn.ModuleList([Block(w, config.heads, causal=True)
                                     for _ in range(config.layers)])
        self.ln = nn.LayerNorm(w)
        self.head = nn.Linear(w, config.codebook_size, bias=False)
        self.apply(self._init)
        nn.init.normal_(self.pos, std=0.02)

    def _build_condition(self, width: int) -> None:
        raise NotImplementedError

    def embed_condition(self, cond: torch.Tensor) -> torch.Tensor:
        """(N, cond_len) ids -> (N, cond_len, width)."""
        raise NotImplementedError

    def code_condition(self, cond: torch.Tensor) -> torch.Tensor | None:
        """(N, image_len, width) added to the input that predicts each code, or None (the
        caption prior: the condition reaches the codes through attention alone)."""
        return None

    def null_condition(self, n: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """The unconditional input: all padding (what training drops conditions to; PAD is
        also the layout tokens' empty slot)."""
        return torch.full((n, self.cond_len), PAD, dtype=torch.long, device=device)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)

    @property
    def boi(self) -> int:
        return self.config.codebook_size

    def _run(self, x: torch.Tensor, caches: list[KVCache] | None) -> torch.Tensor:
        for i, block in enumerate(self.blocks):
            x = block(x, None if caches is None else caches[i])
        return self.head(self.ln(x))

    def forward(self, cond: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """cond (N, cond_len) ids, codes (N, image_len) -> logits (N, image_len, K): position
        i predicts code i from the condition and codes 0..i-1."""
        n = codes.shape[0]
        shifted = torch.cat([torch.full((n, 1), self.boi, dtype=torch.long, device=codes.device),
                             codes[:, :-1].long()], 1)
        image = self.image_embed(shifted)
        per_code = self.code_condition(cond)
        if per_code is not None:
            image = image + per_code
        x = torch.cat([self.embed_condition(cond), image], 1) + self.pos
        return self._run(x, None)[:, self.cond_len:]

    def start(self, cond: torch.Tensor, caches: list[KVCache]) -> torch.Tensor:
        """Feed the condition and the begin-of-image token; logits (N, K) of the first code."""
        boi = torch.full((cond.shape[0], 1), self.boi, dtype=torch.long, device=cond.device)
        image = self.image_embed(boi)
        caches[0].context = per_code = self.code_condition(cond)
        if per_code is not None:
            image = image + per_code[:, :1]
        x = torch.cat([self.embed_condition(cond), image], 1) + self.pos[:self.cond_len + 1]
        return self._run(x, caches)[:, -1]

    def step(self, codes: torch.Tensor, caches: list[KVCache]) -> torch.Tensor:
        """Feed codes (N, L) that follow what the caches hold; logits (N, K) of the next code.

        Position ``len(cache)`` onwards; after the last image code there is nothing to predict,
        so feeding the final code is never needed."""
        past, length = len(caches[0]), codes.shape[1]
        x = self.image_embed(codes.long()) + self.pos[past:past + length]
        per_code = caches[0].context
        if per_code is not None:  # the input at position past predicts code past - cond_len
            first = past - self.cond_len
            x = x + per_code[:, first:first + length]
        return self._run(x, caches)[:, -1]


@register("prior", config=PriorConfig)
class ScenePrior(CodePrior):
    """The text-to-scene prior: the condition is the caption's word ids."""

    config: PriorConfig

    def _build_condition(self, width: int) -> None:
        self.cond_len = self.config.text_len
        self.tokenizer = Tokenizer(self.config.vocab)
        self.text_embed = nn.Embedding(len(SPECIALS) + len(self.config.vocab), width)

    def embed_condition(self, cond: torch.Tensor) -> torch.Tensor:
        return self.text_embed(cond)


@register("layout_prior", config=LayoutPriorConfig)
class LayoutPrior(CodePrior):
    """The layout-to-scene prior (Make-A-Scene's scene tokens, Gafni et al. 2022): the condition
    is an explicit layout as token ids (core/data/layouts.py). Every token group sits at a fixed
    position (background, second background, then seven tokens per object), so the learned
    position embedding tells a box edge from a colour; id 0 is an empty slot, and a layout of
    zeros the unconditional input.

    The layout also reaches every code directly, as grounding tokens do in GLIGEN (Li et al.
    2023): the input that predicts a code gets the background's embedding and, for each object
    whose box (plus a margin) holds the code's cell, the embeddings of its shape, colour and
    size and of where in the box the cell lies. A shape is drawn in its box's unit square, so
    that place says which part of the shape the code shows; the network need not learn the
    geometry of boxes from the box tokens alone."""

    config: LayoutPriorConfig

    def _build_condition(self, width: int) -> None:
        c = self.config
        self.cond_len = c.layout_len
        self.layout_embed = nn.Embedding(c.layout_vocab, width)
        self.place_embed = nn.Embedding(c.place_bins * c.place_bins, width)

    def embed_condition(self, cond: torch.Tensor) -> torch.Tensor:
        return self.layout_embed(cond)

    def _places(self, lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Place bins (N, grid) of the cell centres along one axis of boxes [lo, hi) (N,), and
        whether each centre lies within the box's margin."""
        c, margin = self.config, 0.25
        centres = (torch.arange(c.grid, device=lo.device, dtype=torch.float32) + 0.5) / c.grid
        u = (centres[None] - lo[:, None]) / (hi - lo).clamp(min=1e-6)[:, None]
        place = torch.floor((u + margin) / (1 + 2 * margin) * c.place_bins)
        inside = (place >= 0) & (place < c.place_bins)
        return place.clamp(0, c.place_bins - 1).long(), inside

    def code_condition(self, cond: torch.Tensor) -> torch.Tensor:
        c = self.config
        n, cells = cond.shape[0], c.grid * c.grid
        # Both background tones reach every cell.
        out = self.layout_embed(cond[:, :c.object_start]).sum(1)[:, None].expand(n, cells, -1)
        for k in range(c.max_objects):
            group = cond[:, c.object_start + k * c.object_tokens:][:, :c.object_tokens]
            edges = (group[:, 3:7] - c.bin_token).clamp(0, c.box_bins - 1).float()
            x, x_in = self._places(edges[:, 0] / c.box_bins, (edges[:, 2] + 1) / c.box_bins)
            y, y_in = self._places(edges[:, 1] / c.box_bins, (edges[:, 3] + 1) / c.box_bins)
            hit = y_in[:, :, None] & x_in[:, None, :] & (group[:, :1] != 0)[:, :, None]
            place = self.place_embed(y[:, :, None] * c.place_bins + x[:, None, :])
            what = self.layout_embed(group[:, :3]).sum(1)[:, None, None]
            out = out + ((place + what) * hit[..., None]).view(n, cells, -1)
        return out
