from __future__ import annotations

import re

import numpy as np
import pytest

from core.data.captions import (
    GENEVAL_CATEGORIES,
    VOCABULARY,
    Prompt,
    Requirement,
    caption_for,
    explain,
    parse_prompt,
    prompt_for,
    render_layout,
    sample_scene,
    satisfies,
    tokenize,
)
from core.data.scenes import COLOUR_NAMES, SHAPES


def obj(shape, colour, size="small", centre=(0.5, 0.5)):
    cx, cy = centre
    return {"shape": shape, "colour": colour, "size": size,
            "bbox": (cx - 0.1, cy - 0.1, cx + 0.1, cy + 0.1)}


@pytest.fixture(scope="module")
def scenes():
    return [sample_scene(seed) for seed in range(3000)]


def test_tokenize_and_vocabulary():
    assert tokenize("A big, RED star!") == ["a", "big", "red", "star"]
    assert list(VOCABULARY) == sorted(set(VOCABULARY))
    assert set(COLOUR_NAMES) | set(SHAPES) | {"small", "big", "two", "three"} <= set(VOCABULARY)
    with pytest.raises(TypeError, match="must be text"):
        tokenize(3)  # type: ignore[arg-type]


def test_every_caption_parses_back_and_is_satisfied(scenes):
    for layout in scenes:
        reading = parse_prompt(layout.caption)
        assert reading.key() == layout.extra["prompt"].key(), layout.caption
        assert not reading.unknown and not reading.ignored, layout.caption
        labels = layout.labels()
        assert satisfies(reading, labels["objects"], labels["background"],
                         labels["background2"]), layout.caption
        assert set(tokenize(layout.caption)) <= set(VOCABULARY)


def test_paraphrases_are_used(scenes):
    captions = [s.caption for s in scenes]
    forms = {
        "that is": r"\b(that|which) (is|are)\b", "pair": r"\ba pair of\b",
        "there is": r"^there (is|are)\b", "one": r"^one\b", "anaphora": r"\bto its (left|right)",
        "with it": r"\bwith .* (of|above|below|under|beneath|over) it\b",
        "inverted": r"^(to the|on the|left|right|above|over|below|under|beneath)\b",
        "against": r"against an? ", "comma background": r", \w+ background",
        "two-tone": r"\w+ and \w+ background", "synonym": r"\b(large|little)\b",
    }
    for name, pattern in forms.items():
        assert sum(bool(re.search(pattern, c)) for c in captions) >= 5, name
    assert len(set(captions)) > 2500


def test_hand_written_readings():
    p = parse_prompt("a red square and, to its right, a green heart")
    assert p.objects == (Requirement("square", "red"), Requirement("heart", "green"))
    assert p.relation == (1, "right_of", 0)
    p = parse_prompt("To the left of a green heart there is a red square.")
    assert p.relation == (1, "left_of", 0) and p.objects[1] == Requirement("square", "red")
    p = parse_prompt("a star with a big circle above it on a black background")
    assert p.relation == (1, "above", 0) and p.objects[1].size == "big"
    assert p.background == "black"
    p = parse_prompt("a pair of blue stars")
    assert p.objects == (Requirement("star", "blue", None, 2),)
    p = parse_prompt("three large hearts that are pink on a white and black background")
    assert p.objects == (Requirement("heart", "pink", "big", 3),)
    assert (p.background, p.background2) == ("white", "black")


def test_unknown_words_are_reported_not_fatal():
    p = parse_prompt("a fluffy red star next to a cat")
    assert p.objects == (Requirement("star", "red"),)
    assert p.unknown == ("fluffy", "next", "cat")
    assert "cat" in p.ignored and not p.empty
    for text in ("", "   ", "hello world", "!!!"):
        assert parse_prompt(text).empty
    assert satisfies(parse_prompt("purple elephants"), [], None)
    p = parse_prompt("a red blue star and a big")
    assert p.objects == (Requirement("star", "blue"),) and p.ignored == "red a big"


def test_negatives():
    objects = [obj("star", "red", centre=(0.2, 0.5)), obj("circle", "blue", centre=(0.8, 0.5))]
    assert satisfies(parse_prompt("a red star left of a blue circle"), objects, "black")
    assert not satisfies(parse_prompt("a green star"), objects, "black")  # wrong colour
    assert not satisfies(parse_prompt("a big red star"), objects, "black")  # wrong size
    assert not satisfies(parse_prompt("two red stars"), objects, "black")  # wrong count
    assert not satisfies(parse_prompt("a red star right of a blue circle"), objects, "black")
    assert not satisfies(parse_prompt("a red star above a blue circle"), objects, "black")
    assert not satisfies(parse_prompt("a heart"), objects, "black")  # missing object
    assert not satisfies(parse_prompt("a star on a white background"), objects, "black")
    assert not satisfies(parse_prompt("a blue star and a red circle"), objects, "black")
    # Counting is exact; "a" means at least one.
    three = [obj("circle", "blue", centre=(x, 0.5)) for x in (0.2, 0.5, 0.8)]
    assert not satisfies(parse_prompt("two blue circles"), three, None)
    assert satisfies(parse_prompt("three blue circles"), three, None)
    assert satisfies(parse_prompt("a blue circle"), three, None)
    # Two requirements may not share one object.
    assert not satisfies(parse_prompt("a star and a red star"), objects[:1], None)


def test_explain_names_the_failure():
    objects = [obj("star", "red")]
    assert explain(parse_prompt("a red star"), objects, "black").startswith("satisfied")
    assert "exactly two blue circles, found 0" in explain(parse_prompt("two blue circles"),
                                                           objects, "black")
    assert "background should be white" in explain(
        parse_prompt("a red star on a white background"), objects, "black")


def test_centres_are_accepted_instead_of_boxes():
    objects = [{"shape": "star", "colour": "red", "size": "big", "centre": (0.8, 0.2)},
               {"shape": "heart", "colour": "pink", "size": "small", "centre": (0.8, 0.8)}]
    assert satisfies(parse_prompt("a red star above a pink heart"), objects)
    assert not satisfies(parse_prompt("a red star below a pink heart"), objects)


@pytest.mark.parametrize("category", GENEVAL_CATEGORIES)
def test_prompt_for_every_category(category):
    for seed in range(40):
        caption, layout = prompt_for(category, seed)
        assert prompt_for(category, seed)[0] == caption  # deterministic
        reading = parse_prompt(caption)
        assert reading.key() == layout.extra["prompt"].key()
        sample = render_layout(layout, size=32, seed=seed)
        assert sample.image.shape == (32, 32, 3) and sample.caption == caption
        assert satisfies(reading, sample.labels["objects"], sample.labels["background"])
        reqs = reading.objects
        if category == "single_object":
            assert len(reqs) == 1 and reqs[0].colour is None and reqs[0].count == 1
        elif category == "two_objects":
            assert len(reqs) == 2 and reqs[0].shape != reqs[1].shape
        elif category == "counting":
            assert len(reqs) == 1 and reqs[0].count in (2, 3)
            assert len(sample.labels["objects"]) == reqs[0].count
        elif category == "colours":
            assert len(reqs) == 1 and reqs[0].colour is not None
        elif category == "position":
            assert reading.relation is not None
        else:
            assert len(reqs) == 2 and None not in {r.colour for r in reqs}
            assert reqs[0].colour != reqs[1].colour
    with pytest.raises(ValueError, match="unknown GenEval category"):
        prompt_for("vibes", 0)


def test_canonical_description_round_trips(scenes):
    for layout in scenes[:300]:
        prompt = layout.extra["prompt"]
        assert parse_prompt(prompt.describe()).key() == prompt.key()
        assert parse_prompt(caption_for(prompt)).key() == prompt.key()
    assert "nothing" in Prompt().describe()


def test_render_layout_matches_world():
    layout = sample_scene(21)
    a = render_layout(layout, 64, seed=21)
    from core.data.worlds import get_world

    b = get_world("scenes").render(21, 64)
    assert np.array_equal(a.image, b.image) and a.caption == b.caption
