"""The dataset view's report of a folder: usable images, skipped files, near-duplicates found
by difference hash, and the spread of sizes and shapes."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from core.data.folder import FolderError
from core.data.report import dhash, folder_report, near_duplicates
from core.data.worlds import get_world


def face(seed: int, size: int = 96) -> np.ndarray:
    return get_world("faces").render(seed, size=size).image


def jpeg_round_trip(rgb: np.ndarray, quality: int = 70) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def test_dhash_survives_rescaling_and_recompression_but_tells_pictures_apart():
    a = face(1)
    small = np.asarray(Image.fromarray(a).resize((60, 60), Image.Resampling.LANCZOS))
    assert (dhash(a) ^ dhash(small)).bit_count() <= 4
    assert (dhash(a) ^ dhash(jpeg_round_trip(a))).bit_count() <= 4
    assert all((dhash(a) ^ dhash(face(s))).bit_count() > 8 for s in range(2, 8))


def test_near_duplicates_link_transitively_and_leave_singletons_out():
    far = 0xFFFFFFFF00000000  # 32 bits from 0
    # 0-1 and 1-2 differ in 3 bits, 0-2 in 6 (linked through 1); 3-4 in 1; 5 is far from all.
    assert near_duplicates([0b0, 0b111, 0b111111, far, far | 1, 0xFFFF0000]) == [
        [0, 1, 2], [3, 4]]
    assert near_duplicates([]) == []


def test_folder_report_counts_skips_groups_and_spreads(tmp_path):
    (tmp_path / "sub").mkdir()
    Image.fromarray(face(1)).save(tmp_path / "a.png")
    Image.fromarray(jpeg_round_trip(face(1))).save(tmp_path / "sub" / "a-copy.jpg")
    Image.fromarray(face(2, 64)).resize((128, 64)).save(tmp_path / "wide.png")
    Image.fromarray(face(3, 64)).resize((40, 80)).save(tmp_path / "tall.webp")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (tmp_path / "notes.doc").write_text("hello")
    (tmp_path / "a.txt").write_text("a caption")  # expected company, not skipped
    report = folder_report(tmp_path)
    assert report.count == 4
    assert report.files == ["a.png", "sub/a-copy.jpg", "tall.webp", "wide.png"]
    reasons = {s["path"]: s["reason"] for s in report.skipped}
    assert set(reasons) == {"broken.png", "notes.doc"}
    assert "not an image type" in reasons["notes.doc"]
    assert report.duplicates == [["a.png", "sub/a-copy.jpg"]]
    assert report.spread() == {"min_side": 40, "median_side": 96, "max_side": 128,
                               "square": 2, "landscape": 1, "portrait": 1}
    assert report.to_dict()["count"] == 4
    with pytest.raises(FolderError, match="does not exist"):
        folder_report(tmp_path / "nope")


def test_easel_dataset_prints_the_report_and_refuses_a_missing_folder(tmp_path, capsys):
    import json

    from core import cli

    Image.fromarray(face(1)).save(tmp_path / "a.png")
    Image.fromarray(face(1)).save(tmp_path / "b.png")
    (tmp_path / "c.png").write_bytes(b"broken")
    assert cli.main(["dataset", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "2 usable images" in out and "near-duplicates: a.png, b.png" in out
    assert "skipped c.png" in out
    assert cli.main(["dataset", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["duplicates"] == [["a.png", "b.png"]]
    assert cli.main(["dataset", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
