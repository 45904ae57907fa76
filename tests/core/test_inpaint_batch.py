"""``easel inpaint FOLDER --mask MASK|MASKFOLDER -o OUTFOLDER``: masks matched by name, one mask
resized to every picture, results by name as PNG, never replacing a file unasked, one
picture's trouble never stopping the others, and the exit code saying what happened."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core import cli, imageio
from core.jobs import ImageRef
from core.specs.inpaint_batch import plan_batch


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch):
    """No device, debug or pixel-limit setting of the caller's changes the runs (the user
    folders are the test's own: tests/conftest.py)."""
    for name in ("EASEL_DEVICE", "EASEL_DEBUG", "EASEL_MAX_PIXELS"):
        monkeypatch.delenv(name, raising=False)


def picture(path: Path, h: int = 24, w: int = 28, seed: int = 0) -> np.ndarray:
    """A small noisy picture saved at ``path`` (its suffix picks the format); the pixels as
    read back."""
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)
    return imageio.load_image(path).rgb


def mask(path: Path, h: int = 24, w: int = 28, box: tuple[int, int, int, int] = (6, 8, 14, 18)
         ) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    y0, x0, y1, x1 = box
    m[y0:y1, x0:x1] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(m).save(path)
    return m


def run(capsys, *args: str) -> tuple[int, list[dict], str]:
    code = cli.main(["inpaint", *args, "--json", "--device", "cpu"])
    captured = capsys.readouterr()
    return code, [json.loads(line) for line in captured.out.splitlines()], captured.err


def embedded_mask(png: Path) -> np.ndarray:
    return ImageRef.from_dict(imageio.read_metadata(png)["spec"]["mask"]).array()


def test_masks_match_pictures_by_name_and_results_are_named_by_it(tmp_path, capsys):
    pics, masks, out = tmp_path / "pics", tmp_path / "masks", tmp_path / "out"
    a = picture(pics / "a.png", seed=1)
    b = picture(pics / "b.jpg", seed=2)  # a JPEG picture, a PNG result
    mask_a = mask(masks / "a.bmp", box=(2, 2, 8, 8))  # any image suffix
    mask_b = mask(masks / "B.png", box=(12, 14, 20, 26))  # names match whatever the case
    (pics / "notes.txt").write_text("not a picture")
    code, lines, err = run(capsys, str(pics), "--mask", str(masks), "-o", str(out),
                           "--seed", "3")
    assert code == 0, err
    assert [(Path(d["picture"]).name, d["status"], d["output"]) for d in lines] == [
        ("a.png", "written", str(out / "a.png")), ("b.jpg", "written", str(out / "b.png"))]
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"]
    for name, rgb, m in (("a", a, mask_a), ("b", b, mask_b)):
        result = imageio.load_image(out / f"{name}.png").rgb
        assert np.array_equal(result[m == 0], rgb[m == 0])  # only the hole changes
        assert not np.array_equal(result[m > 0], rgb[m > 0])
        assert np.array_equal(embedded_mask(out / f"{name}.png"), m)  # its own mask
        meta = imageio.read_metadata(out / f"{name}.png")["spec"]
        assert meta["kind"] == "inpaint" and meta["seed"] == 3
        assert meta["image"]["path"] == str(pics / ("a.png" if name == "a" else "b.jpg"))
    assert lines[0]["spec"] == imageio.read_metadata(out / "a.png")["spec"]
    # A result reruns as any fill does.
    assert cli.main(["rerun", str(out / "a.png"), "-o", str(tmp_path / "again.png")]) == 0
    assert np.array_equal(imageio.load_image(tmp_path / "again.png").rgb,
                          imageio.load_image(out / "a.png").rgb)


def test_refused_pictures_do_not_stop_the_batch_and_exit_2(tmp_path, capsys):
    pics, masks, out = tmp_path / "pics", tmp_path / "masks", tmp_path / "out"
    picture(pics / "a.png")
    picture(pics / "bad.png")
    (pics / "bad.png").write_bytes((pics / "bad.png").read_bytes()[:80])  # truncated
    picture(pics / "lonely.png")  # no mask of its name
    picture(pics / "small.png")
    picture(pics / "twin.png")
    picture(pics / "twin.jpg")  # both would be out/twin.png
    picture(pics / "z.png")
    for name in ("a", "bad", "twin", "z"):
        mask(masks / f"{name}.png")
    mask(masks / "small.png", h=10, w=10)  # a mask of its own must fit its picture
    code, lines, err = run(capsys, str(pics), "--mask", str(masks), "-o", str(out))
    assert code == 2
    status = {Path(d["picture"]).name: (d["status"], d["message"] or "") for d in lines}
    assert list(status) == ["a.png", "bad.png", "lonely.png", "small.png", "twin.jpg",
                            "twin.png", "z.png"]
    assert status["a.png"][0] == status["z.png"][0] == "written"
    assert status["bad.png"] == ("refused", "bad.png is truncated or corrupt and cannot be read.")
    assert status["lonely.png"][0] == "refused" and "No mask named lonely" in status[
        "lonely.png"][1]
    assert status["small.png"][0] == "refused" and "10x10" in status["small.png"][1]
    for twin in ("twin.jpg", "twin.png"):
        assert status[twin][0] == "refused" and "would both be written" in status[twin][1]
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "z.png"]
    assert "Traceback" not in err

    # Without --json: a line per picture, refusals on stderr, and a summary.
    code = cli.main(["inpaint", str(pics), "--mask", str(masks), "-o", str(tmp_path / "o2")])
    captured = capsys.readouterr()
    assert code == 2
    assert "easel: bad.png: refused: bad.png is truncated" in captured.err
    assert captured.out.splitlines()[-1].startswith("7 pictures: 2 written, 5 refused")


def test_an_unexpected_failure_exits_1_and_the_batch_goes_on(tmp_path, capsys, monkeypatch):
    from core.pipelines import inpaint_batch

    pics, masks, out = tmp_path / "pics", tmp_path / "masks", tmp_path / "out"
    for name in ("a", "boom", "c"):
        picture(pics / f"{name}.png")
        mask(masks / f"{name}.png")
    (pics / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")  # refused as well
    fill = inpaint_batch.run_inpaint

    def flaky(spec, ctx):
        if spec.image.path.endswith("boom.png"):
            raise RuntimeError("a bug")
        return (yield from fill(spec, ctx))

    monkeypatch.setattr(inpaint_batch, "run_inpaint", flaky)
    code, lines, err = run(capsys, str(pics), "--mask", str(masks), "-o", str(out))
    assert code == 1  # a failure outweighs a refusal
    assert [(Path(d["picture"]).name, d["status"]) for d in lines] == [
        ("a.png", "written"), ("bad.png", "refused"), ("boom.png", "failed"),
        ("c.png", "written")]
    assert lines[2]["message"] == "internal error: RuntimeError: a bug"
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "c.png"]


def test_one_mask_for_all_is_resized_to_each_picture_with_a_note(tmp_path, capsys):
    pics, out = tmp_path / "pics", tmp_path / "out"
    picture(pics / "wide.png", h=20, w=30)
    picture(pics / "same.png", h=16, w=16)
    one = mask(tmp_path / "mask.png", h=16, w=16, box=(4, 4, 9, 12))
    code, lines, err = run(capsys, str(pics), "--mask", str(tmp_path / "mask.png"),
                           "-o", str(out))
    assert code == 0, err
    notes = {Path(d["picture"]).name: d["notes"] for d in lines}
    assert notes["same.png"] == []
    [note] = notes["wide.png"]
    assert "mask.png is 16x16" in note and "nearest" in note and "30x20" in note
    expected = np.asarray(Image.fromarray(one).resize((30, 20), Image.Resampling.NEAREST))
    assert np.array_equal(embedded_mask(out / "wide.png"), expected)
    assert set(np.unique(expected)) == {0, 255}
    assert np.array_equal(embedded_mask(out / "same.png"), one)
    # Without --json the note goes to stderr.
    assert cli.main(["inpaint", str(pics), "--mask", str(tmp_path / "mask.png"),
                     "-o", str(tmp_path / "o2")]) == 0
    assert "note: The mask mask.png is 16x16" in capsys.readouterr().err


def test_existing_results_are_kept_without_overwrite(tmp_path, capsys):
    pics, masks, out = tmp_path / "pics", tmp_path / "masks", tmp_path / "out"
    for name in ("a", "b"):
        picture(pics / f"{name}.png")
        mask(masks / f"{name}.png")
    out.mkdir()
    (out / "a.png").write_bytes(b"keep me")
    code, lines, err = run(capsys, str(pics), "--mask", str(masks), "-o", str(out))
    assert code == 2
    assert [d["status"] for d in lines] == ["refused", "written"]
    assert "a.png already exists" in lines[0]["message"]
    assert (out / "a.png").read_bytes() == b"keep me"
    code, lines, err = run(capsys, str(pics), "--mask", str(masks), "-o", str(out),
                           "--overwrite")
    assert code == 0 and [d["status"] for d in lines] == ["written", "written"]
    assert imageio.read_metadata(out / "a.png")["spec"]["kind"] == "inpaint"
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left


@pytest.mark.parametrize("problem", ["no-pictures", "into-inputs", "no-mask", "variations"])
def test_a_batch_that_cannot_start_is_one_line_exit_2(tmp_path, capsys, problem):
    pics, masks, out = tmp_path / "pics", tmp_path / "masks", tmp_path / "out"
    picture(pics / "a.png")
    mask(masks / "a.png")
    extra: list[str] = []
    if problem == "no-pictures":
        (pics / "a.png").unlink()
    elif problem == "into-inputs":
        out = pics
    elif problem == "no-mask":
        masks = tmp_path / "nowhere"
    else:
        extra = ["--engine", "diffusion", "--variations", "2"]
    before = sorted(p.name for p in pics.iterdir())
    code = cli.main(["inpaint", str(pics), "--mask", str(masks), "-o", str(out), *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("easel: error: "), err
    assert sorted(p.name for p in pics.iterdir()) == before


def test_a_single_mask_among_the_pictures_is_not_a_picture(tmp_path):
    pics = tmp_path / "pics"
    picture(pics / "a.png")
    mask(pics / "mask.png")
    plan = plan_batch(pics, pics / "mask.png", tmp_path / "out")
    assert [i.picture.name for i in plan.items] == ["a.png"] and plan.single_mask
