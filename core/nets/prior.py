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
    # The layout's token format (core/data/layouts.py): its length and token count, recorded
    # so that weights trained on another format are refused.
    layout_len: int = 23
    layout_vocab: int = 49

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.layout_len < 1 or self.layout_vocab < 2:
            raise ValueError("layout_len and layout_vocab must be positive")


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
        x = torch.cat([self.embed_condition(cond), self.image_embed(shifted)], 1) + self.pos
        return self._run(x, None)[:, self.cond_len:]

    def start(self, cond: torch.Tensor, caches: list[KVCache]) -> torch.Tensor:
        """Feed the condition and the begin-of-image token; logits (N, K) of the first code."""
        boi = torch.full((cond.shape[0], 1), self.boi, dtype=torch.long, device=cond.device)
        x = torch.cat([self.embed_condition(cond), self.image_embed(boi)], 1) \
            + self.pos[:self.cond_len + 1]
        return self._run(x, caches)[:, -1]

    def step(self, codes: torch.Tensor, caches: list[KVCache]) -> torch.Tensor:
        """Feed codes (N, L) that follow what the caches hold; logits (N, K) of the next code.

        Position ``len(cache)`` onwards; after the last image code there is nothing to predict,
        so feeding the final code is never needed."""
        past = len(caches[0])
        x = self.image_embed(codes.long()) + self.pos[past:past + codes.shape[1]]
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
    zeros the unconditional input."""

    config: LayoutPriorConfig

    def _build_condition(self, width: int) -> None:
        self.cond_len = self.config.layout_len
        self.layout_embed = nn.Embedding(self.config.layout_vocab, width)

    def embed_condition(self, cond: torch.Tensor) -> torch.Tensor:
        return self.layout_embed(cond)
