"""Third-party notices the app shows (Help > About Easel) for files it ships that others wrote.

Plain text, nothing imported: the About box is built on the GUI thread, which never loads
torch, diffusers or transformers (core.thirdparty imports torch as soon as it is imported).
"""

from __future__ import annotations

CLIP_VOCABULARY = (
    "Stable Diffusion prompts are read with OpenAI CLIP's byte-pair vocabulary "
    "(resources/clip/bpe_simple_vocab_16e6.txt.gz), MIT licence, Copyright (c) 2021 "
    "OpenAI: see resources/clip/LICENSE.")

NOTICES: tuple[str, ...] = (CLIP_VOCABULARY,)
