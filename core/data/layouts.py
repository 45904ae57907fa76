"""Explicit scene layouts: the layout stage of text-to-scene, as tokens and as JSON.

A scene is drawn in two stages (Make-A-Scene's scene tokens, Gafni et al. 2022; layout-first
generation as in LayoutGPT, Feng et al. 2023): a prompt becomes a layout (background, and each
object's shape, colour, size and box), then the layout prior (core/nets/prior.py) draws the
picture's VQ codes conditioned on that layout. This module is the torch-free part:

- :func:`plan_layout`: prompt + seed -> Layout. The layout comes from the rule-based caption
  parser (core.data.captions.parse_prompt) and the world's own layout sampler
  (captions.layout_for), not from a learned model; a prompt it cannot draw faithfully (unknown
  or dangling words, more objects than a scene holds, a relation that does not link two
  different objects, an object the colour of its background) is refused with a one-line
  :class:`LayoutError`.
- :func:`layout_tokens` / :func:`tokens_layout`: a Layout <-> a fixed-length token sequence::

      [background, background2 or <none>,
       shape, colour, size, x0, y0, x1, y1,     (one group per object, left to right)
       ...  <none> x 7 for each missing object]

  Box edges are quantised on BINS bins per side (x0, y0 rounded down, x1, y1 up, so the
  decoded box covers the original one). All <none> is the "no layout" input that
  classifier-free guidance needs.
- :func:`layout_to_dict` / :func:`layout_from_dict` / :func:`parse_layout_json`: the JSON form
  the CLI, the panel and a PNG's metadata carry::

      {"background": "black", "background2": "white",        (background2 is optional)
       "objects": [{"shape": "star", "colour": "red", "size": "small",
                    "box": [x0, y0, x1, y1]}]}                 (fractions of the picture)

  strictly checked: every problem is one line naming it.
"""

from __future__ import annotations

import difflib
import json
import math
import random
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from core.data.captions import (
    VOCABULARY,
    Prompt,
    Requirement,
    caption_for,
    layout_for,
    parse_prompt,
)
from core.data.scenes import COLOUR_NAMES, SHAPES, SIZE_RANGE, SIZES, Layout, SceneObject

MAX_OBJECTS = 3  # the most objects a scene of the world holds
BINS = 32  # box quantisation: 2 px steps at 64 px
MAX_JSON_BYTES = 64 * 1024
PLAN_TRIES = 8  # rounds of the world's layout sampler before a prompt is found not to fit

NONE = "<none>"
# The token list; a model card records its length, so a change here is noticed at load time.
TOKENS: tuple[str, ...] = (
    (NONE,) + tuple(f"colour:{c}" for c in COLOUR_NAMES) + tuple(f"shape:{s}" for s in SHAPES)
    + tuple(f"size:{s}" for s in SIZES) + tuple(f"bin:{b}" for b in range(BINS)))
TOKEN_ID = {t: i for i, t in enumerate(TOKENS)}
OBJECT_TOKENS = 7  # shape, colour, size, x0, y0, x1, y1
LAYOUT_LEN = 2 + MAX_OBJECTS * OBJECT_TOKENS



def token_format() -> dict[str, int]:
    """The token format as a layout prior's config records it (core.nets.prior
    LayoutPriorConfig): a prior trained on another format is refused."""
    return {"layout_len": LAYOUT_LEN, "layout_vocab": len(TOKENS), "object_start": 2,
            "object_tokens": OBJECT_TOKENS, "bin_token": TOKEN_ID["bin:0"], "box_bins": BINS}


_OBJECT_KEYS = {"shape", "colour", "size", "box"}
_LAYOUT_KEYS = {"background", "background2", "objects"}
# Number words past the grammar's "three", so "four stars" is refused as a count.
_TOO_MANY = {"four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "many",
             "several", "lots"}
_RELATION_WORDS = {"to", "left", "right", "above", "over", "below", "under", "beneath", "itself",
                   "themselves"}


class LayoutError(ValueError):
    """A prompt or layout that cannot be drawn, as one user-readable line."""


# --------------------------------------------------------------------------- tokens


def canonical(layout: Layout) -> Layout:
    """The layout with its objects in reading order (left to right by box centre, then top to
    bottom): the order of the token groups."""
    return replace(layout, objects=tuple(sorted(
        layout.objects, key=lambda o: (o.bbox[0] + o.bbox[2], o.bbox[1] + o.bbox[3]))))


def _edge(v: float, up: bool) -> int:
    """A box edge in [0, 1] as a bin index: the lower edge of its bin (``up``: the upper)."""
    b = math.ceil(v * BINS) - 1 if up else math.floor(v * BINS)
    return min(BINS - 1, max(0, b))


def layout_tokens(layout: Layout) -> list[int]:
    """The layout as LAYOUT_LEN token ids (see the module docstring)."""
    if len(layout.objects) > MAX_OBJECTS:
        raise LayoutError(f"a scene holds at most {MAX_OBJECTS} objects, not "
                          f"{len(layout.objects)}")
    ids = [TOKEN_ID[f"colour:{layout.background}"],
           TOKEN_ID[f"colour:{layout.background2}"] if layout.background2 else 0]
    for o in canonical(layout).objects:
        x0, y0, x1, y1 = o.bbox
        ids += [TOKEN_ID[f"shape:{o.shape}"], TOKEN_ID[f"colour:{o.colour}"],
                TOKEN_ID[f"size:{o.size}"]]
        ids += [TOKEN_ID[f"bin:{_edge(x0, False)}"], TOKEN_ID[f"bin:{_edge(y0, False)}"],
                TOKEN_ID[f"bin:{max(_edge(x1, True), _edge(x0, False))}"],
                TOKEN_ID[f"bin:{max(_edge(y1, True), _edge(y0, False))}"]]
    return ids + [0] * (LAYOUT_LEN - len(ids))


def _word(token_id: int, kind: str) -> str:
    name = TOKENS[token_id] if 0 <= token_id < len(TOKENS) else "?"
    prefix, _, value = name.partition(":")
    if prefix != kind:
        raise LayoutError(f"token {token_id} ({name}) where a {kind} belongs")
    return value


def tokens_layout(ids: Sequence[int]) -> Layout:
    """The Layout that LAYOUT_LEN token ids describe (boxes at bin edges)."""
    ids = [int(i) for i in ids]
    if len(ids) != LAYOUT_LEN:
        raise LayoutError(f"a layout is {LAYOUT_LEN} tokens, not {len(ids)}")
    background = _word(ids[0], "colour")
    background2 = _word(ids[1], "colour") if ids[1] else None
    objects = []
    for k in range(MAX_OBJECTS):
        group = ids[2 + k * OBJECT_TOKENS: 2 + (k + 1) * OBJECT_TOKENS]
        if not any(group):
            continue
        b = [int(_word(t, "bin")) for t in group[3:]]
        box = (b[0] / BINS, b[1] / BINS, (b[2] + 1) / BINS, (b[3] + 1) / BINS)
        objects.append(SceneObject(_word(group[0], "shape"), _word(group[1], "colour"),
                                   _word(group[2], "size"), box))
    return Layout(tuple(objects), background, background2)


def label_layout(labels: dict[str, Any]) -> Layout:
    """The Layout of a scenes world sample's labels (Sample.labels): the exact layout drawn."""
    objects = tuple(SceneObject(o["shape"], o["colour"], o["size"], tuple(o["bbox"]))
                    for o in labels["objects"])
    return Layout(objects, labels["background"], labels.get("background2"))


# --------------------------------------------------------------------------- JSON


def layout_to_dict(layout: Layout) -> dict[str, Any]:
    """The JSON form of a layout (boxes rounded to 4 decimals)."""
    d: dict[str, Any] = {"background": layout.background}
    if layout.background2:
        d["background2"] = layout.background2
    d["objects"] = [{"shape": o.shape, "colour": o.colour, "size": o.size,
                     "box": [round(float(v), 4) for v in o.bbox]} for o in layout.objects]
    return d


def _choice(value: Any, known: Sequence[str], what: str) -> str:
    if not isinstance(value, str) or value not in known:
        close = difflib.get_close_matches(str(value), known, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise LayoutError(f"unknown {what} {value!r}{hint}; known: {', '.join(known)}")
    return value


def _box(value: Any, where: str) -> tuple[float, float, float, float]:
    if not isinstance(value, list) or len(value) != 4 or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        raise LayoutError(f"{where}: 'box' must be four numbers [x0, y0, x1, y1], not {value!r}")
    x0, y0, x1, y1 = (float(v) for v in value)
    if not all(0.0 <= v <= 1.0 for v in (x0, y0, x1, y1)):
        raise LayoutError(f"{where}: the box {value} leaves the picture (coordinates are "
                          "fractions from 0 to 1)")
    if x0 >= x1 or y0 >= y1:
        raise LayoutError(f"{where}: the box {value} is empty (x0 must be below x1 and y0 "
                          "below y1)")
    return x0, y0, x1, y1


def size_of(box: tuple[float, float, float, float]) -> str:
    """The size word of a box: the nearer of the world's two size ranges to its longer side."""
    side = max(box[2] - box[0], box[3] - box[1])
    return min(SIZES, key=lambda s: abs(side - sum(SIZE_RANGE[s]) / 2))


def layout_from_dict(d: Any) -> Layout:
    """A Layout from its JSON form, strictly checked (LayoutError naming the problem).

    An object's ``size`` may be left out: it is read from the box (the nearer of the world's
    small and big sides)."""
    if not isinstance(d, dict):
        raise LayoutError("a layout is a JSON object with 'background' and 'objects'")
    extra = set(d) - _LAYOUT_KEYS
    if extra:
        raise LayoutError(f"unknown layout key {sorted(extra)[0]!r}; a layout has "
                          "'background', 'objects' and optionally 'background2'")
    if "background" not in d:
        raise LayoutError("the layout has no 'background' colour")
    background = _choice(d["background"], COLOUR_NAMES, "background colour")
    background2 = None
    if d.get("background2") is not None:
        background2 = _choice(d["background2"], COLOUR_NAMES, "second background colour")
        if background2 == background:
            raise LayoutError("the second background colour must differ from the first")
    objects = d.get("objects")
    if not isinstance(objects, list) or not objects:
        raise LayoutError(f"the layout needs a list of 1 to {MAX_OBJECTS} 'objects'")
    if len(objects) > MAX_OBJECTS:
        raise LayoutError(f"the layout has {len(objects)} objects; a scene holds at most "
                          f"{MAX_OBJECTS}")
    placed = []
    for k, o in enumerate(objects, 1):
        where = f"object {k}"
        if not isinstance(o, dict):
            raise LayoutError(f"{where} must be a JSON object with shape, colour, size and box")
        extra = set(o) - _OBJECT_KEYS
        if extra:
            raise LayoutError(f"{where}: unknown key {sorted(extra)[0]!r}; an object has "
                              "'shape', 'colour', 'size' and 'box'")
        for key in ("shape", "colour", "box"):
            if key not in o:
                raise LayoutError(f"{where} has no {key!r}")
        shape = _choice(o["shape"], SHAPES, f"shape of {where}")
        colour = _choice(o["colour"], COLOUR_NAMES, f"colour of {where}")
        box = _box(o["box"], where)
        size = _choice(o["size"], SIZES, f"size of {where}") if "size" in o else size_of(box)
        if colour in (background, background2):
            raise LayoutError(f"{where}: a {colour} {shape} would be invisible on the {colour} "
                              "background")
        placed.append(SceneObject(shape, colour, size, box))
    return Layout(tuple(placed), background, background2)


def _refuse_constant(name: str) -> Any:
    raise LayoutError(f"{name} is not a number a layout can hold")


def parse_layout_json(text: str | bytes) -> Layout:
    """A Layout from JSON text (a file's bytes, or a spec's string); LayoutError when empty,
    over MAX_JSON_BYTES, not JSON, or not a valid layout."""
    if isinstance(text, str):
        text = text.encode("utf-8")
    if len(text) > MAX_JSON_BYTES:
        raise LayoutError(f"the layout is {len(text) // 1024} KB; a layout file holds at most "
                          f"{MAX_JSON_BYTES // 1024} KB")
    if not text.strip():
        raise LayoutError("the layout is empty")
    try:
        d = json.loads(text.decode("utf-8"), parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise LayoutError("the layout is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise LayoutError(f"the layout is not valid JSON: {exc.msg} at line {exc.lineno}, "
                          f"column {exc.colno}") from None
    except RecursionError:
        raise LayoutError("the layout nests too deeply to be a layout") from None
    return layout_from_dict(d)


def read_layout_file(path: str | Path) -> Layout:
    """The layout in a JSON file; LayoutError naming the file when it cannot be used (its size
    is checked before it is read)."""
    p = Path(path).expanduser()
    try:
        if not p.is_file():
            raise LayoutError(f"no layout file at {p}")
        if p.stat().st_size > MAX_JSON_BYTES:
            raise LayoutError(f"{p.name} is {p.stat().st_size // 1024} KB; a layout file holds "
                              f"at most {MAX_JSON_BYTES // 1024} KB")
        data = p.read_bytes()[:MAX_JSON_BYTES + 1]
    except OSError as exc:
        raise LayoutError(f"cannot read the layout file {p}: {exc.strerror}") from None
    try:
        return parse_layout_json(data)
    except LayoutError as exc:
        raise LayoutError(f"{p.name}: {exc}") from None


def describe_layout(layout: Layout) -> str:
    """The layout in the world's canonical caption words, left to right (what a reranker or a
    checker reads for a layout given without a prompt)."""
    objects = tuple(Requirement(o.shape, o.colour, o.size) for o in canonical(layout).objects)
    return caption_for(Prompt(objects, background=layout.background,
                              background2=layout.background2))


def layout_json(layout: Layout) -> str:
    """The compact JSON text of a layout (what a job spec carries)."""
    return json.dumps(layout_to_dict(layout), separators=(",", ":"))


# --------------------------------------------------------------------------- the layout stage


def _refusal(prompt: Prompt) -> str | None:
    """Why ``prompt`` cannot be drawn faithfully, or None."""
    words = prompt.ignored.split()
    counts = [w for w in prompt.unknown if w in _TOO_MANY or w.isdigit()]
    if counts:
        return (f"\"{counts[0]}\" asks for more objects than a scene holds (at most "
                f"{MAX_OBJECTS})")
    if any(w in _RELATION_WORDS for w in words):
        return ("a relation must link two different objects, e.g. \"a star to the left of a "
                "circle\", and a scene shows one relation at most")
    if prompt.unknown:
        unknown = list(dict.fromkeys(prompt.unknown))
        hints = []
        for w in unknown[:5]:
            close = difflib.get_close_matches(w, VOCABULARY, n=1, cutoff=0.7)
            hints.append(f"{w} (did you mean {close[0]}?)" if close else w)
        return f"the scene world does not know the word(s): {', '.join(hints)}"
    if words:
        return f"the word(s) \"{' '.join(words)}\" describe no object"
    if not prompt.objects:
        return (f"the prompt names no shape ({', '.join(SHAPES)}); a scene draws 1 to "
                f"{MAX_OBJECTS} of them")
    total = sum(r.count for r in prompt.objects)
    if total > MAX_OBJECTS:
        return f"the prompt asks for {total} objects; a scene holds at most {MAX_OBJECTS}"
    return None


def plan_layout(text: str, seed: int, index: int = 0) -> Layout:
    """The layout stage: a layout that satisfies the prompt ``text`` exactly, drawn by the
    world's layout sampler from (``seed``, ``index``: one layout per candidate); unspecified
    colours, sizes, background and positions are random. LayoutError when the prompt cannot be
    drawn faithfully."""
    prompt = parse_prompt(text)
    head = f"Cannot lay out \"{text.strip()[:80]}\""
    why = _refusal(prompt)
    if why is not None:
        raise LayoutError(f"{head}: {why}.")
    rng = random.Random(f"layout:{seed}:{index}")
    # "on a black background" means black alone; a second tone only when asked for, or at the
    # world's own odds when the prompt names no background.
    two_tone = False if prompt.background and not prompt.background2 else None
    for _ in range(PLAN_TRIES):
        try:
            return layout_for(prompt, rng, two_tone=two_tone)
        except ValueError as exc:  # e.g. an object the colour of the background
            raise LayoutError(f"{head}: {exc}.") from None
        except RuntimeError:  # no placement in the sampler's tries; tight ones need more
            continue
    raise LayoutError(f"{head}: these objects do not fit in one picture as asked.")
