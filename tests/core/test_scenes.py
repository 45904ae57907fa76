from __future__ import annotations

import random

import numpy as np
import pytest

from core.data.captions import CAPTION_CATEGORIES
from core.data.scenes import (
    COLOUR_NAMES,
    COLOURS,
    EDGE_MARGIN,
    MIN_DX,
    SHAPES,
    SIZE_RANGE,
    SIZES,
    Layout,
    SceneObject,
    draw_layout,
    place_boxes,
    relation_holds,
    sample_layout,
)
from core.data.worlds import get_world

RGB = np.array([COLOURS[c] for c in COLOUR_NAMES], float)


def nearest_colour(pixel: np.ndarray) -> tuple[str, float]:
    d = np.linalg.norm(RGB - pixel.astype(float), axis=1)
    return COLOUR_NAMES[int(d.argmin())], float(d.min())


@pytest.fixture(scope="module")
def world():
    return get_world("scenes")


def test_world_protocol(world):
    assert world.name == "scenes"
    assert world.attributes == {"background": COLOUR_NAMES}
    assert SHAPES == ["circle", "square", "triangle", "star", "heart"]
    assert SIZES == ["small", "big"]
    assert len(COLOURS) == 9


def test_deterministic_per_seed(world):
    a, b = world.render(11), world.render(11)
    assert np.array_equal(a.image, b.image)
    assert a.labels == b.labels and a.caption == b.caption and a.seed == 11
    c = world.render(12)
    assert not np.array_equal(a.image, c.image) or a.caption != c.caption


@pytest.mark.parametrize("size", [64, 128, 256])
def test_sizes_render_the_same_scene(world, size):
    sample = world.render(5, size)
    assert sample.image.shape == (size, size, 3) and sample.image.dtype == np.uint8
    assert sample.labels == world.render(5, 64).labels


def test_objects_inside_apart_and_sized(world):
    for seed in range(400):
        labels = world.render(seed, 16).labels
        objs = labels["objects"]
        assert 1 <= len(objs) <= 3
        assert labels["category"] in CAPTION_CATEGORIES
        backgrounds = {labels["background"], labels["background2"]}
        for o in objs:
            x0, y0, x1, y1 = o["bbox"]
            assert EDGE_MARGIN - 1e-3 <= x0 < x1 <= 1 - EDGE_MARGIN + 1e-3
            assert EDGE_MARGIN - 1e-3 <= y0 < y1 <= 1 - EDGE_MARGIN + 1e-3
            lo, hi = SIZE_RANGE[o["size"]]
            assert lo - 1e-3 <= x1 - x0 <= hi + 1e-3
            assert o["colour"] not in backgrounds and o["shape"] in SHAPES
        for i in range(len(objs)):
            for j in range(i + 1, len(objs)):
                a, b = objs[i]["bbox"], objs[j]["bbox"]
                overlap = a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
                assert not overlap
                assert abs((a[0] + a[2]) - (b[0] + b[2])) / 2 >= MIN_DX - 1e-3


def test_colours_are_checkable(world):
    for seed in range(120):
        sample = world.render(seed, 64)
        img, labels = sample.image, sample.labels
        mask = np.zeros((64, 64), bool)
        for o in labels["objects"]:
            x0, y0, x1, y1 = o["bbox"]
            cx, cy = int((x0 + x1) / 2 * 64), int((y0 + y1) / 2 * 64)
            name, dist = nearest_colour(img[cy, cx])
            assert name == o["colour"] and dist < 40, (seed, o, img[cy, cx])
            mask[int(y0 * 64) - 2:int(y1 * 64) + 3, int(x0 * 64) - 2:int(x1 * 64) + 3] = True
        # The top rows are always the main background tone (the second tone starts at y 0.5).
        free = np.argwhere(~mask[:28])
        y, x = free[len(free) // 2]
        assert nearest_colour(img[y, x])[0] == labels["background"]


def test_anti_aliased_edges():
    layout = Layout((SceneObject("circle", "white", "big", (0.3, 0.3, 0.7, 0.7)),), "black")
    red = draw_layout(layout, 64, seed=0)[..., 0].astype(int)
    # Along the circle's outline (~80 pixels) most pixels are partly covered: no hard step.
    assert np.sum((red > 50) & (red < 220)) > 40
    big = draw_layout(layout, 256, seed=0)
    assert abs(int(big[128, 128, 0]) - 245) < 20 and int(big[128, 5, 0]) < 50


def test_relation_layouts_are_clearly_true():
    rng = random.Random(0)
    for rel in ("left_of", "right_of", "above", "below"):
        for _ in range(30):
            a, b = place_boxes([0.39, 0.2], rng, [(0, rel, 1)])
            assert relation_holds(a, rel, b, 0.2, 0.5)
            opposite = {"left_of": "right_of", "right_of": "left_of", "above": "below",
                        "below": "above"}[rel]
            assert not relation_holds(a, opposite, b)


def test_two_tone_background():
    layout = sample_layout([("star", "red", "small")], random.Random(1), two_tone=True)
    assert layout.background2 not in (None, layout.background, "red")
    img = draw_layout(layout, 64)
    assert nearest_colour(img[2, 32])[0] == layout.background
    assert nearest_colour(img[61, 32])[0] == layout.background2


def test_category_override(world):
    for cat in CAPTION_CATEGORIES:
        assert world.render(3, 32, category=cat).labels["category"] == cat
    with pytest.raises(ValueError, match="unknown caption category"):
        world.render(3, 32, category="nonsense")


def test_bad_input_is_readable():
    rng = random.Random(0)
    with pytest.raises(ValueError, match="unknown shape"):
        sample_layout([("cat", None, None)], rng)
    with pytest.raises(ValueError, match="invisible"):
        sample_layout([("star", "red", None)], rng, background="red")
    with pytest.raises(ValueError, match="1 to 3 objects"):
        sample_layout([("star", None, None)] * 4, rng)
    layout = Layout((SceneObject("circle", "white", "big", (0.3, 0.3, 0.7, 0.7)),), "black")
    with pytest.raises(ValueError, match="8 pixels"):
        draw_layout(layout, 4)
