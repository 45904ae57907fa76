"""The scene prior: a decoder-only transformer over [text tokens; image tokens] (DALL-E v1).

Ramesh et al. 2021 ("Zero-Shot Text-to-Image Generation") model the caption's tokens followed
by the image's VQ codes, read in raster order, as one sequence with a causal transformer. This
is the same at laptop size: ``text_len`` word ids (core.nets.text.Tokenizer, padded), a
begin-of-image token, then ``grid * grid`` codes of a VQ-VAE (core.nets.vqvae). The loss is the
cross-entropy of the image codes only (the text is given, never generated).

Classifier-free guidance (Ho & Salimans 2022) needs the model to know the unconditional
distribution too: training replaces the caption by padding for a share of the images, and
sampling mixes the two predictions (core/pipelines/scene.py).

``forward(text, codes)`` returns the logits of every image code (training, scoring);
``start(text, cache)`` and ``step(codes, cache)`` run the same network incrementally with a
key/value cache for sampling.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from core.nets.text import PAD, SPECIALS, Block, KVCache, Tokenizer
from core.registry import register


@dataclass
class PriorConfig:
    vocab: list[str] = field(default_factory=list)  # the caption words (Tokenizer)
    text_len: int = 24  # caption words read; longer captions are cut (with a notice)
    grid: int = 8  # the VQ-VAE's codes per side
    codebook_size: int = 512
    width: int = 192
    layers: int = 4
    heads: int = 6
    vqvae: str = ""  # name of the VQ-VAE whose codes this prior models
    vqvae_sha256: str = ""  # and its weights' hash, so a different VQ-VAE is refused

    def __post_init__(self) -> None:
        if self.text_len < 1 or self.grid < 1 or self.codebook_size < 2:
            raise ValueError("text_len, grid and codebook_size must be positive")
        if self.width % self.heads:
            raise ValueError(f"width ({self.width}) must be a multiple of heads ({self.heads})")

    @property
    def image_len(self) -> int:
        return self.grid * self.grid


@register("prior", config=PriorConfig)
class ScenePrior(nn.Module):
    def __init__(self, config: PriorConfig) -> None:
        super().__init__()
        self.config = config
        self.tokenizer = Tokenizer(config.vocab)
        w = config.width
        self.text_embed = nn.Embedding(len(SPECIALS) + len(config.vocab), w)
        # Index codebook_size is the begin-of-image token.
        self.image_embed = nn.Embedding(config.codebook_size + 1, w)
        self.pos = nn.Parameter(torch.zeros(config.text_len + config.image_len, w))
        self.blocks = nn.ModuleList([Block(w, config.heads, causal=True)
                                     for _ in range(config.layers)])
        self.ln = nn.LayerNorm(w)
        self.head = nn.Linear(w, config.codebook_size, bias=False)
        self.apply(self._init)
        nn.init.normal_(self.pos, std=0.02)

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

    def forward(self, text: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """text (N, text_len) ids, codes (N, image_len) -> logits (N, image_len, K): position
        i predicts code i from the text and codes 0..i-1."""
        t = self.config.text_len
        n = codes.shape[0]
        shifted = torch.cat([torch.full((n, 1), self.boi, dtype=torch.long, device=codes.device),
                             codes[:, :-1].long()], 1)
        x = torch.cat([self.text_embed(text), self.image_embed(shifted)], 1) + self.pos
        return self._run(x, None)[:, t:]

    def start(self, text: torch.Tensor, caches: list[KVCache]) -> torch.Tensor:
        """Feed the text and the begin-of-image token; logits (N, K) of the first code."""
        t = self.config.text_len
        boi = torch.full((text.shape[0], 1), self.boi, dtype=torch.long, device=text.device)
        x = torch.cat([self.text_embed(text), self.image_embed(boi)], 1) + self.pos[:t + 1]
        return self._run(x, caches)[:, -1]

    def step(self, codes: torch.Tensor, caches: list[KVCache]) -> torch.Tensor:
        """Feed codes (N, L) that follow what the caches hold; logits (N, K) of the next code.

        Position ``len(cache)`` onwards; after the last image code there is nothing to predict,
        so feeding the final code is never needed."""
        past = len(caches[0])
        x = self.image_embed(codes.long()) + self.pos[past:past + codes.shape[1]]
        return self._run(x, caches)[:, -1]

    def null_text(self, n: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """The unconditional input: all padding (what training drops captions to)."""
        return torch.full((n, self.config.text_len), PAD, dtype=torch.long, device=device)
