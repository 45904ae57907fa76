"""Captions for the scenes world: a small grammar, its parser, and the GenEval-style checker.

The grammar describes 1-3 objects (count, size, colour, shape), at most one spatial relation
between two of them, and optionally the background, with several paraphrases of each form:

    "a big red star"                      "there are two blue circles on a black background"
    "a circle that is red"                "a pair of blue stars"
    "a red square left of a green heart"  "a red square and, to its right, a green heart"
    "a star with a circle above it"       "to the left of a heart there is a small square"

A caption is generated from a :class:`Prompt` (what it requires) and a layout that makes it
true; :func:`parse_prompt` reads any caption of the grammar back to an equivalent Prompt, and
:func:`satisfies` checks a list of objects (true labels, or a judge's reading of a generated
image) against it, in the manner of GenEval (Ghosh et al. 2023, "GenEval: An Object-Focused
Framework for Evaluating Text-to-Image Alignment"): every required object present with its
attributes, exact counts for counted objects, relations by the objects' centres.
"""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from core.data.scenes import (
    COLOUR_NAMES,
    RELATIONS,
    SHAPES,
    SIZES,
    Layout,
    draw_layout,
    relation_holds,
    sample_layout,
)
from core.data.worlds import Sample

GENEVAL_CATEGORIES = ["single_object", "two_objects", "counting", "colours", "position",
                      "colour_attribution"]
# The kinds of caption the world itself renders (Sample.labels["category"]) with their odds.
CAPTION_CATEGORIES = ["single_object", "two_objects", "three_objects", "counting", "position"]
_CATEGORY_WEIGHTS = [0.25, 0.2, 0.1, 0.2, 0.25]

PROMPT_WORDS = 200  # the words of a prompt that parse_prompt reads

# How often a world caption mentions an attribute it could mention.
P_COLOUR, P_SIZE, P_BACKGROUND, P_BACKGROUND2 = 0.85, 0.5, 0.5, 0.5

# ---- word tables ---------------------------------------------------------------------------

_SIZE_WORDS = {"small": "small", "little": "small", "big": "big", "large": "big"}
_SIZE_SAY = {"small": ("small", "little"), "big": ("big", "large")}
_PLURAL = {f"{s}s": s for s in SHAPES}
_COUNT_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3}
_NUMBER_SAY = {2: "two", 3: "three"}
# Relation phrases, longest first so that "to the left of" wins over "left of".
_REL_PHRASES: list[tuple[tuple[str, ...], str]] = sorted(
    [(("to", "the", "left", "of"), "left_of"), (("on", "the", "left", "of"), "left_of"),
     (("left", "of"), "left_of"), (("to", "the", "right", "of"), "right_of"),
     (("on", "the", "right", "of"), "right_of"), (("right", "of"), "right_of"),
     (("above",), "above"), (("over",), "above"), (("below",), "below"),
     (("under",), "below"), (("beneath",), "below")],
    key=lambda p: -len(p[0]))
# "to its left": the pronoun stands for the first object mentioned.
_ANAPHORA: list[tuple[tuple[str, ...], str]] = [
    (("to", "its", "left"), "left_of"), (("on", "its", "left"), "left_of"),
    (("to", "its", "right"), "right_of"), (("on", "its", "right"), "right_of")]
_REL_SAY = {"left_of": ("to the left of", "left of", "on the left of"),
            "right_of": ("to the right of", "right of", "on the right of"),
            "above": ("above", "over"), "below": ("below", "under", "beneath")}
_REL_ITS = {"left_of": ("to its left", "on its left"), "right_of": ("to its right", "on its right"),
            "above": ("above it",), "below": ("below it", "under it")}
_FILLERS = {"there", "is", "are", "and", "the", "with", "of", "it", "its", "that", "which", "to",
            "on", "against", "background", "pair", "left", "right"}

VOCABULARY: tuple[str, ...] = tuple(sorted(
    set(_SIZE_WORDS) | set(COLOUR_NAMES) | set(SHAPES) | set(_PLURAL) | set(_COUNT_WORDS)
    | {w for phrase, _ in _REL_PHRASES + _ANAPHORA for w in phrase} | _FILLERS))
_VOCAB = frozenset(VOCABULARY)


def tokenize(text: str) -> list[str]:
    """Lower-case words with punctuation stripped ("A red, big star!" -> a red big star)."""
    if not isinstance(text, str):
        raise TypeError(f"a prompt must be text, not {type(text).__name__}")
    return re.findall(r"[^\W_]+", text.lower())


# ---- the structured reading ----------------------------------------------------------------


@dataclass(frozen=True)
class Requirement:
    """``count`` objects of this shape (and colour/size when given; None = any)."""

    shape: str
    colour: str | None = None
    size: str | None = None
    count: int = 1  # 1 means "at least one"; 2 or 3 means exactly that many

    def matches(self, obj: dict) -> bool:
        return (obj.get("shape") == self.shape
                and (self.colour is None or obj.get("colour") == self.colour)
                and (self.size is None or obj.get("size") == self.size))

    def describe(self) -> str:
        words = [w for w in (self.size, self.colour) if w]
        noun = self.shape + ("s" if self.count > 1 else "")
        det = _NUMBER_SAY.get(self.count, "an" if (words or [noun])[0][0] in "aeiou" else "a")
        return " ".join([det, *words, noun])


@dataclass(frozen=True)
class Prompt:
    """What a prompt asks for. ``relation`` = (subject index, relation, object index)."""

    objects: tuple[Requirement, ...] = ()
    relation: tuple[int, str, int] | None = None
    background: str | None = None
    background2: str | None = None
    unknown: tuple[str, ...] = ()  # words not in VOCABULARY
    ignored: str = ""  # words that carried no meaning (unknown or dangling), in order

    @property
    def empty(self) -> bool:
        """Nothing is required: any image satisfies it."""
        return not self.objects and self.background is None

    def key(self) -> tuple:
        """A canonical form: equal keys mean equal requirements, whatever the wording."""
        order = sorted(range(len(self.objects)), key=lambda i: _req_key(self.objects[i]))
        rank = {i: r for r, i in enumerate(order)}
        rel = None
        if self.relation is not None:
            s, name, o = self.relation
            flip = {"right_of": "left_of", "below": "above"}
            rel = (rank[o], flip[name], rank[s]) if name in flip else (rank[s], name, rank[o])
        return (tuple(_req_key(self.objects[i]) for i in order), rel, self.background,
                self.background2)

    def describe(self) -> str:
        """The reading in plain canonical words, e.g. for showing what the checker looks for."""
        if self.empty:
            return "nothing (no shape, colour or background recognised)"
        text = _list_phrase([r.describe() for r in self.objects])
        if self.relation is not None:
            s, name, o = self.relation
            text = (f"{self.objects[s].describe()} {_REL_SAY[name][0]} "
                    f"{self.objects[o].describe()}")
        if self.background:
            bg = self.background + (f" and {self.background2}" if self.background2 else "")
            art = "an" if bg[0] in "aeiou" else "a"
            text = (text + " on " if text else "") + f"{art} {bg} background"
        return text


def _req_key(r: Requirement) -> tuple:
    return (r.shape, r.colour or "", r.size or "", r.count)


def _list_phrase(parts: Sequence[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


# ---- parsing -------------------------------------------------------------------------------


def _match(tokens: list[str], i: int, table: list[tuple[tuple[str, ...], str]]) -> tuple:
    for phrase, name in table:
        if tuple(tokens[i:i + len(phrase)]) == phrase:
            return name, len(phrase)
    return None, 0


def parse_prompt(text: str) -> Prompt:
    """Read a prompt into requirements. Unknown words are reported in ``unknown``, not fatal."""
    tokens = tokenize(text)[:PROMPT_WORDS]
    used = [False] * len(tokens)
    ignored_at: set[int] = set()
    background = background2 = None
    # The background phrase first: colour words just before "background" ("on a black
    # background", "a blue and green background"), so they are not read as object colours.
    if "background" in tokens:
        k = tokens.index("background")
        used[k] = True
        j, colours = k - 1, []
        while j >= 0 and (tokens[j] in COLOUR_NAMES or tokens[j] == "and"):
            if tokens[j] in COLOUR_NAMES:
                colours.insert(0, tokens[j])
            used[j] = True
            j -= 1
        while j >= 0 and tokens[j] in ("a", "an", "on", "against", "with"):
            used[j] = True
            j -= 1
        if colours:
            background, background2 = colours[0], (colours[1] if len(colours) > 1 else None)
            ignored_at.update(i for i in range(j + 1, k) if tokens[i] in colours[2:])

    objects: list[dict] = []
    rel_events: list[tuple[str, bool, int, int]] = []  # (relation, anaphoric, nps before, pos)
    pending: dict = {}  # modifiers waiting for their noun: slot -> value
    pending_at: dict[str, list[int]] = {}  # slot -> the token positions that said it
    postmod = False  # after "that is": colour/size words describe the last object

    def drop_pending() -> None:
        ignored_at.update(k for ks in pending_at.values() for k in ks)
        pending.clear()
        pending_at.clear()

    i = 0
    while i < len(tokens):
        if used[i]:
            drop_pending()
            i += 1
            continue
        w = tokens[i]
        rel, n = _match(tokens, i, _ANAPHORA)
        anaphoric = rel is not None
        if rel is None:
            rel, n = _match(tokens, i, _REL_PHRASES)
            if rel is not None and i + n < len(tokens) and tokens[i + n] == "it":
                anaphoric, n = True, n + 1
        if rel is not None:
            drop_pending()
            postmod = False
            rel_events.append((rel, anaphoric, len(objects), i))
            i += n
            continue
        if tokens[i:i + 3] in (["a", "pair", "of"], ["one", "pair", "of"]) \
                or tokens[i:i + 2] == ["pair", "of"]:
            n = 2 if w == "pair" else 3
            drop_pending()
            postmod = False
            pending["count"] = 2
            pending_at["count"] = list(range(i, i + n))
            i += n
            continue
        if w in _COUNT_WORDS:
            drop_pending()
            postmod = False
            pending["count"] = _COUNT_WORDS[w]
            pending_at["count"] = [i]
        elif w in _SIZE_WORDS or w in COLOUR_NAMES:
            slot = "size" if w in _SIZE_WORDS else "colour"
            value = _SIZE_WORDS.get(w, w)
            if postmod and objects and objects[-1][slot] is None:
                objects[-1][slot] = value
            else:
                if slot in pending:  # "a red blue star": the last word wins
                    ignored_at.update(pending_at[slot])
                pending[slot] = value
                pending_at[slot] = [i]
        elif w in SHAPES or w in _PLURAL:
            postmod = False
            objects.append({"shape": _PLURAL.get(w, w), "colour": pending.get("colour"),
                            "size": pending.get("size"), "count": pending.get("count", 1)})
            pending.clear()
            pending_at.clear()
        elif w in ("that", "which") and i + 1 < len(tokens) and tokens[i + 1] in ("is", "are"):
            drop_pending()
            postmod = bool(objects)
            i += 2
            continue
        elif w not in _VOCAB or w in ("left", "right"):  # a side outside a relation phrase
            ignored_at.add(i)
        i += 1
    drop_pending()

    relation = None
    for rel, anaphoric, before, pos in rel_events:
        if anaphoric:  # the pronoun is the first object; the subject is the nearest other one
            subject, obj = (before if before < len(objects) else before - 1), 0
        elif before == 0:  # "to the left of B (there is) A"
            subject, obj = 1, 0
        else:  # "A to the left of B"
            subject, obj = before - 1, before
        valid = subject != obj and 0 <= subject < len(objects) and 0 <= obj < len(objects)
        if relation is None and valid:
            relation = (subject, rel, obj)
        else:
            ignored_at.add(pos)

    unknown = tuple(w for w in tokens if w not in _VOCAB)
    reqs = tuple(Requirement(o["shape"], o["colour"], o["size"], o["count"]) for o in objects)
    return Prompt(reqs, relation, background, background2, unknown,
                  " ".join(tokens[i] for i in sorted(ignored_at)))


# ---- checking ------------------------------------------------------------------------------


def _bbox(obj: dict) -> tuple[float, float, float, float]:
    if "bbox" in obj:
        return tuple(obj["bbox"])  # type: ignore[return-value]
    if "centre" not in obj:
        raise ValueError("checking a relation needs each object's 'bbox' or 'centre'")
    cx, cy = obj["centre"]
    return (cx, cy, cx, cy)


def _failure(prompt: Prompt, objects: Sequence[dict], background: str | None,
             background2: str | None) -> str | None:
    """Why the objects do not satisfy the prompt, or None when they do."""
    if prompt.background is not None and background != prompt.background:
        return f"the background should be {prompt.background}, the reading is {background}"
    if prompt.background2 is not None and background2 is not None \
            and background2 != prompt.background2:
        return f"the second background tone should be {prompt.background2}, not {background2}"
    groups: list[list[list[int]]] = []  # per requirement: the index sets it may take
    for r in prompt.objects:
        found = [k for k, o in enumerate(objects) if r.matches(o)]
        if r.count > 1:
            if len(found) != r.count:
                return f"needs exactly {r.describe()}, found {len(found)}"
            groups.append([found])
        elif not found:
            return f"needs {r.describe()}, found none"
        else:
            groups.append([[k] for k in found])
    relation_seen = False
    for choice in itertools.product(*groups):
        flat = [k for ks in choice for k in ks]
        if len(flat) != len(set(flat)):
            continue  # two requirements may not claim the same object
        if prompt.relation is None:
            return None
        s, name, o = prompt.relation
        relation_seen = True
        if all(relation_holds(_bbox(objects[a]), name, _bbox(objects[b]))
               for a in choice[s] for b in choice[o]):
            return None
    if relation_seen:
        s, name, o = prompt.relation  # type: ignore[misc]
        return (f"{prompt.objects[s].describe()} is not {_REL_SAY[name][0]} "
                f"{prompt.objects[o].describe()}")
    return "the required objects are not all distinct (one object cannot be two of them)"


def satisfies(prompt: Prompt, objects: Sequence[dict], background: str | None = None,
              background2: str | None = None) -> bool:
    """Whether objects (dicts with shape, colour, size and bbox or centre) satisfy the prompt.

    Counted requirements ("two blue circles") need exactly that many matching objects; single
    ones ("a red star") at least one; relations are judged by box centres; the background must
    match when the prompt names one.
    """
    return _failure(prompt, objects, background, background2) is None


def explain(prompt: Prompt, objects: Sequence[dict], background: str | None = None,
            background2: str | None = None) -> str:
    """One sentence: which requirement failed, or that all were met (the checker's reading)."""
    why = _failure(prompt, objects, background, background2)
    if why is None:
        return f"satisfied: {prompt.describe()}"
    return f"not satisfied: {why}"


# ---- captions from prompts -----------------------------------------------------------------


def _noun_phrase(r: Requirement, rng: random.Random, canonical: bool) -> str:
    if canonical:
        return r.describe()
    size = rng.choice(_SIZE_SAY[r.size]) if r.size else None
    noun = r.shape + ("s" if r.count > 1 else "")
    if r.count == 2 and rng.random() < 0.3:
        det = "a pair of"
    elif r.count > 1:
        det = _NUMBER_SAY[r.count]
    else:
        det = "one" if rng.random() < 0.2 else "a"
    if r.colour and rng.random() < 0.2:  # "a big star that is red"
        words = [det, size, noun, rng.choice(("that", "which")),
                 "is" if r.count == 1 else "are", r.colour]
    else:
        words = [det, size, r.colour, noun]
    words = [w for w in words if w]
    if words[0] == "a" and words[1][0] in "aeiou":
        words[0] = "an"
    return " ".join(words)


def caption_for(prompt: Prompt, rng: random.Random | None = None) -> str:
    """The prompt in words: a paraphrase drawn from ``rng``, or the canonical form when None."""
    canonical = rng is None
    rng = rng or random.Random(0)
    nps = [_noun_phrase(r, rng, canonical) for r in prompt.objects]
    plural = prompt.objects[0].count > 1 if prompt.objects else False
    if prompt.relation is not None:
        s, name, o = prompt.relation
        a, b = nps[s], nps[o]
        say = _REL_SAY[name][0] if canonical else rng.choice(_REL_SAY[name])
        form = 0 if canonical else rng.randrange(6)
        text = [f"{a} {say} {b}", f"{a} is {say} {b}", f"there is {a} {say} {b}",
                f"{b} and, {rng.choice(_REL_ITS[name])}, {a}", f"{b} with {a} {say} it",
                f"{say} {b} there is {a}"][form]
    else:
        form = 0 if canonical else rng.randrange(3)
        text = _list_phrase(nps)
        if form == 1:
            text = f"there {'are' if plural else 'is'} {text}"
    if prompt.background:
        bg = prompt.background + (f" and {prompt.background2}" if prompt.background2 else "")
        # ", yellow background" right after "a star that is red" would read as a two-tone
        # background (punctuation is not kept), so that form follows nouns only.
        forms = 2 if text.split()[-1] in COLOUR_NAMES else 3
        form = 0 if canonical else rng.randrange(forms)
        art = "an" if bg[0] in "aeiou" else "a"
        text += [f" on {art} {bg} background", f" against {art} {bg} background",
                 f", {bg} background"][form]
    return text


# ---- layouts that make a prompt true -------------------------------------------------------


def layout_for(prompt: Prompt, rng: random.Random, category: str = "",
               two_tone: bool | None = None) -> Layout:
    """A random layout whose objects satisfy ``prompt`` exactly (no extra objects).

    A relation between counted objects ("a star left of two circles") holds for every pair,
    as the checker reads it."""
    specs = [(r.shape, r.colour, r.size) for r in prompt.objects for _ in range(r.count)]
    starts = list(itertools.accumulate([0] + [r.count for r in prompt.objects]))
    relations = []
    if prompt.relation is not None:
        s, name, o = prompt.relation
        relations = [(a, name, b)
                     for a in range(starts[s], starts[s] + prompt.objects[s].count)
                     for b in range(starts[o], starts[o] + prompt.objects[o].count)]
    return sample_layout(specs, rng, relations=relations, background=prompt.background,
                         background2=prompt.background2, two_tone=two_tone, category=category)


def _shapes(rng: random.Random, n: int) -> list[str]:
    return rng.sample(SHAPES, n)


def _world_prompt(category: str, rng: random.Random) -> Prompt:
    """The requirements of a world caption of ``category`` (backgrounds added later)."""

    def req(shape: str, count: int = 1) -> Requirement:
        return Requirement(shape, rng.choice(COLOUR_NAMES) if rng.random() < P_COLOUR else None,
                           rng.choice(SIZES) if rng.random() < P_SIZE else None, count)

    if category == "single_object":
        return Prompt((req(rng.choice(SHAPES)),))
    if category == "counting":
        return Prompt((req(rng.choice(SHAPES), rng.choice((2, 3))),))
    if category == "two_objects":
        return Prompt(tuple(req(s) for s in _shapes(rng, 2)))
    if category == "three_objects":
        shapes = _shapes(rng, 3)
        if rng.random() < 0.5:
            return Prompt((req(shapes[0], 2), req(shapes[1])))
        return Prompt(tuple(req(s) for s in shapes))
    if category == "position":
        return Prompt(tuple(req(s) for s in _shapes(rng, 2)),
                      relation=(0, rng.choice(RELATIONS), 1))
    raise ValueError(f"unknown caption category {category!r}; "
                     f"known: {', '.join(CAPTION_CATEGORIES)}")


def sample_scene(seed: int, category: str | None = None) -> Layout:
    """The world's scene for ``seed``: a layout with its paraphrased caption and category."""
    rng = random.Random(seed)
    if category is None:
        category = rng.choices(CAPTION_CATEGORIES, _CATEGORY_WEIGHTS)[0]
    prompt = _world_prompt(category, rng)
    layout = layout_for(prompt, rng, category)
    if rng.random() < P_BACKGROUND:
        two = layout.background2 if rng.random() < P_BACKGROUND2 else None
        prompt = replace(prompt, background=layout.background, background2=two)
    return replace(layout, caption=caption_for(prompt, rng), extra={"prompt": prompt})


def geneval_prompt(category: str, seed: int) -> Prompt:
    """The requirements of a GenEval-style prompt of ``category`` (deterministic in seed)."""
    rng = random.Random(f"geneval:{category}:{seed}")
    if category == "single_object":
        return Prompt((Requirement(rng.choice(SHAPES),
                                   size=rng.choice(SIZES) if rng.random() < 0.5 else None),))
    if category == "two_objects":
        return Prompt(tuple(Requirement(s) for s in _shapes(rng, 2)))
    if category == "counting":
        colour = rng.choice(COLOUR_NAMES) if rng.random() < 0.5 else None
        return Prompt((Requirement(rng.choice(SHAPES), colour, count=rng.choice((2, 3))),))
    if category == "colours":
        return Prompt((Requirement(rng.choice(SHAPES), rng.choice(COLOUR_NAMES)),))
    if category == "position":
        coloured = rng.random() < 0.5
        colours = rng.sample(COLOUR_NAMES, 2) if coloured else [None, None]
        return Prompt(tuple(Requirement(s, c) for s, c in zip(_shapes(rng, 2), colours,
                                                               strict=True)),
                      relation=(0, rng.choice(RELATIONS), 1))
    if category == "colour_attribution":
        return Prompt(tuple(Requirement(s, c) for s, c in zip(
            _shapes(rng, 2), rng.sample(COLOUR_NAMES, 2), strict=True)))
    raise ValueError(f"unknown GenEval category {category!r}; "
                     f"known: {', '.join(GENEVAL_CATEGORIES)}")


def prompt_for(category: str, seed: int) -> tuple[str, Layout]:
    """A GenEval-style prompt (canonical wording) and a layout that satisfies it."""
    prompt = geneval_prompt(category, seed)
    layout = layout_for(prompt, random.Random(f"layout:{category}:{seed}"), category)
    caption = caption_for(prompt)
    return caption, replace(layout, caption=caption, extra={"prompt": prompt})


def render_layout(layout: Layout, size: int = 64, seed: int = 0) -> Sample:
    """Draw a layout: a Sample with its labels and caption (``seed`` drives lighting noise)."""
    return Sample(image=draw_layout(layout, size, seed), labels=layout.labels(),
                  caption=layout.caption, seed=seed)


__all__ = ["CAPTION_CATEGORIES", "GENEVAL_CATEGORIES", "VOCABULARY", "Prompt", "Requirement",
           "caption_for", "explain", "geneval_prompt", "layout_for", "parse_prompt",
           "prompt_for", "render_layout", "sample_scene", "satisfies", "tokenize"]


# ---- held-out pairs and wrong captions -----------------------------------------------------


def pairs_in(caption: str | None, labels: dict | None = None) -> set[tuple[str, str]]:
    """(colour, shape) pairs a scene shows: named together in its caption, or drawn."""
    found: set[tuple[str, str]] = set()
    if caption:
        found |= {(r.colour, r.shape) for r in parse_prompt(caption).objects if r.colour}
    for obj in (labels or {}).get("objects", []):
        found.add((obj.get("colour"), obj.get("shape")))
    return found


def parse_pairs(texts: Sequence[str]) -> set[tuple[str, str]]:
    """["green triangle", "purple star"] -> {("green", "triangle"), ("purple", "star")}."""
    pairs = set()
    for text in texts:
        ws = tokenize(text)
        if len(ws) != 2 or ws[0] not in COLOUR_NAMES or _PLURAL.get(ws[1], ws[1]) not in SHAPES:
            raise ValueError(f"a held-out pair is 'colour shape' (e.g. 'green triangle'), "
                             f"not {text!r}")
        pairs.add((ws[0], _PLURAL.get(ws[1], ws[1])))
    return pairs


def mutate_prompt(prompt: Prompt, rng: random.Random) -> Prompt | None:
    """A prompt that differs from ``prompt`` in one thing a scene can show (a colour, a shape,
    a count, a size, the relation, the background), or None when nothing can be changed.
    Contrastive training uses these as hard negatives: captions that almost fit."""
    objs = list(prompt.objects)
    options = []
    coloured = [i for i, r in enumerate(objs) if r.colour]
    if coloured:
        options.append("colour")
    if len(coloured) >= 2 and len({objs[i].colour for i in coloured}) > 1:
        options.append("swap")
    if objs:
        options += ["shape", "count"]
    if any(r.size for r in objs):
        options.append("size")
    if prompt.relation is not None:
        options.append("relation")
    if prompt.background:
        options.append("background")
    if not options:
        return None
    kind = rng.choice(options)
    if kind == "colour":
        i = rng.choice(coloured)
        objs[i] = replace(objs[i], colour=rng.choice([c for c in COLOUR_NAMES
                                                      if c != objs[i].colour]))
    elif kind == "swap":
        i, j = rng.sample(coloured, 2)
        objs[i], objs[j] = replace(objs[i], colour=objs[j].colour), replace(objs[j],
                                                                              colour=objs[i].colour)
    elif kind == "shape":
        i = rng.randrange(len(objs))
        taken = {r.shape for r in objs}
        objs[i] = replace(objs[i], shape=rng.choice([s for s in SHAPES if s not in taken]))
    elif kind == "count":
        i = rng.randrange(len(objs))
        objs[i] = replace(objs[i], count=rng.choice([c for c in (1, 2, 3) if c != objs[i].count]))
        if prompt.relation is not None and objs[i].count > 1:
            return Prompt(tuple(objs), None, prompt.background, prompt.background2)
    elif kind == "size":
        i = rng.choice([k for k, r in enumerate(objs) if r.size])
        objs[i] = replace(objs[i], size="big" if objs[i].size == "small" else "small")
    elif kind == "relation":
        s, name, o = prompt.relation  # type: ignore[misc]
        flip = {"left_of": "right_of", "right_of": "left_of", "above": "below", "below": "above"}
        return replace(prompt, relation=(s, flip[name], o), unknown=(), ignored="")
    elif kind == "background":
        bg = rng.choice([c for c in COLOUR_NAMES if c != prompt.background])
        return replace(prompt, background=bg, background2=None, unknown=(), ignored="")
    return Prompt(tuple(objs), prompt.relation, prompt.background, prompt.background2)
