"""The word tokenizer and the transformer block shared by the scene prior and the reranker.

The tokenizer is a plain word list built from training captions (:func:`build_vocab`): id 0 is
padding (also the "no text" of classifier-free guidance), id 1 stands for any unknown word, and
ids 2.. are the words. It lives in each model's config, so a model card carries its own
vocabulary and a user model trained on other captions brings its own words.

The block is the pre-norm GPT block (Radford et al. 2019; karpathy/nanoGPT's layout) with an
optional key/value cache: when sampling one image token at a time, each layer keeps the keys
and values of the tokens it has already seen, so a step costs one token's work instead of the
whole sequence's.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

PAD, UNK = 0, 1
SPECIALS = ("<pad>", "<unk>")


def words(text: str) -> list[str]:
    """Lower-case words with punctuation dropped (the same reading as captions.tokenize)."""
    return re.findall(r"[^\W_]+", str(text).lower())


def build_vocab(captions: Iterable[str | None], min_count: int = 1) -> list[str]:
    """The words of ``captions`` seen at least ``min_count`` times, most frequent first."""
    counts = Counter(w for c in captions if c for w in words(c))
    return sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))


@dataclass(frozen=True)
class Encoded:
    ids: list[int]  # exactly ``length`` ids, padded with PAD
    unknown: tuple[str, ...]  # words outside the vocabulary (kept as UNK ids)
    dropped: tuple[str, ...]  # words cut off because the text was longer than ``length``


class Tokenizer:
    """Words <-> ids for one vocabulary (see the module docstring for the special ids)."""

    def __init__(self, vocab: Iterable[str]) -> None:
        self.vocab = list(vocab)
        self.index = {w: i + len(SPECIALS) for i, w in enumerate(self.vocab)}

    def __len__(self) -> int:
        return len(self.vocab) + len(SPECIALS)

    def __contains__(self, word: str) -> bool:
        return word in self.index

    def encode(self, text: str, length: int) -> Encoded:
        ws = words(text)
        unknown = tuple(w for w in ws if w not in self.index)
        kept, dropped = ws[:length], tuple(ws[length:])
        ids = [self.index.get(w, UNK) for w in kept]
        return Encoded(ids + [PAD] * (length - len(ids)), unknown, dropped)

    def batch(self, texts: Iterable[str | None], length: int) -> torch.Tensor:
        """(N, length) long ids; None (or "") is the empty text, all padding."""
        return torch.tensor([self.encode(t or "", length).ids for t in texts], dtype=torch.long)


class KVCache:
    """Keys and values a layer has seen so far, (N, heads, L, head_dim) each, and ``context``:
    anything a model computed from its condition once and reads again at every step (the
    layout prior's per-code layout features)."""

    def __init__(self) -> None:
        self.k: torch.Tensor | None = None
        self.v: torch.Tensor | None = None
        self.context: torch.Tensor | None = None

    def __len__(self) -> int:
        return 0 if self.k is None else int(self.k.shape[2])


class SelfAttention(nn.Module):
    def __init__(self, width: int, heads: int, causal: bool) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"width ({width}) must be a multiple of heads ({heads})")
        self.heads, self.causal = heads, causal
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None,
                padding: torch.Tensor | None = None) -> torch.Tensor:
        n, length, width = x.shape
        q, k, v = (t.view(n, length, self.heads, -1).transpose(1, 2)
                   for t in self.qkv(x).split(width, dim=2))
        past = 0
        if cache is not None:
            past = len(cache)
            if cache.k is not None:
                k, v = torch.cat([cache.k, k], 2), torch.cat([cache.v, v], 2)
            cache.k, cache.v = k, v
        mask = None
        if self.causal and length > 1:
            # Query j (position past + j) sees keys 0..past + j.
            mask = torch.ones(length, past + length, dtype=torch.bool, device=x.device).tril(past)
        if padding is not None:  # (N, L) True where a key is padding: never attend to it
            keep = ~padding[:, None, None, :]
            mask = keep if mask is None else mask & keep
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(y.transpose(1, 2).reshape(n, length, width))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, width: int, heads: int, causal: bool = True) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(width)
        self.attn = SelfAttention(width, heads, causal)
        self.ln2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(),
                                 nn.Linear(4 * width, width))

    def forward(self, x: torch.Tensor, cache: KVCache | None = None,
                padding: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), cache, padding)
        return x + self.mlp(self.ln2(x))
