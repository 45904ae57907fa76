from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.data.folder import FolderError, FolderWorld, read_caption, scan_folder


def _wide(path: Path, w: int = 60, h: int = 30, fmt: str | None = None) -> None:
    """A picture whose left half is red and right half blue, with a green centre stripe."""
    a = np.zeros((h, w, 3), np.uint8)
    a[:, : w // 2] = (220, 20, 20)
    a[:, w // 2:] = (20, 20, 220)
    a[:, w // 2 - 2: w // 2 + 2] = (20, 200, 20)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path, format=fmt)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "pics"
    _wide(root / "a.png")
    (root / "a.txt").write_text("  a red and blue card \n", encoding="utf-8")
    _wide(root / "sub" / "b.jpg", 30, 50)
    _wide(root / "sub" / "deeper" / "C.webp", 40, 40)
    good = (root / "a.png").read_bytes()
    (root / "broken.png").write_bytes(good[: len(good) // 2])  # truncated
    (root / "sub" / "fake.jpg").write_text("not really a picture")
    (root / "notes.doc").write_text("hello")
    _wide(root / ".hidden.png")
    return root


def test_scan_is_recursive_sorted_and_explains_skips(folder: Path):
    scan = scan_folder(folder)
    rel = [p.relative_to(folder).as_posix() for p in scan.files]
    assert rel == ["a.png", "sub/b.jpg", "sub/deeper/C.webp"]
    reasons = {p.relative_to(folder).as_posix(): why for p, why in scan.skipped}
    assert set(reasons) == {"broken.png", "notes.doc", "sub/fake.jpg"}
    assert all(reasons.values())
    assert "broken.png" in reasons["broken.png"]  # imageio's message names the file
    assert ".doc" in reasons["notes.doc"]
    assert scan_folder(folder).files == scan.files
    # Without verification only the suffix decides.
    assert len(scan_folder(folder, verify=False).files) == 5


def test_crop_and_pad_make_squares(folder: Path):
    crop = FolderWorld(folder, size=32, fit="crop")
    pad = FolderWorld(folder, size=32, fit="pad")
    assert len(crop) == len(pad) == 3
    for world in (crop, pad):
        for i in range(3):
            image = world.load(i).image
            assert image.shape == (32, 32, 3) and image.dtype == np.uint8
    c, p = crop.load(0).image.astype(int), pad.load(0).image.astype(int)
    # The 60x30 card: a crop keeps the centre 30x30 (both colours, full height); padding keeps
    # the whole card with bars above and below in the border's mean colour.
    assert c[16, 1, 0] > 150 and c[16, 30, 2] > 150
    assert np.abs(c[0] - c[16]).max() < 30
    assert p[16, 0, 0] > 150 and p[16, 31, 2] > 150
    assert np.abs(p[0, 0] - p[0, 31]).max() < 10  # a uniform bar, not the picture
    assert crop.load(0, size=16).image.shape == (16, 16, 3)


def test_flip_is_deterministic_and_optional(folder: Path):
    world = FolderWorld(folder, size=24)
    plain = world.load(0).image
    flips = [world.load(0, rng=s).labels["flipped"] for s in range(20)]
    assert any(flips) and not all(flips)
    for s in range(20):
        sample = world.load(0, rng=s)
        assert np.array_equal(sample.image, world.load(0, rng=s).image)
        expected = plain[:, ::-1] if sample.labels["flipped"] else plain
        assert np.array_equal(sample.image, expected)
    no_flip = FolderWorld(folder, size=24, flip=False)
    assert not any(no_flip.load(0, rng=s).labels["flipped"] for s in range(10))


def test_captions_from_text_files(folder: Path):
    world = FolderWorld(folder, size=16)
    assert world.load(0).caption == "a red and blue card"
    assert world.load(1).caption is None
    (folder / "sub" / "b.txt").write_bytes("caf\xe9 au lait\n".encode())
    assert read_caption(folder / "sub" / "b.jpg") == "café au lait"
    (folder / "sub" / "b.txt").write_text("   \n")
    assert read_caption(folder / "sub" / "b.jpg") is None


def test_each_file_is_decoded_once(folder: Path):
    world = FolderWorld(folder, size=16)
    assert world.decodes == 3
    for _ in range(3):
        for i in range(len(world)):
            world.load(i, rng=i)
    assert world.decodes == 3
    # A loaded picture is a copy: scribbling on it leaves the cache alone.
    world.load(0).image[:] = 0
    assert world.load(0).image.max() > 0
    # A tiny cache cannot hold the folder, so loads decode again but still work.
    tiny = FolderWorld(folder, size=16, cache_bytes=16 * 16 * 3)
    tiny.load(0), tiny.load(2), tiny.load(0)
    assert tiny.decodes > 3


def test_world_protocol_render(folder: Path):
    world = FolderWorld(folder, size=16)
    assert world.render(4, 16).labels["path"] == "sub/b.jpg"
    assert np.array_equal(world.render(4, 16).image, world.render(4, 16).image)


def test_unusable_folders_are_clear_errors(tmp_path: Path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FolderError, match=r"No usable images in .*empty\.$"):
        FolderWorld(empty)
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("a.png", "b.png", "c.jpg"):
        (bad / name).write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    with pytest.raises(FolderError, match=r"No usable images in .*bad: 3 files skipped \(a\.png: "):
        FolderWorld(bad)
    with pytest.raises(FolderError, match="does not exist"):
        scan_folder(tmp_path / "missing")
    with pytest.raises(FolderError, match="not a folder"):
        scan_folder(bad / "a.png")
    with pytest.raises(ValueError, match="fit"):
        FolderWorld(tmp_path, fit="stretch")  # type: ignore[arg-type]
    with pytest.raises(IndexError):
        _one_image_world(tmp_path).load(5)


def _one_image_world(tmp_path: Path) -> FolderWorld:
    _wide(tmp_path / "one" / "x.png")
    return FolderWorld(tmp_path / "one", size=8)


def test_transparent_pixels_become_white(tmp_path: Path):
    a = np.zeros((10, 10, 4), np.uint8)
    a[..., 0] = 255
    a[:, 5:, 3] = 255  # left half transparent
    (tmp_path / "t").mkdir()
    Image.fromarray(a, "RGBA").save(tmp_path / "t" / "t.png")
    image = FolderWorld(tmp_path / "t", size=10).load(0).image
    assert tuple(image[5, 0]) == (255, 255, 255) and tuple(image[5, 9]) == (255, 0, 0)
