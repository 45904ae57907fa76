"""A small contrastive text/image model that scores how well a picture fits a caption.

CLIP (Radford et al. 2021) at laptop size: an image encoder (a strided CNN whose last map is
flattened, so where things are survives, not just what) and a text encoder (word embeddings,
two transformer blocks, mean over the words) map into one space where a caption and its picture
have a high cosine similarity. DALL-E (Ramesh et al. 2021) reranks its samples with such a
model; the scene pipeline does the same with :meth:`Reranker.score`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from core.nets.text import PAD, SPECIALS, Block, Tokenizer
from core.registry import register


@dataclass
class RerankerConfig:
    vocab: list[str] = field(default_factory=list)
    text_len: int = 24
    image_size: int = 64
    base: int = 32  # channels of the first image stage (doubling, at most 4x)
    width: int = 128  # text encoder width
    layers: int = 2
    heads: int = 4
    embed_dim: int = 128  # the shared space

    def __post_init__(self) -> None:
        s = self.image_size
        if s < 16 or s & (s - 1):
            raise ValueError(f"image_size must be a power of two >= 16, not {s}")
        if self.width % self.heads:
            raise ValueError(f"width ({self.width}) must be a multiple of heads ({self.heads})")


@register("reranker", config=RerankerConfig)
class Reranker(nn.Module):
    def __init__(self, config: RerankerConfig) -> None:
        super().__init__()
        self.config = config
        self.tokenizer = Tokenizer(config.vocab)
        layers: list[nn.Module] = []
        ch, size = 3, config.image_size
        for i in range(int(math.log2(size // 4))):  # stride-2 stages down to 4x4
            w = config.base * min(2 ** i, 4)
            layers += [nn.Conv2d(ch, w, 3, 2, 1), nn.GroupNorm(8, w), nn.GELU(),
                       nn.Conv2d(w, w, 3, 1, 1), nn.GELU()]
            ch = w
        self.image_encoder = nn.Sequential(*layers, nn.Flatten(),
                                           nn.Linear(ch * 16, 2 * config.embed_dim), nn.GELU(),
                                           nn.Linear(2 * config.embed_dim, config.embed_dim))
        w = config.width
        self.text_embed = nn.Embedding(len(SPECIALS) + len(config.vocab), w)
        self.text_pos = nn.Parameter(torch.randn(config.text_len, w) * 0.02)
        self.text_blocks = nn.ModuleList([Block(w, config.heads, causal=False)
                                          for _ in range(config.layers)])
        self.text_proj = nn.Sequential(nn.LayerNorm(w), nn.Linear(w, config.embed_dim))
        # Learned temperature, initialised to 1/0.07 as in CLIP.
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) in [-1, 1] (resized to image_size if needed) -> unit vectors (N, D)."""
        s = self.config.image_size
        if images.shape[-1] != s or images.shape[-2] != s:
            images = F.interpolate(images, size=(s, s), mode="area")
        return F.normalize(self.image_encoder(images), dim=-1)

    def encode_text(self, ids: torch.Tensor) -> torch.Tensor:
        """(N, text_len) word ids -> unit vectors (N, D)."""
        padding = ids == PAD
        padding[:, 0] = False  # an empty caption still attends to something
        x = self.text_embed(ids) + self.text_pos[: ids.shape[1]]
        for block in self.text_blocks:
            x = block(x, padding=padding)
        keep = (~padding).float().unsqueeze(-1)
        pooled = (x * keep).sum(1) / keep.sum(1)
        return F.normalize(self.text_proj(pooled), dim=-1)

    def texts(self, captions: list[str], device: torch.device | str = "cpu") -> torch.Tensor:
        return self.tokenizer.batch(captions, self.config.text_len).to(device)

    @torch.no_grad()
    def score(self, images: torch.Tensor, caption: str) -> torch.Tensor:
        """Cosine similarity of each image (N, 3, S, S) to one caption: (N,) in [-1, 1]."""
        t = self.encode_text(self.texts([caption], images.device))
        return (self.encode_image(images) @ t.t()).squeeze(1)
