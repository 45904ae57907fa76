"""Layered documents without Qt: compositing, .easel files old and new, and OpenRaster and
Photoshop files out and back in, checked with readers that are not Easel's (ElementTree and
Pillow for OpenRaster, psd-tools for Photoshop), and the ``easel export`` and ``easel
import-layers`` commands."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import zipfile
from xml.etree import ElementTree as ET

import numpy as np
import pytest
from PIL import Image

from core import cli
from core.document import (
    MASK_NAME,
    Contents,
    DocumentError,
    Layer,
    LayerStack,
    composite,
    decode,
    encode,
    read_document,
    read_layered,
    write_layered,
)
from core.document.ora import read_ora, write_ora
from core.document.psd import read_psd, write_psd


def pixels(h: int, w: int, seed: int, opaque: bool = False) -> np.ndarray:
    a = np.random.default_rng(seed).integers(0, 256, (h, w, 4), dtype=np.uint8)
    if opaque:
        a[..., 3] = 255
    return a


def sample_stack() -> LayerStack:
    """A picture, a half-faded result off the top-left corner, a hidden layer reaching past
    the canvas, and a mask."""
    mask = np.zeros((48, 64), np.uint8)
    mask[10:20, 5:40] = 255
    mask[30, 30] = 77
    return LayerStack(64, 48, [
        Layer("Picture", pixels(48, 64, 1, opaque=True), kind="picture"),
        Layer("Inpaint (seed 7)", pixels(20, 30, 2), 7, 5, True, 0.55, "result",
              {"kind": "inpaint", "seed": 7}),
        Layer("Sketch", pixels(6, 9, 3), -3, 44, False, 1.0, "paint"),
    ], mask=mask)


def png_rgba(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))


# --------------------------------------------------------------------------- compositing


def test_composite_is_the_over_operator_and_a_lone_picture_comes_back_exactly():
    pic = pixels(4, 5, 0, opaque=True)
    assert np.array_equal(composite([Layer("p", pic, kind="picture")], 5, 4), pic)
    red = np.zeros((2, 2, 4), np.uint8)
    red[..., 0], red[..., 3] = 200, 128
    out = composite([Layer("p", pic, kind="picture"), Layer("r", red, 1, 1, True, 0.5)], 5, 4)
    a = 128 / 255 * 0.5
    expected = np.rint(200 * a + pic[1:3, 1:3, 0] * (1 - a))
    assert np.abs(out[1:3, 1:3, 0].astype(int) - expected).max() <= 1
    assert np.array_equal(out[0], pic[0]) and (out[..., 3] == 255).all()
    hidden = composite([Layer("p", pic, kind="picture"), Layer("r", red, 1, 1, False)], 5, 4)
    assert np.array_equal(hidden, pic)


# --------------------------------------------------------------------------- .easel


def test_easel_file_keeps_every_layer_and_the_mask():
    stack = sample_stack()
    back = decode(encode(Contents(stack=stack, results=[(pixels(8, 8, 9)[..., :3], {"seed": 9},
                                                          "seed 9")])))
    assert [(la.name, la.kind, la.x, la.y, la.visible, la.opacity, la.spec)
            for la in back.stack.layers] == [
        (la.name, la.kind, la.x, la.y, la.visible, la.opacity, la.spec) for la in stack.layers]
    for a, b in zip(stack.layers, back.stack.layers, strict=True):
        assert np.array_equal(a.pixels, b.pixels)
    assert np.array_equal(back.stack.mask, stack.mask)
    assert back.results[0][2] == "seed 9" and back.results[0][0].shape == (8, 8, 3)


def test_a_document_from_before_layers_opens_as_its_picture():
    """Version 1 .easel files (no layer list) still open: the picture is the only layer."""
    pic = pixels(12, 16, 4, opaque=True)
    mask = np.zeros((12, 16), np.uint8)
    mask[2:5, 3:9] = 255

    def png(a: np.ndarray) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, format="PNG")
        return buf.getvalue()

    meta = {"format": "easel", "version": 1, "source_path": "/pictures/cat.png",
            "source_sha256": "ab" * 32, "width": 16, "height": 12,
            "results": [{"label": "seed 1", "spec": {"seed": 1}, "channels": 3}],
            "picture_spec": None}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("document.json", json.dumps(meta))
        z.writestr("image.png", png(pic))
        z.writestr("mask.png", png(mask))
        z.writestr("results/0.png", png(pic[..., :3]))
    old = decode(buf.getvalue(), "cat.easel")
    assert [(la.name, la.kind) for la in old.stack.layers] == [("Picture", "picture")]
    assert np.array_equal(old.stack.layers[0].pixels, pic)
    assert np.array_equal(old.stack.mask, mask)
    assert old.source_path == "/pictures/cat.png" and old.results[0][1] == {"seed": 1}


def test_damaged_layer_lists_are_refused():
    good = encode(Contents(stack=sample_stack()))
    with zipfile.ZipFile(io.BytesIO(good)) as z:
        members = {n: z.read(n) for n in z.namelist()}
    meta = json.loads(members["document.json"])
    for broken in ({"opacity": 2.0}, {"kind": "picture"}, {"x": "3"}, {"file": "../x.png"},
                   {"visible": 1}):
        layers = [dict(e) for e in meta["layers"]]
        layers[1].update(broken)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for name, data in members.items():
                z.writestr(name, json.dumps({**meta, "layers": layers})
                           if name == "document.json" else data)
        with pytest.raises(DocumentError, match="damaged"):
            decode(buf.getvalue(), "x.easel")


# --------------------------------------------------------------------------- OpenRaster


def test_openraster_out_reads_back_in_an_independent_reader_and_in_easel():
    stack = sample_stack()
    data = write_ora(stack)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        first = z.infolist()[0]
        assert (first.filename, first.compress_type) == ("mimetype", zipfile.ZIP_STORED)
        assert z.read("mimetype") == b"image/openraster"
        root = ET.fromstring(z.read("stack.xml"))
        assert (root.get("w"), root.get("h")) == ("64", "48")
        rows = root.find("stack").findall("layer")  # the topmost first
        assert [r.get("name") for r in rows] == [MASK_NAME, "Sketch", "Inpaint (seed 7)",
                                                 "Picture"]
        for row, layer in zip(rows[1:], reversed(stack.layers), strict=True):
            assert (int(row.get("x")), int(row.get("y"))) == (layer.x, layer.y)
            assert row.get("visibility") == ("visible" if layer.visible else "hidden")
            assert float(row.get("opacity")) == pytest.approx(layer.opacity)
            assert np.array_equal(png_rgba(z.read(row.get("src"))), layer.pixels)
        assert rows[0].get("visibility") == "hidden"
        assert np.array_equal(png_rgba(z.read(rows[0].get("src")))[..., 3], stack.mask)
        assert np.array_equal(png_rgba(z.read("mergedimage.png")), stack.composite())
        assert max(Image.open(io.BytesIO(z.read("Thumbnails/thumbnail.png"))).size) <= 256

    back = read_ora(data, "x.ora")
    assert not back.notes and np.array_equal(back.mask, stack.mask)
    for a, b in zip(stack.layers, back.layers, strict=True):
        assert (b.name, b.x, b.y, b.visible, b.kind) == (a.name, a.x, a.y, a.visible, a.kind)
        assert b.opacity == pytest.approx(a.opacity) and np.array_equal(a.pixels, b.pixels)


def foreign_ora(layers: list[tuple[str, np.ndarray, dict]], w: int, h: int,
                group: bool = False) -> bytes:
    """An OpenRaster file as another program writes one (layers listed bottom first)."""
    image = ET.Element("image", {"w": str(w), "h": str(h), "version": "0.0.3"})
    outer = ET.SubElement(image, "stack")
    parent = ET.SubElement(outer, "stack", {"name": "Group", "opacity": "0.5"}) if group \
        else outer
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("mimetype", "image/openraster", zipfile.ZIP_STORED)
        for i, (name, a, attrs) in reversed(list(enumerate(layers))):
            ET.SubElement(parent, "layer", {"name": name, "src": f"data/{i}.png", **attrs})
            png = io.BytesIO()
            Image.fromarray(a).save(png, format="PNG")
            z.writestr(f"data/{i}.png", png.getvalue())
        z.writestr("stack.xml", ET.tostring(image))
    return buf.getvalue()


def test_openraster_blend_modes_easel_does_not_keep_are_flattened_with_a_note():
    base = np.full((4, 4, 4), 200, np.uint8)
    base[..., 3] = 255
    top = np.full((2, 2, 4), 100, np.uint8)
    top[..., 3] = 255
    above = pixels(1, 1, 5, opaque=True)
    data = foreign_ora([("Base", base, {}),
                        ("Shade", top, {"x": "1", "y": "1", "composite-op": "svg:multiply"}),
                        ("Above", above, {"x": "3"})], 4, 4)
    stack = read_ora(data, "art.ora")
    assert [la.name for la in stack.layers] == ["Flattened: Base, Shade", "Above"]
    assert stack.layers[0].kind == "picture" and stack.layers[1].kind == "paint"
    flat = stack.layers[0].pixels
    assert abs(int(flat[1, 1, 0]) - round(200 * 100 / 255)) <= 1  # multiplied
    assert flat[0, 0, 0] == 200  # outside the shade: the base
    assert any("multiply" in note and "Shade" in note for note in stack.notes)


def test_openraster_groups_pass_their_opacity_to_their_layers():
    base = pixels(4, 4, 6, opaque=True)
    data = foreign_ora([("Base", base, {}), ("Inner", base, {"opacity": "0.5"})], 4, 4,
                       group=True)
    stack = read_ora(data, "g.ora")
    assert [la.opacity for la in stack.layers] == pytest.approx([0.5, 0.25])


# --------------------------------------------------------------------------- Photoshop


def test_photoshop_out_reads_back_in_psd_tools_and_in_easel():
    from psd_tools import PSDImage

    stack = sample_stack()
    data = write_psd(stack)
    psd = PSDImage.open(io.BytesIO(data))
    assert (psd.width, psd.height, psd.depth) == (64, 48, 8)
    found = list(psd)  # bottom first
    assert [la.name for la in found] == ["Picture", "Inpaint (seed 7)", "Sketch", MASK_NAME]
    for got, layer in zip(found, stack.layers, strict=False):
        assert (got.left, got.top, got.visible) == (layer.x, layer.y, layer.visible)
        assert got.opacity == round(layer.opacity * 255)
        assert np.array_equal(np.asarray(got.topil().convert("RGBA")), layer.pixels)
    assert not found[3].visible

    back = read_psd(data, "x.psd")
    assert not back.notes and np.array_equal(back.mask, stack.mask)
    for a, b in zip(stack.layers, back.layers, strict=True):
        assert (b.name, b.x, b.y, b.visible) == (a.name, a.x, a.y, a.visible)
        assert b.opacity == pytest.approx(a.opacity, abs=0.5 / 255)
        assert np.array_equal(a.pixels, b.pixels)


def krita_command() -> list[str] | None:
    """How to run Krita here, or None. Krita draws on X11 even for ``--export`` (it ignores
    QT_QPA_PLATFORM=offscreen), so without a display it runs under xvfb-run."""
    if shutil.which("krita") is None:
        return None
    if os.environ.get("DISPLAY"):
        return ["krita"]
    return ["xvfb-run", "-a", "krita"] if shutil.which("xvfb-run") else None


@pytest.fixture(scope="module")
def krita_home(tmp_path_factory):
    """A home of its own for Krita (its first start there fills it, ~90 MB, ~15 s)."""
    return tmp_path_factory.mktemp("krita-home")


@pytest.mark.slow
@pytest.mark.skipif(krita_command() is None,
                    reason="needs a krita executable on PATH, and a display or xvfb-run")
@pytest.mark.parametrize("suffix", [".ora", ".psd"])
def test_krita_flattens_an_export_as_easel_composites_it(tmp_path, krita_home, suffix):
    stack = sample_stack()
    picture = stack.layers[0].pixels
    picture[:, :12, 3] = 0  # transparent and half-transparent canvas under the layers
    picture[:, 12:24, 3] = np.random.default_rng(9).integers(0, 256, (48, 12))
    src, out = tmp_path / f"in{suffix}", tmp_path / "krita.png"
    write_layered(src, stack)
    env = {**os.environ, "HOME": str(krita_home), "XDG_CONFIG_HOME": str(krita_home / "config"),
           "XDG_DATA_HOME": str(krita_home / "data"), "XDG_CACHE_HOME": str(krita_home / "cache")}
    run = subprocess.run([*krita_command(), "--export", "--export-filename", str(out),
                          str(src)], env=env, capture_output=True, timeout=300, check=False)
    assert out.is_file(), run.stderr.decode(errors="replace")[-2000:]
    theirs = np.asarray(Image.open(out).convert("RGBA")).astype(np.float64)
    ours = stack.composite().astype(np.float64)
    assert theirs.shape == ours.shape
    # Compared premultiplied: a nearly transparent pixel's colour is not defined by its bytes.
    diff = np.abs(theirs[..., :3] * theirs[..., 3:] - ours[..., :3] * ours[..., 3:]) / 255
    assert np.abs(theirs[..., 3] - ours[..., 3]).max() <= 1  # hidden layer and mask not drawn
    assert diff.max() <= 2 and diff.mean() < 0.1  # one 8-bit rounding step


def test_photoshop_blend_modes_are_flattened_and_groups_come_in_as_layers():
    from psd_tools import PSDImage
    from psd_tools.api.layers import PixelLayer
    from psd_tools.constants import BlendMode

    psd = PSDImage.new("RGBA", (8, 6), depth=8)
    base = pixels(6, 8, 7, opaque=True)
    psd.append(PixelLayer.frompil(Image.fromarray(base, "RGBA"), psd, "Base"))
    screen = PixelLayer.frompil(Image.fromarray(pixels(3, 3, 8, opaque=True), "RGBA"), psd,
                                "Glow", top=1, left=2)
    screen.blend_mode = BlendMode.SCREEN
    psd.append(screen)
    group = psd.create_group(name="Folder")
    group.append(PixelLayer.frompil(Image.fromarray(pixels(2, 2, 9), "RGBA"), psd, "Inside"))
    buf = io.BytesIO()
    psd.save(buf)
    stack = read_psd(buf.getvalue(), "art.psd")
    assert [la.name for la in stack.layers] == ["Flattened: Base, Glow", "Inside"]
    assert any("screen" in note and "Glow" in note for note in stack.notes)
    cb, cs = base[1, 2, :3] / 255, pixels(3, 3, 8)[0, 0, :3] / 255
    assert np.abs(stack.layers[0].pixels[1, 2, :3] - (cb + cs - cb * cs) * 255).max() <= 1


@pytest.mark.parametrize(("mode", "depth", "words"), [("L", 8, "greyscale"),
                                                       ("CMYK", 8, "CMYK"),
                                                       ("RGB", 16, "16 bits per channel")])
def test_only_8_bit_rgb_photoshop_files_open(mode, depth, words):
    from psd_tools import PSDImage

    buf = io.BytesIO()
    PSDImage.new(mode, (4, 4), depth=depth).save(buf)
    with pytest.raises(DocumentError, match=words) as info:
        read_psd(buf.getvalue(), "scan.psd")
    assert "8-bit RGB" in str(info.value) and "scan.psd" in str(info.value)


# --------------------------------------------------------------------------- files, CLI


def test_files_are_told_by_their_bytes(tmp_path):
    stack = sample_stack()
    ora, psd, doc = tmp_path / "a.ora", tmp_path / "b.psd", tmp_path / "c.easel"
    write_layered(ora, stack)
    write_layered(psd, stack)
    doc.write_bytes(encode(Contents(stack=stack)))
    named_wrongly = tmp_path / "really-ora.psd"
    named_wrongly.write_bytes(ora.read_bytes())
    assert len(read_layered(named_wrongly).layers) == 3
    assert [read_document(p)[1] for p in (ora, psd, doc)] == ["ora", "psd", "easel"]
    with pytest.raises(DocumentError, match="not an OpenRaster"):
        read_layered(doc)
    with pytest.raises(DocumentError, match=r"\.ora or \.psd"):
        write_layered(tmp_path / "x.png", stack)


def test_cli_export_and_import_round_trip(tmp_path, capsys):
    stack = sample_stack()
    doc = tmp_path / "art.easel"
    doc.write_bytes(encode(Contents(stack=stack)))
    for suffix in (".ora", ".psd"):
        out = tmp_path / f"art{suffix}"
        assert cli.main(["export", str(doc), "-o", str(out)]) == 0
        back = tmp_path / f"back{suffix}.easel"
        assert cli.main(["import-layers", str(out), "-o", str(back), "--json"]) == 0
        report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert report["layers"] == ["Picture", "Inpaint (seed 7)", "Sketch"]
        got = decode(back.read_bytes()).stack
        for a, b in zip(stack.layers, got.layers, strict=True):
            assert (a.x, a.y, a.visible) == (b.x, b.y, b.visible)
            assert np.array_equal(a.pixels, b.pixels)
        assert np.array_equal(got.mask, stack.mask)


@pytest.mark.parametrize("args", [
    ["export", "{doc}", "-o", "{tmp}/out.png"],  # not a layered format
    ["export", "{tmp}/missing.easel", "-o", "{tmp}/out.ora"],
    ["export", "{doc}", "-o", "{doc}"],
    ["import-layers", "{doc}", "-o", "{tmp}/x.easel"],  # an .easel is not a layered file
    ["import-layers", "{tmp}/junk.ora", "-o", "{tmp}/x.easel"],
    ["export", "{doc}", "-o", "{tmp}/exists.ora"],  # no --overwrite
])
def test_cli_bad_input_is_exit_2_in_one_line(tmp_path, capsys, args):
    doc = tmp_path / "art.easel"
    doc.write_bytes(encode(Contents(stack=sample_stack())))
    (tmp_path / "junk.ora").write_bytes(b"PK\x03\x04 not really a zip")
    (tmp_path / "exists.ora").write_bytes(b"keep me")
    argv = [a.format(doc=doc, tmp=tmp_path) for a in args]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("easel: error: ")
    assert (tmp_path / "exists.ora").read_bytes() == b"keep me"
    assert not (tmp_path / "out.ora").exists() and not (tmp_path / "x.easel").exists()
