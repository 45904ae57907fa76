"""Sampling a transformer prior (core/nets/prior.py: a caption's or a layout's) one code at a
time with its key/value cache, shared by the scene pipeline, the priors' training grids and
evaluation: temperature, top-k, top-p (nucleus) and classifier-free guidance, with codes that
may be kept fixed (region editing).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import torch

from core.jobs import yield_from
from core.nets.prior import CodePrior
from core.nets.text import KVCache


def filter_logits(logits: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Keep the ``top_k`` largest logits and the smallest set whose probability reaches
    ``top_p`` (nucleus sampling, Holtzman et al. 2020); the rest become -inf."""
    if 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        probs = sorted_logits.softmax(-1)
        # Drop a token when the tokens before it already reach top_p (the first always stays).
        drop = probs.cumsum(-1) - probs >= top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    return logits


def sample_steps(prior: CodePrior, cond: torch.Tensor, generator: torch.Generator,
                 temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                 guidance: float = 1.0, known: torch.Tensor | None = None
                 ) -> Generator[tuple[int, int], None, torch.Tensor]:
    """Sample code grids for the condition ``cond`` (N, cond_len: caption or layout ids),
    yielding (codes done, total) after each code; returns (N, image_len) codes. ``known``
    (N, image_len) holds codes to keep (>= 0) and -1 where a code is to be sampled.
    Classifier-free guidance (guidance != 1) runs the unconditional input alongside and mixes
    logits as u + g * (c - u) (Ho & Salimans 2022)."""
    n, total = cond.shape[0], prior.config.image_len
    device = cond.device
    guided = guidance != 1.0
    inputs = torch.cat([cond, prior.null_condition(n, device)]) if guided else cond
    caches = [KVCache() for _ in prior.blocks]
    codes = torch.zeros(n, total, dtype=torch.long, device=device)
    logits = prior.start(inputs, caches)
    for i in range(total):
        if guided:
            cond, uncond = logits[:n].float(), logits[n:].float()
            mixed = uncond + guidance * (cond - uncond)
        else:
            mixed = logits.float()
        mixed = filter_logits(mixed / temperature, top_k, top_p)
        # Drawn on the CPU with the job's generator: same seed, same pictures on any device.
        pick = torch.multinomial(mixed.softmax(-1).cpu(), 1, generator=generator).squeeze(1)
        pick = pick.to(device)
        if known is not None:
            keep = known[:, i] >= 0
            pick = torch.where(keep, known[:, i], pick)
        codes[:, i] = pick
        yield i + 1, total
        if i + 1 < total:
            step_in = pick[:, None]
            logits = prior.step(torch.cat([step_in, step_in]) if guided else step_in, caches)
    return codes


def sample_codes(prior: CodePrior, cond: torch.Tensor, generator: torch.Generator,
                 **options: Any) -> torch.Tensor:
    """:func:`sample_steps` run to the end (training grids, benchmarks)."""
    with torch.no_grad():
        return yield_from(sample_steps(prior, cond, generator, **options), None)


@torch.no_grad()
def code_logprobs(prior: CodePrior, cond: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """log p(code_i | condition, codes before i) for every code: (N, image_len)."""
    logits = prior(cond, codes).float().log_softmax(-1)
    return logits.gather(-1, codes.long()[..., None]).squeeze(-1)
