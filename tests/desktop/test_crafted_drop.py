"""Dropping a crafted Easel PNG on the window: the picture opens, its settings are refused with
a message (never the crash dialog), and a valid run's images are read off the GUI thread."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from window_helpers import open_window

from core import imageio
from core.jobs import ImageRef
from core.pipelines.inpaint import InpaintSpec
from core.pipelines.style import StyleSpec
from tests.crafted import claimed_png, png_with_metadata


@pytest.fixture
def win(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("EASEL_HOME", str(tmp_path / "home"))
    w = open_window(qtbot, tmp_path)
    yield w
    w.close()
    assert not w.service.thread().isRunning()


def style_dict(tmp_path, styles: int = 1) -> dict:
    rng = np.random.default_rng(0)
    refs = []
    for k in range(styles):
        path = tmp_path / f"style{k}.png"
        pixels = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
        imageio.save_png(path, pixels)
        refs.append(ImageRef.of(pixels, str(path)))
    return StyleSpec(styles=tuple(refs), steps=2).to_dict()


CRAFTED = {
    "forty style paths": lambda d: d.update(styles=d["styles"] * 40),
    "embedded bombs": lambda d: d.update(styles=[{"sha256": "", "png": claimed_png(6000, 6000)}]
                                         * 8),
    "400-digit strength": lambda d: d.update(strength=10**400),
    "path a list": lambda d: d.update(styles=[{"sha256": "", "path": ["a"]}]),
    "model an object": lambda d: d.update(fast={"name": "x"}),
    "nesting": lambda d: d.update(style_weights=[[[[[[[[[[1]]]]]]]]]]),
}


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_a_crafted_drop_opens_the_picture_and_refuses_its_settings(win, tmp_path, case):
    d = style_dict(tmp_path)
    CRAFTED[case](d)
    png = png_with_metadata(tmp_path / "crafted.png", json.dumps({"spec": d}), size=24)
    win.open_paths([str(png)])
    assert win.doc.image_array().shape[:2] == (24, 24)  # the picture itself opened
    assert any("cannot be used" in m for m in win.messages), win.messages


def test_inpaint_settings_with_a_400_digit_number_are_refused(win, tmp_path):
    d = InpaintSpec().to_dict()
    d["strength"] = 10**400
    png = png_with_metadata(tmp_path / "crafted.png", json.dumps({"spec": d}), size=24)
    win.open_paths([str(png)])
    assert any("out of range" in m for m in win.messages), win.messages


def test_deeply_nested_metadata_opens_as_a_plain_picture(win, tmp_path):
    png = png_with_metadata(tmp_path / "deep.png", "[" * 100_000 + "]" * 100_000, size=24)
    win.open_paths([str(png)])
    assert win.doc.image_array().shape[:2] == (24, 24) and win.messages == []


def test_a_restored_run_reads_its_style_images_off_the_gui_thread(qtbot, win, tmp_path,
                                                                  monkeypatch):
    d = style_dict(tmp_path, styles=3)
    png = png_with_metadata(tmp_path / "run.png", json.dumps({"spec": d}), size=24)
    threads: list[bool] = []
    load = imageio.load_image

    def recording_load(*args, **kw):
        if "style" in str(args[0]):
            threads.append(threading.current_thread() is threading.main_thread())
        return load(*args, **kw)

    monkeypatch.setattr(imageio, "load_image", recording_load)
    win.open_paths([str(png)])
    panel = next(p for p in win.panels if p.name == "style")
    qtbot.waitUntil(lambda: not panel.reader.busy(), timeout=10_000)
    assert threads == [False, False, False]  # all three read, none on the GUI thread
    assert [i.path for i in panel.tray.images()] == [r["path"] for r in d["styles"]]
