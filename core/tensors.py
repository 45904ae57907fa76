"""Conversions between image arrays and tensors: uint8 pixels in, [-1, 1] floats for a network,
and a network's output back to uint8 pixels. Every pipeline, family and metric uses these, so
a picture means the same numbers everywhere.

    x = to_tensor(images)          # uint8 (N, H, W, 3) -> float32 (N, 3, H, W) in [-1, 1]
    pixels = to_uint8(model(x))    # NCHW float in [-1, 1] -> NHWC uint8
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


class ImageShapeError(ValueError):
    """An array that is not uint8 (N, H, W, 3) or (H, W, 3) pixels."""


def to_tensor(images: np.ndarray, size: int | None = None) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float32 (N, 3, size, size) in [-1, 1] (resized if needed)."""
    a = np.asarray(images)
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4 or a.shape[-1] != 3 or a.dtype != np.uint8:
        raise ImageShapeError(f"judges read uint8 (N, H, W, 3) images, got {a.dtype} {a.shape}")
    # A copy: decoded PIL images are read-only, and torch wants memory it may write.
    t = torch.from_numpy(np.array(a)).permute(0, 3, 1, 2).float() / 127.5 - 1
    if size is not None and t.shape[-2:] != (size, size):
        t = F.interpolate(t, size=(size, size), mode="bilinear", antialias=True,
                          align_corners=False)
    return t


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """NCHW float in [-1, 1] (a model's output) -> NHWC uint8 on the CPU (clamped, rounded)."""
    x = images.detach().float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def image_to_tensor(img: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 HxWx3 -> (1, 3, H, W) float in [-1, 1], contiguous (L-BFGS views the gradient of
    the picture it optimises as one flat vector)."""
    return to_tensor(img).contiguous().to(device)


def tensor_to_image(x: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) in [-1, 1] -> HxWx3 uint8."""
    return to_uint8(x)[0]


def long_side_size(h: int, w: int, long_side: int) -> tuple[int, int]:
    """(height, width) with the long side at ``long_side``, keeping the aspect ratio; never
    below 2 pixels (what reflection padding needs)."""
    s = long_side / max(h, w)
    return max(2, round(h * s)), max(2, round(w * s))


def resize(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """uint8 HxWxC resized to (h, w) with Lanczos; the same array when already that size."""
    if img.shape[:2] == (h, w):
        return img
    return np.asarray(Image.fromarray(img).resize((w, h), Image.LANCZOS))


def resize_long(img: np.ndarray, long_side: int) -> np.ndarray:
    """Long side to ``long_side`` (Lanczos), as style images are sized to the picture."""
    return resize(img, *long_side_size(*img.shape[:2], long_side))
