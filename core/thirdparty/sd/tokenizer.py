"""CLIP's prompt tokenizer, built from the vocabulary file Easel ships (no network).

A single-file SD checkpoint holds no tokenizer, and the one in a diffusers folder on the Hub
would have to be downloaded. OpenAI's CLIP byte-pair vocabulary (MIT licence,
``resources/clip/``) is all a CLIP tokenizer needs: its first line is a header, the next
48,894 lines are the merges in order, and the vocabulary is the 256 byte symbols, the same
with the end-of-word mark ``</w>``, one token per merge, then the start and end markers
(49,408 in all), as CLIP's own simple_tokenizer.py builds it.

SD 1.x pads prompts with the end marker, SD 2.x (OpenCLIP) with ``!`` (id 0); each config
folder's ``tokenizer/tokenizer_config.json`` says which.
"""

from __future__ import annotations

import functools
import gzip
import json
from pathlib import Path
from typing import Any

from core import paths
from core.thirdparty.files import ThirdPartyError
from core.thirdparty.sd import offline

VOCAB_FILE = "bpe_simple_vocab_16e6.txt.gz"
MERGES = 49152 - 256 - 2  # CLIP's vocabulary size less the bytes and the two markers
START, END = "<|startoftext|>", "<|endoftext|>"
MAX_TOKENS = 77  # CLIP's context: start, 75 tokens, end


def vocab_path() -> Path:
    return paths.resources_dir() / "clip" / VOCAB_FILE


def _byte_symbols() -> list[str]:
    """GPT-2/CLIP's printable stand-in for each byte, in the order CLIP numbers them: the
    printable Latin-1 bytes stand for themselves and come first; the other bytes follow, in
    byte order, as the code points from 256 up."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
            *range(ord("®"), ord("ÿ") + 1)]
    return [chr(b) for b in keep] + [chr(256 + i) for i in range(256 - len(keep))]


@functools.lru_cache(maxsize=1)
def vocabulary() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """(token -> id, merges) from the shipped vocabulary file; ThirdPartyError when missing."""
    path = vocab_path()
    try:
        lines = gzip.decompress(path.read_bytes()).decode("utf-8").split("\n")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise ThirdPartyError(f"Easel's copy of CLIP's vocabulary ({path}) cannot be read "
                              f"({exc}); reinstall Easel.") from None
    merges = [tuple(line.split()) for line in lines[1:1 + MERGES]]
    if len(merges) != MERGES or any(len(m) != 2 for m in merges):
        raise ThirdPartyError(f"{path} is not CLIP's vocabulary; reinstall Easel.")
    tokens = _byte_symbols()
    tokens += [t + "</w>" for t in tokens]
    tokens += ["".join(m) for m in merges] + [START, END]
    return {t: i for i, t in enumerate(tokens)}, merges


def clip_tokenizer(pad_token: str = END, max_length: int = MAX_TOKENS) -> Any:
    """A transformers CLIPTokenizer with CLIP's vocabulary (transformers 5 takes the vocabulary
    and merges themselves: ``vocab_file=`` would be ignored and leave an empty tokenizer)."""
    offline()
    from transformers import CLIPTokenizer

    vocab, merges = vocabulary()
    tok = CLIPTokenizer(vocab=vocab, merges=merges, pad_token=pad_token,
                        model_max_length=max_length)
    if len(tok) != len(vocab):
        raise ThirdPartyError("The CLIP tokenizer did not take Easel's vocabulary (transformers "
                              f"{_version()} builds one of {len(tok)} tokens).")
    return tok


def folder_tokenizer(config_dir: Path) -> Any:
    """The tokenizer a config folder describes (its ``tokenizer/tokenizer_config.json``: the
    padding token and length), built from the shipped vocabulary."""
    try:
        cfg = json.loads((config_dir / "tokenizer" / "tokenizer_config.json").read_text("utf-8"))
    except (OSError, ValueError):
        cfg = {}
    return clip_tokenizer(str(cfg.get("pad_token", END)),
                          int(cfg.get("model_max_length", MAX_TOKENS)))


def _version() -> str:
    import transformers

    return transformers.__version__
