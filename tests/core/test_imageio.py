"""core.imageio: safe intake of every allowed format and mode, limits, errors, PNG metadata.

Every test file is generated here at test time; nothing binary is committed.
"""

from __future__ import annotations

import io
import json
import os
import re
import struct
import subprocess
import sys
import time
import warnings
import zlib
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile, PngImagePlugin

from core import imageio
from core.imageio import (
    COMPOSITE,
    DEFAULT_MAX_PIXELS,
    IMAGE_SUFFIXES,
    TRAINED,
    XMP_KEY,
    ImageError,
    atomic_write,
    is_easel_png,
    load_image,
    load_mask,
    parameters_text,
    read_metadata,
    save_png,
)
from core.jobs import ImageRef, read_spec

# --------------------------------------------------------------------------- corpus helpers


def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def blocks(w: int = 16, h: int = 12) -> np.ndarray:
    """Four flat colour quadrants: few colours (GIF-exact) and distinct corners."""
    a = np.zeros((h, w, 3), np.uint8)
    a[: h // 2, : w // 2] = (220, 30, 40)
    a[: h // 2, w // 2 :] = (20, 200, 60)
    a[h // 2 :, : w // 2] = (30, 40, 210)
    a[h // 2 :, w // 2 :] = (240, 240, 20)
    return a


def noise(w: int = 64, h: int = 64, channels: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, channels), dtype=np.uint8)


def png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def png_header_only(w: int, h: int) -> bytes:
    """A well-formed PNG whose IHDR claims w x h RGB but whose IDAT holds a few bytes only."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
            + png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + png_chunk(b"IEND", b""))


# --------------------------------------------------------------------------- formats


LOSSLESS = [("PNG", {}), ("BMP", {}), ("TIFF", {}), ("WEBP", {"lossless": True}), ("GIF", {})]


@pytest.mark.parametrize(("fmt", "kw"), LOSSLESS, ids=[f for f, _ in LOSSLESS])
def test_lossless_formats_round_trip_exactly(tmp_path, fmt, kw):
    rgb = blocks()
    path = write(tmp_path, f"pic.{fmt.lower()}", encode(Image.fromarray(rgb), fmt, **kw))
    loaded = load_image(path)
    assert loaded.format == fmt
    assert loaded.path == str(path)
    assert loaded.size == (16, 12)
    assert loaded.rgb.dtype == np.uint8 and loaded.rgb.shape == (12, 16, 3)
    assert loaded.rgb.flags.c_contiguous and loaded.rgb.flags.writeable
    assert loaded.alpha is None
    np.testing.assert_array_equal(loaded.rgb, rgb)


def test_jpeg_loads_close_to_the_original(tmp_path):
    rgb = blocks(32, 32)
    loaded = load_image(write(tmp_path, "pic.jpg", encode(Image.fromarray(rgb), "JPEG",
                                                         quality=95, subsampling=0)))
    assert loaded.format == "JPEG" and loaded.mode == "RGB" and loaded.alpha is None
    assert np.abs(loaded.rgb.astype(int) - rgb).mean() < 3


def test_bytes_source_and_rgba_helper():
    rgb = blocks()
    loaded = load_image(encode(Image.fromarray(rgb), "PNG"))
    assert loaded.path is None and loaded.format == "PNG"
    rgba = loaded.rgba()
    assert rgba.shape == (12, 16, 4) and rgba.flags.c_contiguous
    np.testing.assert_array_equal(rgba[..., :3], rgb)
    assert (rgba[..., 3] == 255).all()


def test_content_decides_the_format_not_the_name(tmp_path):
    png_named_jpg = write(tmp_path, "really_a_png.jpg", encode(Image.fromarray(blocks()), "PNG"))
    assert load_image(png_named_jpg).format == "PNG"
    text_named_png = write(tmp_path, "notes.png", b"Shopping list: eggs, milk, paint.\n")
    with pytest.raises(ImageError, match=r"^notes\.png is not an image Easel can open \(allowed"):
        load_image(text_named_png)


def test_disallowed_format_is_refused(tmp_path):
    ico = write(tmp_path, "icon.png", encode(Image.fromarray(blocks(16, 16)), "ICO"))
    with pytest.raises(ImageError, match="not an image Easel can open"):
        load_image(ico)


# --------------------------------------------------------------------------- modes


def test_palette_with_transparency_gives_alpha(tmp_path):
    idx = np.array([[0, 1, 2, 1]] * 3, np.uint8)
    im = Image.fromarray(idx, "P")
    im.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (253 * 3))
    loaded = load_image(write(tmp_path, "pal.png", encode(im, "PNG", transparency=1)))
    assert loaded.mode == "P"
    np.testing.assert_array_equal(loaded.alpha, np.where(idx == 1, 0, 255))
    np.testing.assert_array_equal(loaded.rgb[0, 0], (255, 0, 0))
    np.testing.assert_array_equal(loaded.rgb[0, 2], (0, 0, 255))


def test_palette_without_transparency_has_no_alpha(tmp_path):
    im = Image.fromarray(blocks()).convert("P", palette=Image.Palette.ADAPTIVE)
    loaded = load_image(write(tmp_path, "pal.png", encode(im, "PNG")))
    assert loaded.mode == "P" and loaded.alpha is None
    np.testing.assert_array_equal(loaded.rgb, blocks())


def test_one_bit(tmp_path):
    bits = (np.indices((8, 10)).sum(axis=0) % 2).astype(bool)
    loaded = load_image(write(tmp_path, "bits.png", encode(Image.fromarray(bits), "PNG")))
    assert loaded.mode == "1"
    np.testing.assert_array_equal(loaded.rgb, np.repeat(bits[..., None] * 255, 3, axis=2))


def test_greyscale_and_greyscale_alpha(tmp_path):
    grey = noise(9, 7, 1)[..., 0]
    loaded = load_image(write(tmp_path, "l.png", encode(Image.fromarray(grey, "L"), "PNG")))
    assert loaded.mode == "L" and loaded.alpha is None
    np.testing.assert_array_equal(loaded.rgb, np.dstack([grey] * 3))

    a = np.tile(np.arange(0, 255, 28, dtype=np.uint8), (7, 1))[:, :9]
    la = Image.fromarray(np.dstack([grey, a]), "LA")
    loaded = load_image(write(tmp_path, "la.png", encode(la, "PNG")))
    assert loaded.mode == "LA"
    np.testing.assert_array_equal(loaded.alpha, a)
    np.testing.assert_array_equal(loaded.rgb[..., 1], grey)


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_sixteen_bit_greyscale_is_scaled_not_clipped(tmp_path, fmt):
    ramp16 = np.tile(np.linspace(0, 65535, 300).round().astype(np.uint16), (4, 1))
    im = Image.fromarray(ramp16)
    assert im.mode == "I;16"
    loaded = load_image(write(tmp_path, f"ramp.{fmt.lower()}", encode(im, fmt)))
    assert loaded.mode.startswith("I")
    out = loaded.rgb[0, :, 0]
    np.testing.assert_array_equal(out, np.rint(ramp16[0] / 257).astype(np.uint8))
    assert out[0] == 0 and out[-1] == 255
    assert (np.diff(out.astype(int)) >= 0).all() and len(np.unique(out)) > 200


def test_float_and_wide_integer_tiffs_are_scaled(tmp_path):
    f = np.tile(np.linspace(0.0, 1.0, 256, dtype=np.float32), (2, 1))
    loaded = load_image(write(tmp_path, "f.tif", encode(Image.fromarray(f), "TIFF")))
    assert loaded.mode == "F"
    np.testing.assert_array_equal(loaded.rgb[0, :, 0], np.rint(f[0] * 255).astype(np.uint8))

    wide = np.tile(np.linspace(-1000, 200_000, 50).astype(np.int32), (2, 1))
    loaded = load_image(write(tmp_path, "i.tif", encode(Image.fromarray(wide), "TIFF")))
    assert loaded.mode == "I"
    row = loaded.rgb[0, :, 0]
    assert row[0] == 0 and row[-1] == 255 and (np.diff(row.astype(int)) >= 0).all()


def test_cmyk_jpeg_is_converted(tmp_path):
    cyan = Image.new("CMYK", (16, 16), (255, 0, 0, 0))
    loaded = load_image(write(tmp_path, "cmyk.jpg", encode(cyan, "JPEG", quality=95)))
    assert loaded.mode == "CMYK" and loaded.alpha is None
    assert np.abs(loaded.rgb.astype(int) - (0, 255, 255)).max() <= 8


def test_rgba_partial_alpha_kept_and_opaque_alpha_dropped(tmp_path):
    rgb, a = noise(10, 6), noise(10, 6, 1, seed=1)[..., 0]
    loaded = load_image(write(tmp_path, "rgba.png",
                              encode(Image.fromarray(np.dstack([rgb, a]), "RGBA"), "PNG")))
    assert loaded.mode == "RGBA"
    np.testing.assert_array_equal(loaded.rgb, rgb)
    np.testing.assert_array_equal(loaded.alpha, a)
    np.testing.assert_array_equal(loaded.rgba(), np.dstack([rgb, a]))

    opaque = np.dstack([rgb, np.full((6, 10), 255, np.uint8)])
    loaded = load_image(write(tmp_path, "opaque.png",
                              encode(Image.fromarray(opaque, "RGBA"), "PNG")))
    assert loaded.mode == "RGBA" and loaded.alpha is None
    np.testing.assert_array_equal(loaded.rgb, rgb)


def test_exif_orientation_is_applied(tmp_path):
    # Stored 20 wide x 10 tall with a red block in the stored top-left corner. Orientation 6
    # means "row 0 is the visual right side, column 0 the visual top", so upright the image is
    # 10 wide x 20 tall and the block sits in the top-right corner.
    stored = np.full((10, 20, 3), 128, np.uint8)
    stored[:4, :4] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(Image.fromarray(stored), "JPEG", quality=95, exif=exif.tobytes())
    loaded = load_image(write(tmp_path, "phone.jpg", data))
    assert loaded.size == (10, 20)
    top_right = loaded.rgb[:3, -3:].reshape(-1, 3).mean(axis=0)
    assert top_right[0] > 200 and top_right[1] < 60 and top_right[2] < 60
    for corner in (loaded.rgb[:3, :3], loaded.rgb[-3:, :3], loaded.rgb[-3:, -3:]):
        assert np.abs(corner.astype(int) - 128).max() < 20


def test_animated_gif_gives_the_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)
    assert Image.open(io.BytesIO(data)).n_frames == 3
    loaded = load_image(write(tmp_path, "anim.gif", data))
    assert loaded.format == "GIF"
    assert (loaded.rgb == (255, 0, 0)).all()


# --------------------------------------------------------------------------- damaged input


@pytest.mark.parametrize(("fmt", "name"), [("PNG", "cut.png"), ("JPEG", "photo.jpg")])
def test_truncated_files_are_refused(tmp_path, fmt, name):
    data = encode(Image.fromarray(noise()), fmt)
    for cut in (len(data) // 2, 30):
        with pytest.raises(ImageError, match=rf"^{name} is truncated or corrupt"):
            load_image(write(tmp_path, name, data[:cut]))
    assert not ImageFile.LOAD_TRUNCATED_IMAGES


def test_empty_missing_and_folder(tmp_path):
    with pytest.raises(ImageError, match=r"^empty\.png is empty \(0 bytes\)\.$"):
        load_image(write(tmp_path, "empty.png", b""))
    with pytest.raises(ImageError, match="empty"):
        load_image(b"")
    with pytest.raises(ImageError, match=r"^gone\.png was not found\.$"):
        load_image(tmp_path / "gone.png")
    (tmp_path / "album.png").mkdir()
    with pytest.raises(ImageError, match="is a folder"):
        load_image(tmp_path / "album.png")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_random_bytes_always_give_image_error(data):
    with pytest.raises(ImageError):
        load_image(data)


@lru_cache(maxsize=1)
def small_valid_files() -> tuple[bytes, ...]:
    im = Image.fromarray(noise(12, 10))
    rgba = Image.fromarray(noise(12, 10, 4), "RGBA")
    return (encode(im, "PNG"), encode(rgba, "PNG"), encode(im, "JPEG"), encode(im, "GIF"),
            encode(im, "BMP"), encode(im, "TIFF"), encode(im, "WEBP"), encode(rgba, "WEBP"))


@pytest.mark.filterwarnings("ignore::UserWarning")  # PIL's notes on damaged TIFF tags
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_damaged_valid_files_load_or_give_image_error(data):
    # Changing bytes in real files reaches far deeper into the decoders than random bytes do.
    files = small_valid_files()
    buf = bytearray(files[data.draw(st.integers(0, len(files) - 1))])
    for _ in range(data.draw(st.integers(1, 4))):
        buf[data.draw(st.integers(0, len(buf) - 1))] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        buf = buf[: data.draw(st.integers(1, len(buf)))]
    try:
        loaded = load_image(bytes(buf), max_pixels=1_000_000)
    except ImageError as e:
        assert str(e).startswith("The image data ")
    else:
        assert loaded.rgb.dtype == np.uint8 and loaded.rgb.ndim == 3


# --------------------------------------------------------------------------- pixel limit


def test_decompression_bomb_header_is_refused_before_decoding(tmp_path, monkeypatch):
    def no_decoding(self):
        raise AssertionError("a refused image must not be decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    path = write(tmp_path, "huge.png", png_header_only(20000, 20000))
    pil_limit = Image.MAX_IMAGE_PIXELS
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PIL must not warn first either
        with pytest.raises(ImageError) as err:
            load_image(path)
    assert time.perf_counter() - t0 < 1.0
    assert str(err.value) == ("huge.png is 20000x20000 (400.0 megapixels); "
                              "the limit is 80 megapixels.")
    assert pil_limit == Image.MAX_IMAGE_PIXELS  # PIL's own setting is restored


def test_pixel_limit_argument_and_environment(tmp_path, monkeypatch):
    path = write(tmp_path, "sq.png", encode(Image.fromarray(noise(100, 100)), "PNG"))
    with pytest.raises(ImageError, match=r"100x100 .*; the limit is 0\.005 megapixels\."):
        load_image(path, max_pixels=5_000)
    assert load_image(path, max_pixels=10_000).size == (100, 100)

    monkeypatch.setenv("EASEL_MAX_PIXELS", "5000")
    with pytest.raises(ImageError, match="the limit is 0.005 megapixels"):
        load_image(path)
    assert load_image(path, max_pixels=20_000).size == (100, 100)  # the argument wins
    monkeypatch.setenv("EASEL_MAX_PIXELS", "lots")
    assert imageio.max_pixels_setting() == DEFAULT_MAX_PIXELS
    monkeypatch.delenv("EASEL_MAX_PIXELS")
    assert imageio.max_pixels_setting() == DEFAULT_MAX_PIXELS


def test_our_limit_not_pils_decides(tmp_path, monkeypatch):
    # Pretend PIL's global bomb limit is tiny: an image within *our* limit must still load with
    # no warning, and PIL's value must be back afterwards.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    path = write(tmp_path, "sq.png", encode(Image.fromarray(noise(50, 50)), "PNG"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_image(path, max_pixels=10_000).size == (50, 50)
    assert Image.MAX_IMAGE_PIXELS == 100


# --------------------------------------------------------------------------- masks


def test_mask_threshold_on_luminance(tmp_path):
    grey = np.array([[0, 100, 127, 128, 200, 255]], np.uint8)
    mask = load_mask(write(tmp_path, "m.png", encode(Image.fromarray(grey, "L"), "PNG")))
    assert mask.dtype == np.uint8
    np.testing.assert_array_equal(mask, [[0, 0, 0, 255, 255, 255]])

    colours = np.array([[(255, 0, 0), (0, 255, 0), (255, 255, 255), (0, 0, 255)]], np.uint8)
    mask = load_mask(write(tmp_path, "c.png", encode(Image.fromarray(colours), "PNG")))
    np.testing.assert_array_equal(mask, [[0, 255, 255, 0]])  # luma: 76, 150, 255, 29


def test_mask_size_mismatch_names_both_sizes(tmp_path):
    path = write(tmp_path, "mask.png", encode(Image.new("L", (300, 200), 255), "PNG"))
    with pytest.raises(ImageError, match=r"^mask\.png is 300x200 but the image is 512x512\.$"):
        load_mask(path, size=(512, 512))
    assert load_mask(path, size=(300, 200)).shape == (200, 300)


def test_transparent_mask_with_painted_strokes(tmp_path):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., :3] = 255  # editors often keep white colour values under full transparency
    rgba[2:5, 1:7, 3] = 255  # the painted stroke
    rgba[6, 6] = (40, 40, 40, 255)  # an opaque dark pixel is not fill
    rgba[7, 7, 3] = 60  # a faint, mostly transparent touch is not fill
    mask = load_mask(write(tmp_path, "strokes.png", encode(Image.fromarray(rgba), "PNG")))
    expected = np.zeros((8, 8), np.uint8)
    expected[2:5, 1:7] = 255
    np.testing.assert_array_equal(mask, expected)


# --------------------------------------------------------------------------- writing


SPEC = {"kind": "inpaint", "seed": 7, "prompt": "a red barn, at dusk", "engine": "patchmatch",
        "patch_size": 7, "steps": 4, "strength": 0.5, "mask": {"sha256": "ab", "shape": [2, 2]},
        "tiles": [1, 2]}


def test_save_png_round_trips_pixels_and_metadata(tmp_path):
    rgb, a = noise(20, 10), noise(20, 10, 1, seed=3)[..., 0]
    out = tmp_path / "result.png"
    save_png(out, rgb, spec=SPEC, extra={"models": {"vae-faces": "f" * 64}})
    loaded = load_image(out)
    np.testing.assert_array_equal(loaded.rgb, rgb)
    assert loaded.alpha is None

    meta = read_metadata(out)
    assert meta["spec"] == SPEC
    assert meta["models"] == {"vae-faces": "f" * 64}
    assert set(meta["versions"]) == {"easel", "torch", "numpy", "pillow", "python", "safetensors",
                                     "pyside6"}
    assert meta["versions"]["numpy"] == np.__version__
    assert is_easel_png(out)

    with Image.open(out) as im:
        params, xmp = im.info["parameters"], im.info[XMP_KEY]
    first, pairs = params.split("\n")
    assert first == "a red barn, at dusk"
    assert pairs.startswith("Job: inpaint, Seed: 7, Engine: patchmatch, Patch size: 7, Steps: 4")
    assert "Strength: 0.5" in pairs and "Mask" not in pairs and "Tiles" not in pairs
    assert f'DigitalSourceType="{TRAINED}"' in xmp

    save_png(out, rgb, a, spec=SPEC, edited=True)
    loaded = load_image(out)
    np.testing.assert_array_equal(loaded.rgba(), np.dstack([rgb, a]))
    with Image.open(out) as im:
        assert f'DigitalSourceType="{COMPOSITE}"' in im.info[XMP_KEY]


def test_parameters_text_quotes_and_unicode(tmp_path):
    text = parameters_text({"kind": "scene", "prompt": "ein Bär", "negative_prompt": "blur",
                            "style": "ink, wash", "seed": 1})
    assert text.split("\n") == ["ein Bär", "Negative prompt: blur",
                                'Job: scene, Style: "ink, wash", Seed: 1, Version: easel '
                                + imageio.versions()["easel"]]
    out = tmp_path / "u.png"
    save_png(out, noise(4, 4), spec={"kind": "scene", "prompt": "ein Bär 🐻"})
    with Image.open(out) as im:
        assert im.info["parameters"].startswith("ein Bär 🐻\n")
    assert parameters_text(None).startswith("Version: easel")


def test_read_metadata_without_or_with_broken_metadata(tmp_path):
    plain = write(tmp_path, "plain.png", encode(Image.fromarray(blocks()), "PNG"))
    assert read_metadata(plain) is None and not is_easel_png(plain)
    assert read_spec(plain) is None
    jpeg = write(tmp_path, "p.jpg", encode(Image.fromarray(blocks()), "JPEG"))
    assert read_metadata(jpeg) is None

    info = PngImagePlugin.PngInfo()
    info.add_itxt("easel", "{not json")
    broken = write(tmp_path, "broken.png", encode(Image.fromarray(blocks()), "PNG", pnginfo=info))
    assert read_metadata(broken) is None

    text = write(tmp_path, "notes.png", b"hello")
    with pytest.raises(ImageError, match="not an image"):
        read_metadata(text)
    assert not is_easel_png(text)


def test_read_spec_round_trips_an_inpaint_spec(tmp_path):
    from core.pipelines.inpaint import InpaintSpec

    rgb = noise(16, 12)
    mask = np.zeros((12, 16), np.uint8)
    mask[3:8, 4:10] = 255
    spec = InpaintSpec(seed=11, image=ImageRef.of(rgb), mask=ImageRef.of(mask, embed=True),
                       patch_size=9, iterations=3, grow=2)
    out = tmp_path / "filled.png"
    save_png(out, rgb, spec=spec, edited=True)

    back = read_spec(out)
    assert isinstance(back, InpaintSpec)
    assert (back.seed, back.patch_size, back.iterations, back.grow, back.engine) == (
        11, 9, 3, 2, "patchmatch")
    np.testing.assert_array_equal(back.mask.array(), mask)
    assert back.image.sha256 == spec.image.sha256 and back.image.pixels is None
    assert read_metadata(out)["spec"] == json.loads(json.dumps(spec.to_dict()))


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "doc.bin"
    atomic_write(target, b"first")
    atomic_write(target, b"second")
    assert target.read_bytes() == b"second"
    assert os.listdir(tmp_path) == ["doc.bin"]
    if os.name == "posix":
        umask = os.umask(0)
        os.umask(umask)
        assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_failed_write_keeps_the_original(tmp_path, monkeypatch):
    target = tmp_path / "result.png"
    save_png(target, blocks(), spec=SPEC)
    original = target.read_bytes()

    def refuse(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="No space"):
        save_png(target, noise(), spec=SPEC)
    with pytest.raises(OSError, match="No space"):
        atomic_write(target, b"junk")
    assert target.read_bytes() == original
    assert os.listdir(tmp_path) == ["result.png"]


def test_save_png_rejects_wrong_arrays(tmp_path):
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        save_png(tmp_path / "x.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="alpha"):
        save_png(tmp_path / "x.png", blocks(), np.zeros((3, 3), np.uint8))
    assert not any(tmp_path.iterdir())


def test_suffixes_and_no_torch_import():
    assert {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"} <= IMAGE_SUFFIXES
    assert all(s in imageio.IMAGE_FILE_FILTER for s in ("*.png", "*.webp", "*.tiff", "*.gif"))
    # Recording versions and writing/reading a PNG must not pay for importing torch.
    code = ("import sys, numpy as np; from core import imageio as m; import tempfile, os;"
            "p = os.path.join(tempfile.mkdtemp(), 'a.png');"
            "m.save_png(p, np.zeros((2, 2, 3), np.uint8), spec={'kind': 'x'});"
            "m.load_image(p); assert m.read_metadata(p)['versions']['torch'];"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[2], timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_exclusive_write_never_replaces_and_names_its_temp_files(tmp_path, monkeypatch):
    target = tmp_path / "result.png"
    seen = []
    real_fsync = os.fsync

    def spy(fd):  # the temp file exists while its bytes are being synced
        seen.extend(p.name for p in tmp_path.iterdir())
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    atomic_write(target, b"first", overwrite=False)
    assert target.read_bytes() == b"first"
    assert re.fullmatch(r"\.result\.png\.easel-[0-9a-f]{8}\.tmp", seen[0])
    with pytest.raises(FileExistsError) as err:
        save_png(target, blocks(), spec=SPEC, overwrite=False)
    assert err.value.filename == str(target)
    assert target.read_bytes() == b"first"
    assert os.listdir(tmp_path) == ["result.png"]
