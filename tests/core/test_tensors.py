"""Pixels <-> tensors: the conversions every pipeline, family and metric shares."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.tensors import (
    ImageShapeError,
    image_to_tensor,
    resize_long,
    tensor_to_image,
    to_tensor,
    to_uint8,
)


def test_uint8_round_trip_is_exact():
    images = np.random.default_rng(0).integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)
    x = to_tensor(images)
    assert x.shape == (2, 3, 5, 7) and x.dtype == torch.float32
    assert float(x.min()) >= -1 and float(x.max()) <= 1
    assert np.array_equal(to_uint8(x), images)
    one = images[0]
    assert np.array_equal(tensor_to_image(image_to_tensor(one)), one)


def test_model_output_outside_range_is_clamped():
    out = torch.tensor([-3.0, 0.0, 3.0]).view(1, 3, 1, 1)
    assert to_uint8(out).tolist() == [[[[0, 128, 255]]]]


def test_non_pixel_arrays_are_refused():
    with pytest.raises(ImageShapeError):
        to_tensor(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ImageShapeError):
        to_tensor(np.zeros((4, 4, 4), np.uint8))


def test_resize_long_keeps_aspect_ratio():
    img = np.zeros((40, 100, 3), np.uint8)
    assert resize_long(img, 50).shape == (20, 50, 3)
    assert resize_long(img, 100) is img
