"""Crafted image files: every mode loads as 8-bit RGB(A), damage is an ImageError, bombs are
refused from the header, and the CLI turns a bomb into one line in bounded memory and time.

Every file is built here in tmp_path (or in memory); nothing binary is committed.
"""

from __future__ import annotations

import io
import random
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile, PngImagePlugin

from core import imageio, pngcheck
from core.imageio import ImageError, load_image, read_metadata, save_png
from core.jobs import read_spec
from tests.crafted import run_cli

REPO = Path(__file__).resolve().parents[2]


def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def gradient(w: int = 64, h: int = 48) -> np.ndarray:
    """Smooth pixels compress well, so a bit error lands in a short deflate stream."""
    ramp = np.arange(w, dtype=np.uint16)[None, :] * 255 // max(w - 1, 1)
    a = np.broadcast_to(ramp, (h, w)).astype(np.uint8)
    return np.ascontiguousarray(np.dstack([a, a[::-1], np.full_like(a, 90)]))


def png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def png_raw(w: int, h: int, depth: int, colour: int, rows: bytes, extra: bytes = b"") -> bytes:
    ihdr = struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, 0)
    return (pngcheck.SIGNATURE + png_chunk(b"IHDR", ihdr) + extra
            + png_chunk(b"IDAT", zlib.compress(rows)) + png_chunk(b"IEND", b""))


def flipped(data: bytes, seed: int, count: int) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        b = bytearray(data)
        b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        out.append(bytes(b))
    return out


# --------------------------------------------------------------------------- valid files


def _sixteen_bit_rgb_png() -> bytes:
    rgb = np.zeros((3, 5, 3), ">u2")
    rgb[..., 0] = 65535
    rgb[1:, :, 2] = 257 * 128
    rows = b"".join(b"\0" + row.tobytes() for row in rgb)
    return png_raw(5, 3, 16, 2, rows)


def _mode_files() -> dict[str, bytes]:
    rgb = Image.fromarray(gradient(10, 6))
    grey = rgb.convert("L")
    arr = np.asarray(grey)
    return {
        "1": encode(grey.convert("1"), "PNG"),
        "L": encode(grey, "PNG"),
        "LA": encode(rgb.convert("LA"), "PNG"),
        "P": encode(rgb.convert("P"), "PNG"),
        "RGB": encode(rgb, "PNG"),
        "RGBA": encode(rgb.convert("RGBA"), "PNG"),
        "CMYK": encode(rgb.convert("CMYK"), "TIFF"),
        "I": encode(Image.fromarray(arr.astype(np.int32) * 1000), "TIFF"),
        "I;16": encode(Image.fromarray(arr.astype(np.uint16) * 257), "PNG"),
        "F": encode(Image.fromarray(arr.astype(np.float32) / 255), "TIFF"),
        "YCbCr": encode(rgb.convert("YCbCr"), "JPEG"),
        "16-bit RGB PNG": _sixteen_bit_rgb_png(),
    }


MODE_FILES = _mode_files()


@pytest.mark.parametrize("mode", list(MODE_FILES))
def test_every_mode_loads_as_8_bit_rgb(mode):
    loaded = load_image(MODE_FILES[mode])
    h, w = loaded.rgb.shape[:2]
    assert loaded.rgb.dtype == np.uint8 and loaded.rgb.shape == (h, w, 3)
    assert loaded.alpha is None or (loaded.alpha.dtype == np.uint8
                                    and loaded.alpha.shape == (h, w))
    assert (w, h) in ((10, 6), (5, 3))
    if mode == "16-bit RGB PNG":
        assert tuple(loaded.rgb[0, 0]) == (255, 0, 0) and tuple(loaded.rgb[2, 0]) == (255, 0, 128)


def test_palette_with_alpha_mode_is_normalised():
    # No allowed format opens as PA (PNG keeps a palette's alpha in tRNS), but the mode exists.
    pa = Image.fromarray(gradient(10, 6)).convert("P").convert("PA")
    pa.putalpha(Image.new("L", pa.size, 7))
    rgb, alpha = imageio._normalise(pa)
    assert rgb.dtype == np.uint8 and rgb.shape == (6, 10, 3)
    assert alpha is not None and (alpha == 7).all()


@pytest.mark.parametrize("size", [(1, 1), (2, 2), (1, 500), (500, 1)])
def test_extreme_shapes_load(size):
    w, h = size
    loaded = load_image(encode(Image.new("RGB", size, (9, 8, 7)), "PNG"))
    assert loaded.rgb.shape == (h, w, 3) and (loaded.rgb == (9, 8, 7)).all()


def test_large_compressed_text_chunks_still_give_the_picture(tmp_path):
    # 2 MB of text in one zTXt and one iTXt, more than Pillow's 1 MB per-chunk limit.
    text = ("lorem ipsum " * 180_000).encode("latin-1")
    extra = (png_chunk(b"zTXt", b"Comment\0\0" + zlib.compress(text))
             + png_chunk(b"iTXt", b"notes\0\1\0\0\0" + zlib.compress(text)))
    rows = b"".join(b"\0" + bytes([200, 100, 50]) * 4 for _ in range(3))
    path = tmp_path / "annotated.png"
    path.write_bytes(png_raw(4, 3, 8, 2, rows, extra))
    loaded = load_image(path)
    assert loaded.size == (4, 3) and (loaded.rgb == (200, 100, 50)).all()
    assert read_metadata(path) is None


def test_oversized_easel_metadata_is_not_read(tmp_path, caplog):
    path = tmp_path / "made.png"
    save_png(path, gradient(4, 4), spec={"kind": "inpaint", "seed": 1})
    assert read_metadata(path)["spec"]["seed"] == 1
    # The same picture with an `easel` chunk that inflates past the cap (a tiny file).
    huge = b'{"spec": {"kind": "inpaint", "pad": "' + b"x" * (imageio.MAX_METADATA_BYTES) + b'"}}'
    big = (tmp_path / "big.png")
    big.write_bytes(png_raw(1, 1, 8, 2, b"\0\0\0\0",
                            png_chunk(b"iTXt", b"easel\0\1\0\0\0" + zlib.compress(huge, 9))))
    assert big.stat().st_size < 64_000
    assert read_metadata(big) is None
    assert "over 8 MiB" in caplog.text
    with pytest.raises(ImageError, match=r"^big\.png carries Easel metadata over 8 MiB; Easel"):
        read_spec(big)
    assert load_image(big).size == (1, 1)


# --------------------------------------------------------------------------- damaged files


def test_bit_errors_in_a_png_are_refused_not_shown_as_garbage():
    data = encode(Image.fromarray(gradient()), "PNG")
    for bad in flipped(data, seed=3, count=25):
        with pytest.raises(ImageError, match="^The image data is (truncated or corrupt|not an)"):
            load_image(bad)


def test_broken_zlib_stream_with_good_checksums_is_refused():
    rows = b"".join(b"\0" + bytes(range(12)) for _ in range(4))
    stream = zlib.compress(rows)
    for bad in (stream[:-4] + b"\0\0\0\0",  # wrong adler32
                stream[:-6],  # stream ends early
                zlib.compress(rows * 3000)):  # inflates far past the image's size
        ihdr = struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0)
        data = (pngcheck.SIGNATURE + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", bad)
                + png_chunk(b"IEND", b""))
        with pytest.raises(ImageError, match="truncated or corrupt"):
            load_image(data)


FORMATS = [("PNG", {}), ("JPEG", {}), ("WEBP", {}), ("TIFF", {"compression": "tiff_deflate"}),
           ("GIF", {}), ("BMP", {})]


@pytest.mark.parametrize(("fmt", "kw"), FORMATS, ids=[f for f, _ in FORMATS])
def test_truncated_files_are_refused(tmp_path, fmt, kw):
    data = encode(Image.fromarray(gradient()), fmt, **kw)
    for cut in (12, len(data) // 4, len(data) // 2, 3 * len(data) // 4, len(data) - 8):
        if fmt == "PNG" or cut < len(data) - 8:  # GIF/JPEG/WebP/TIFF trailers may be lost
            with pytest.raises(ImageError):
                load_image(data[:cut])
    if fmt == "PNG":  # no IEND: the file was cut, even though every pixel arrived
        with pytest.raises(ImageError, match="truncated or corrupt"):
            load_image(data[:-12])


def test_damaged_tiff_prints_nothing_but_the_error(capfd):
    data = encode(Image.fromarray(gradient()), "TIFF", compression="tiff_deflate")
    refused = 0
    for bad in flipped(data, seed=1, count=12):
        try:
            load_image(bad)
        except ImageError:
            refused += 1
    out, err = capfd.readouterr()
    assert refused and err == "" and out == ""


# --------------------------------------------------------------------------- bombs


def _patched(data: bytes, offset: int, fmt: str, *values: int) -> bytes:
    b = bytearray(data)
    struct.pack_into(fmt, b, offset, *values)
    return bytes(b)


def _bombs() -> dict[str, bytes]:
    small = Image.fromarray(gradient(8, 8))
    jpeg = encode(small, "JPEG")
    sof = jpeg.index(b"\xff\xc0") + 5
    return {
        "PNG": png_raw(60000, 60000, 8, 6, b"\0" * 16),
        "GIF": _patched(encode(small, "GIF"), 6, "<HH", 65535, 65535),
        "BMP": _patched(encode(small, "BMP"), 18, "<ii", 60000, 60000),
        "JPEG": _patched(jpeg, sof, ">HH", 60000, 60000),
    }


@pytest.mark.parametrize("fmt", list(_bombs()))
def test_bombs_are_refused_from_the_header(fmt, monkeypatch):
    def no_decoding(*args, **kwargs):
        raise AssertionError("a refused image must not be decoded or scanned")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    monkeypatch.setattr(pngcheck, "verify", no_decoding)
    t0 = time.perf_counter()
    with pytest.raises(ImageError, match=r"megapixels\); the limit is 80 megapixels\.$"):
        load_image(_bombs()[fmt])
    assert time.perf_counter() - t0 < 1.0


def test_cli_refuses_a_bomb_in_one_line_and_bounded_memory(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_raw(60000, 60000, 8, 6, b"\0" * 16))
    run = run_cli(["upscale", str(bomb), "-o", str(tmp_path / "out.png")], tmp_path / "home")
    run.assert_clean_refusal("60000x60000")
    assert not (tmp_path / "out.png").exists()


def test_pil_limits_are_restored():
    before = Image.MAX_IMAGE_PIXELS, PngImagePlugin.MAX_TEXT_CHUNK
    load_image(MODE_FILES["RGB"])
    assert before == (Image.MAX_IMAGE_PIXELS, PngImagePlugin.MAX_TEXT_CHUNK)


# --------------------------------------------------------------------------- tiny pictures


def _commands(img: str, style: str) -> dict[str, list[str]]:
    return {
        "inpaint": ["inpaint", img, "--mask", img.replace("pic", "mask")],
        "outpaint": ["outpaint", img, "--right", "3"],
        "upscale": ["upscale", img],
        "style": ["style", img, style, "--steps", "2"],
        "style --fast": ["style", img, "--fast", "style_fast_brush"],
        "latent edit": ["latent", "edit", img, "--model", "vae_faces"],
        "scene --edit": ["scene", "a red circle", "--edit", img, "--box", "0,0,1,1", "--n", "1"],
    }


@pytest.mark.parametrize("size", [(1, 1), (2, 2), (1, 40), (40, 1)], ids=str)
@pytest.mark.parametrize("command", list(_commands("", "")))
def test_every_command_handles_or_refuses_tiny_pictures(tmp_path, capsys, command, size):
    from core import cli

    w, h = size
    img, style = tmp_path / "pic.png", tmp_path / "style.png"
    Image.fromarray(gradient(w, h)).save(img)
    mask = np.zeros((h, w), np.uint8)
    mask.flat[0] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    Image.fromarray(gradient(24, 24)).save(style)
    out = tmp_path / "out.png"
    code = cli.main([*_commands(str(img), str(style))[command], "-o", str(out)])
    err = capsys.readouterr().err
    assert code in (0, 2), err
    if code == 2:  # a clear refusal: one line, nothing written
        assert err.count("\n") == 1 and err.startswith("easel: error: ") and not out.exists()
    else:
        assert load_image(out).size[0] >= w and "Traceback" not in err
    if command.startswith("style"):  # restyled at its own size, however thin
        assert code == 0 and load_image(out).size == (w, h)
