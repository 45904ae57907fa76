from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from core.data.draw import Canvas, stroke_polygon
from core.data.faces import ATTRIBUTES, FacesWorld
from core.data.worlds import get_world

WORLD = FacesWorld()


def _attrs(labels: dict) -> dict:
    return {k: labels[k] for k in ATTRIBUTES}


def test_registered_and_class_order_fixed():
    world = get_world("faces")
    assert world.name == "faces"
    assert list(world.attributes) == ["smiling", "glasses", "hair_colour", "hair_style",
                                      "skin_tone", "beard", "hat", "eye_colour", "background"]
    assert world.attributes["hair_colour"] == ["black", "brown", "blond", "red", "grey", "blue"]
    assert world.attributes["hair_style"] == ["short", "long", "bald"]
    assert world.attributes["eye_colour"] == ["brown", "blue", "green", "grey"]
    assert len(world.attributes["skin_tone"]) >= 4


def test_same_seed_same_pixels_and_different_seeds_differ():
    a, b, c = WORLD.render(11), WORLD.render(11), WORLD.render(12)
    assert a.image.dtype == np.uint8 and a.image.shape == (64, 64, 3)
    assert np.array_equal(a.image, b.image) and a.labels == b.labels
    assert not np.array_equal(a.image, c.image)
    assert a.seed == 11 and a.caption


@pytest.mark.parametrize("size", [64, 128, 256])
def test_every_size_renders_with_the_same_labels(size):
    sample = WORLD.render(5, size)
    assert sample.image.shape == (size, size, 3)
    assert sample.labels == WORLD.render(5, 64).labels
    assert set(sample.labels["pose"]) >= {"dx", "dy", "scale", "tilt"}


def test_render_batch_matches_single_renders():
    batch = WORLD.render_batch([3, 4, 5], 64)
    assert batch.shape == (3, 64, 64, 3) and batch.dtype == np.uint8
    for image, seed in zip(batch, [3, 4, 5], strict=True):
        assert np.array_equal(image, WORLD.render(seed).image)
    assert WORLD.render_batch([], 32).shape == (0, 32, 32, 3)


def test_overrides_fix_classes_and_leave_everything_else():
    base = WORLD.render(21).labels
    for attribute, classes in ATTRIBUTES.items():
        for value in classes:
            labels, _ = WORLD.sample_labels(21, **{attribute: value})
            assert labels[attribute] == value
            assert {k: v for k, v in labels.items() if k != attribute} == \
                {k: v for k, v in base.items() if k != attribute}
    assert WORLD.render(21, smiling="smiling").labels["smiling"] == "smiling"


def test_bad_overrides_are_refused_clearly():
    with pytest.raises(ValueError, match="Unknown faces attribute 'moustache'"):
        WORLD.render(1, moustache="yes")
    with pytest.raises(ValueError, match="'purple'.*hair_colour.*black, brown"):
        WORLD.render(1, hair_colour="purple")


def test_every_class_appears_roughly_uniformly():
    labels = [WORLD.sample_labels(s)[0] for s in range(300)]
    for attribute, classes in ATTRIBUTES.items():
        counts = {c: sum(lab[attribute] == c for lab in labels) for c in classes}
        expected = 300 / len(classes)
        for c, n in counts.items():
            assert 0.5 * expected <= n <= 1.5 * expected, (attribute, c, counts)


def test_attributes_are_independent():
    labels = [WORLD.sample_labels(s)[0] for s in range(3000)]

    def rate(attr, value, given_attr, given_value):
        pool = [lab for lab in labels if lab[given_attr] == given_value]
        return sum(lab[attr] == value for lab in pool) / len(pool)

    assert abs(rate("glasses", "glasses", "smiling", "smiling")
               - rate("glasses", "glasses", "smiling", "neutral")) < 0.06
    assert abs(rate("hat", "hat", "hair_style", "bald")
               - rate("hat", "hat", "hair_style", "long")) < 0.08
    assert abs(rate("beard", "beard", "skin_tone", "pale")
               - rate("beard", "beard", "skin_tone", "dark")) < 0.1


def test_pose_is_continuous_not_a_lookup_table():
    poses = [WORLD.sample_labels(s)[0]["pose"] for s in range(50)]
    for key in ("dx", "dy", "scale", "tilt"):
        assert len({round(p[key], 6) for p in poses}) == 50
    # Same classes, different seeds: different pictures.
    fixed = {k: v[0] for k, v in ATTRIBUTES.items()}
    assert not np.array_equal(WORLD.render(1, **fixed).image, WORLD.render(2, **fixed).image)


def test_renders_are_antialiased_at_any_size():
    for seed in (0, 1, 2):
        small = WORLD.render(seed, 64).image.astype(float)
        big = WORLD.render(seed, 256).image
        reduced = np.asarray(Image.fromarray(big).reduce(4), float)
        assert np.abs(small - reduced).mean() < 2.0
        # Edges are blended: far more distinct colours than the few flat fills drawn.
        assert len(np.unique(small.reshape(-1, 3), axis=0)) > 150


def _changed_rows_cols(seed: int, attribute: str, a: str, b: str, size: int = 64):
    one = WORLD.render(seed, size, **{attribute: a}).image.astype(int)
    two = WORLD.render(seed, size, **{attribute: b}).image.astype(int)
    diff = np.abs(one - two).sum(-1) > 0
    return np.nonzero(diff.any(1))[0], np.nonzero(diff.any(0))[0]


@pytest.mark.parametrize("seed", [0, 7, 33])
def test_one_attribute_changes_only_its_region(seed):
    rows, _ = _changed_rows_cols(seed, "hat", "none", "hat")
    assert len(rows) > 5 and rows.max() < 0.45 * 64  # a hat only touches the top
    rows, cols = _changed_rows_cols(seed, "smiling", "neutral", "smiling")
    assert len(rows) > 1 and rows.min() > 0.5 * 64 and rows.max() < 0.85 * 64
    assert cols.min() > 0.2 * 64 and cols.max() < 0.8 * 64  # only the mouth
    rows, _ = _changed_rows_cols(seed, "glasses", "none", "glasses")
    assert len(rows) > 3 and rows.min() > 0.25 * 64 and rows.max() < 0.7 * 64
    rows, _ = _changed_rows_cols(seed, "eye_colour", "brown", "blue")
    assert len(rows) >= 2 and rows.min() > 0.35 * 64 and rows.max() < 0.65 * 64


def test_attribute_colours_show_in_the_picture():
    # The background class is the colour of the corners; a blue hat-free head of blue hair
    # puts strongly blue pixels on the top of the head.
    for background, rgb in (("sky", (168, 208, 240)), ("lemon", (248, 236, 160))):
        image = WORLD.render(4, background=background).image.astype(int)
        assert np.abs(image[1, 1] - np.array(rgb)).max() <= 8
    image = WORLD.render(4, hair_colour="blue", hair_style="short", hat="none").image
    top = image[8:26, 16:48].astype(int)
    blue = (top[..., 2] > 170) & (top[..., 0] < 90)
    assert blue.sum() > 40


def test_draw_canvas_helpers():
    canvas = Canvas(32, (10, 20, 30))
    canvas.rect(0.0, 0.0, 0.5, 1.0, (250, 250, 250))
    image = canvas.image()
    assert image.shape == (32, 32, 3)
    assert tuple(image[5, 3]) == (250, 250, 250) and tuple(image[5, 30]) == (10, 20, 30)
    band = stroke_polygon([[0.0, 0.0], [1.0, 0.0]], 0.2)
    assert np.allclose(band[:, 1].max(), 0.1) and np.allclose(band[:, 1].min(), -0.1)
    with pytest.raises(ValueError):
        Canvas(0)
