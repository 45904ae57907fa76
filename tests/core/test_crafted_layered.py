"""Crafted layered files: Photoshop headers that lie, OpenRaster zips that break the archive
rules, XML entity bombs and PNG bombs inside a stack. Each is refused with one sentence
before any layer's pixels are decoded, quickly; through the CLI, with exit 2, one line and
the memory and time budget of crafted images (tests/crafted.py).

Every file is built here in tmp_path or in memory; nothing binary is committed.
"""

from __future__ import annotations

import base64
import contextlib
import io
import struct
import time
import zipfile

import numpy as np
import pytest
from PIL import Image

from core import imageio
from core.document import DocumentError
from core.document.ora import read_ora
from core.document.psd import read_psd
from tests.crafted import claimed_png, run_cli


def psd_bytes(width: int = 8, height: int = 8, layers: list[tuple[int, int, int, int]] = (),
              count: int | None = None, mode: int = 3, depth: int = 8,
              channels: int = 4) -> bytes:
    """A Photoshop file's structure: header, empty colour data and resources, and layer
    records with the given (top, left, bottom, right) but no channel data worth decoding."""
    head = b"8BPS" + struct.pack(">H6xHIIHH", 1, channels, height, width, depth, mode)
    records = b""
    for top, left, bottom, right in layers:
        records += struct.pack(">4iH", top, left, bottom, right, 4)
        records += b"".join(struct.pack(">hI", cid, 2) for cid in (-1, 0, 1, 2))
        records += b"8BIMnorm" + bytes([255, 0, 0, 0]) + struct.pack(">I", 0)
    n = len(layers) if count is None else count
    info = struct.pack(">h", n) + records + b"\0" * 64
    section = struct.pack(">I", len(info)) + info
    return head + struct.pack(">II", 0, 0) + struct.pack(">I", len(section)) + section


PSD_CASES = {
    "canvas bomb": (psd_bytes(60000, 60000), "60000x60000"),
    "501 layers": (psd_bytes(layers=[(0, 0, 1, 1)] * 3, count=501), "501 layers"),
    "layer bomb": (psd_bytes(layers=[(0, 0, 50000, 50000)]), "layer 1 is 50000x50000"),
    "negative layer": (psd_bytes(layers=[(10, 10, 0, 0)]), "negative size"),
    "layer far away": (psd_bytes(layers=[(2_000_000_000, 0, 2_000_000_001, 1)]),
                       "off the canvas"),
    "truncated": (psd_bytes(layers=[(0, 0, 4, 4)] * 4)[:90], "truncated or damaged"),
    "CMYK": (psd_bytes(mode=4), "CMYK"),
    "32-bit": (psd_bytes(depth=32), "32 bits per channel"),
}


@pytest.mark.parametrize("case", sorted(PSD_CASES))
def test_crafted_photoshop_headers_are_refused_before_parsing(case, monkeypatch):
    import psd_tools

    def no_parsing(*args, **kwargs):
        raise AssertionError("a refused file must not reach psd-tools")

    monkeypatch.setattr(psd_tools.PSDImage, "open", no_parsing)
    data, words = PSD_CASES[case]
    t0 = time.perf_counter()
    with pytest.raises(DocumentError, match=words) as info:
        read_psd(data, "crafted.psd")
    assert "crafted.psd" in str(info.value) and time.perf_counter() - t0 < 1.0


def png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def ora_bytes(stack_xml: bytes, members: dict[str, bytes] | None = None,
              method: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("mimetype", b"image/openraster", zipfile.ZIP_STORED)
        z.writestr("stack.xml", stack_xml, zipfile.ZIP_DEFLATED)
        for name, data in (members or {}).items():
            z.writestr(name, data, method)
    return buf.getvalue()


def _layers_xml(n: int, w: int = 4, h: int = 4) -> bytes:
    rows = "".join(f'<layer src="data/{i}.png" name="L{i}"/>' for i in range(n))
    return f'<image w="{w}" h="{h}"><stack>{rows}</stack></image>'.encode()


SMALL = png(np.zeros((4, 4, 4), np.uint8))
ORA_CASES = {
    "zip bomb": (ora_bytes(_layers_xml(1), {"data/0.png": b"\0" * 5_000_000},
                           zipfile.ZIP_DEFLATED), "zip bomb"),
    "path out of the archive": (ora_bytes(_layers_xml(1), {"../../evil.png": SMALL}),
                                "outside the archive"),
    "too many members": (ora_bytes(_layers_xml(1), {f"x/{i}": b"" for i in range(1100)}),
                         "more than the"),
    "entity bomb": (ora_bytes(b'<?xml version="1.0"?><!DOCTYPE image [<!ENTITY a "aaaa">'
                              b'<!ENTITY b "&a;&a;&a;&a;&a;&a;">]><image w="4" h="4">'
                              b'<stack><layer name="&b;" src="data/0.png"/></stack></image>',
                              {"data/0.png": SMALL}), "document type"),
    "canvas bomb": (ora_bytes(_layers_xml(1, 60000, 60000), {"data/0.png": SMALL}),
                    "60000x60000"),
    "layer PNG bomb": (ora_bytes(_layers_xml(1), {
        "data/0.png": base64.b64decode(claimed_png(60000, 60000))}), "60000x60000"),
    "501 layers": (ora_bytes(_layers_xml(501), {f"data/{i}.png": SMALL for i in range(501)}),
                   "more than 500 layers"),
    "missing layer": (ora_bytes(_layers_xml(1)), "has no PNG"),
    "deep nesting": (ora_bytes(b'<image w="4" h="4">' + b"<stack>" * 40 + b"</stack>" * 40
                               + b"</image>"), "too deep"),
}


@pytest.mark.parametrize("case", sorted(ORA_CASES))
def test_crafted_openraster_files_are_refused_before_any_layer_is_decoded(case, monkeypatch):
    def no_decoding(*args, **kwargs):
        raise AssertionError("a refused file must not have a layer decoded")

    monkeypatch.setattr(imageio, "load_image", no_decoding)
    data, words = ORA_CASES[case]
    t0 = time.perf_counter()
    with pytest.raises(DocumentError, match=words) as info:
        read_ora(data, "crafted.ora")
    assert "crafted.ora" in str(info.value) and time.perf_counter() - t0 < 2.0


@pytest.mark.parametrize(("suffix", "data", "words"), [
    (".psd", PSD_CASES["layer bomb"][0], "50000x50000"),
    (".psd", PSD_CASES["501 layers"][0], "501 layers"),
    (".ora", ORA_CASES["layer PNG bomb"][0], "60000x60000"),
    (".ora", ORA_CASES["zip bomb"][0], "zip bomb"),
], ids=["psd layer bomb", "psd 501 layers", "ora png bomb", "ora zip bomb"])
def test_cli_refuses_crafted_layered_files_in_one_line_and_bounded_memory(
        tmp_path, suffix, data, words):
    crafted = tmp_path / f"crafted{suffix}"
    crafted.write_bytes(data)
    out = tmp_path / "out.easel"
    run = run_cli(["import-layers", str(crafted), "-o", str(out)], tmp_path / "home")
    run.assert_clean_refusal(words)
    assert not out.exists()


@pytest.mark.parametrize("fmt", ["psd", "ora"])
def test_damaged_layered_files_are_a_document_error_or_open(fmt):
    """Bytes flipped anywhere in a valid file: it opens, or it is refused with a
    DocumentError; never another exception."""
    import random

    from core.document import Layer, LayerStack
    from core.document.ora import write_ora
    from core.document.psd import write_psd

    rng = np.random.default_rng(0)
    stack = LayerStack(12, 10, [
        Layer("Picture", rng.integers(0, 256, (10, 12, 4), dtype=np.uint8), kind="picture"),
        Layer("Top", rng.integers(0, 256, (4, 5, 4), dtype=np.uint8), 2, 3, True, 0.5)])
    data = write_psd(stack) if fmt == "psd" else write_ora(stack)
    read = read_psd if fmt == "psd" else read_ora
    flips = random.Random(1)
    for _ in range(60):
        b = bytearray(data)
        for _ in range(3):
            b[flips.randrange(len(b))] ^= 1 << flips.randrange(8)
        with contextlib.suppress(DocumentError):
            read(bytes(b), "damaged")
