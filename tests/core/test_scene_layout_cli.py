"""``easel scene`` with a layout prior: ``--layout FILE.json``, the layout in ``--json`` and in
every PNG's metadata, and restoring a picture's layout from its metadata (picture_spec)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scene_models import LAYOUT_NAME, install, install_layout_prior

from core import cli, imageio
from core.data.layouts import BINS, MAX_JSON_BYTES, layout_json, parse_layout_json
from core.jobs import Context, run_job
from core.specs.scene import CAPTION_PRIOR, SceneSpec, picture_spec

README_PROMPT = "a red star to the left of two blue circles on a black background"
JSON_KEYS = {"outputs", "spec", "read_as", "reading", "notices", "scores", "checks", "seconds"}


@pytest.fixture()
def models(tmp_path, monkeypatch):
    monkeypatch.setenv("EASEL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("EASEL_WEIGHTS", str(tmp_path / "shipped"))
    found = install(tmp_path / "home")
    found[LAYOUT_NAME] = install_layout_prior(tmp_path / "home")
    return found


def _obj(**over):
    return {"shape": "star", "colour": "red", "size": "small", "box": [0.13, 0.21, 0.37, 0.46],
            **over}


LAYOUT = {"background": "black", "objects": [
    _obj(), _obj(shape="circle", colour="blue", size="big", box=[0.52, 0.4, 0.93, 0.81])]}


def scene(argv, capsys):
    """``easel scene ARGV``: (exit code, stdout, stderr)."""
    code = cli.main(["scene", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def same_layout(got: dict, want: dict) -> bool:
    """Same background and objects (shape, colour, size), each box within one bin."""
    def key(o):
        return o["box"][0] + o["box"][2], o["box"][1] + o["box"][3]

    a, b = sorted(got["objects"], key=key), sorted(want["objects"], key=key)
    return got["background"] == want["background"] and len(a) == len(b) and all(
        (x["shape"], x["colour"], x["size"]) == (y["shape"], y["colour"], y["size"])
        and max(abs(p - q) for p, q in zip(x["box"], y["box"], strict=True)) <= 1 / BINS
        for x, y in zip(a, b, strict=True))


def test_layout_file_draws_that_layout_for_every_candidate(models, tmp_path, capsys):
    path = tmp_path / "layout.json"
    path.write_text(json.dumps(LAYOUT, indent=2))
    out = tmp_path / "scene.png"
    code, stdout, err = scene(["anything at all", "--layout", str(path), "--model", LAYOUT_NAME,
                               "--n", "3", "--all", "--seed", "2", "--json", "-o", str(out)],
                              capsys)
    assert code == 0, err
    report = json.loads(stdout)
    assert set(report) == JSON_KEYS | {"layout"}
    assert same_layout(report["layout"], LAYOUT)
    assert report["spec"]["layout"] == layout_json(parse_layout_json(json.dumps(LAYOUT)))
    assert report["reading"].startswith("the layout: a small red star and a big blue circle")
    for rank, png in enumerate(report["outputs"], 1):
        meta = imageio.read_metadata(png)
        assert meta["rank"] == rank and same_layout(meta["layout"], LAYOUT)
    # --edit draws its region from the layout too (a scene_edit spec carries the layout).
    edited = tmp_path / "edited.png"
    code, stdout, err = scene(["a red star", "--edit", str(out), "--box", "0,0,0.5,0.5",
                               "--layout", str(path), "--model", LAYOUT_NAME, "--n", "2",
                               "--json", "-o", str(edited)], capsys)
    assert code == 0, err
    report = json.loads(stdout)
    assert report["spec"]["kind"] == "scene_edit" and same_layout(report["layout"], LAYOUT)
    assert report["spec"]["layout"] == layout_json(parse_layout_json(json.dumps(LAYOUT)))
    assert same_layout(imageio.read_metadata(edited)["layout"], LAYOUT)


def test_each_png_carries_its_own_candidates_layout_and_reruns_exactly(models, tmp_path, capsys):
    out = tmp_path / "scene.png"
    code, stdout, err = scene([README_PROMPT, "--model", LAYOUT_NAME, "--n", "3", "--all",
                               "--seed", "5", "--json", "-o", str(out)], capsys)
    assert code == 0, err
    report = json.loads(stdout)
    spec = SceneSpec.from_dict(report["spec"])
    expected = run_job(spec, Context.for_spec(spec, "cpu")).info["layouts"]
    assert report["layout"] == expected[0]
    metas = [imageio.read_metadata(p) for p in report["outputs"]]
    assert [m["layout"] for m in metas] == expected
    assert len({json.dumps(m["layout"]) for m in metas}) > 1  # each its own layout
    # The stored spec is the job's own (planned from the prompt), so rerun draws it again.
    assert all(m["spec"] == report["spec"] and m["spec"]["layout"] == "" for m in metas)
    again = tmp_path / "again.png"
    assert cli.main(["rerun", str(out), "-o", str(again)]) == 0
    assert np.array_equal(imageio.load_image(out).rgb, imageio.load_image(again).rgb)
    assert imageio.read_metadata(again)["spec"] == report["spec"]


def test_caption_prior_reports_no_layout_and_refuses_a_layout_file(models, tmp_path, capsys):
    out = tmp_path / "scene.png"
    code, stdout, err = scene(["a red star", "--model", CAPTION_PRIOR, "--n", "2", "--json",
                               "-o", str(out)], capsys)
    assert code == 0, err
    report = json.loads(stdout)
    assert set(report) == JSON_KEYS | {"layout"} and report["layout"] is None
    assert "layout" not in imageio.read_metadata(out)
    path = tmp_path / "layout.json"
    path.write_text(json.dumps(LAYOUT))
    refused = tmp_path / "refused.png"
    code, stdout, err = scene(["a red star", "--model", CAPTION_PRIOR, "--layout", str(path),
                               "-o", str(refused)], capsys)
    assert code == 2 and "draws from prompts only" in err and len(err.splitlines()) == 1
    assert not refused.exists() and stdout == ""


def _bad_files():
    def objects(*objs, background="black"):
        return json.dumps({"background": background, "objects": list(objs)})

    return [
        (None, "no layout file at"),
        ("", "bad.json: the layout is empty"),
        (objects(_obj()) + " " * MAX_JSON_BYTES, "bad.json is 64 KB; a layout file holds at "
                                                 "most 64 KB"),
        ("{\"background\": ", "bad.json: the layout is not valid JSON"),
        (objects(*[_obj()] * 4), "bad.json: the layout has 4 objects; a scene holds at most 3"),
        (objects(_obj(box=[0.5, 0.1, 1.2, 0.3])), "the box [0.5, 0.1, 1.2, 0.3] leaves the "
                                                  "picture"),
        (objects(_obj(box=[-0.1, 0.1, 0.2, 0.3])), "leaves the picture"),
        (objects(_obj(box=[0.4, 0.1, 0.3, 0.3])), "is empty (x0 must be below x1"),
        (objects(_obj(shape="zebra")), "unknown shape of object 1 'zebra'"),
        (objects(_obj(colour="bleu")), "did you mean blue"),
        (objects(_obj(), background="red"), "a red star would be invisible on the red "
                                            "background"),
    ]


@pytest.mark.parametrize("content, message", _bad_files())
def test_bad_layout_files_exit_2_naming_the_problem_and_write_nothing(
        models, tmp_path, capsys, content, message):
    path = tmp_path / "bad.json"
    if content is not None:
        path.write_text(content)
    out = tmp_path / "scene.png"
    code, stdout, err = scene(["a red star", "--layout", str(path), "--model", LAYOUT_NAME,
                               "-o", str(out)], capsys)
    assert code == 2 and message in err and len(err.splitlines()) == 1, err
    assert not out.exists() and stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["home"] + (["bad.json"] if content is not None else []))


def test_picture_spec_restores_the_candidates_layout_into_a_scene_spec(models, tmp_path,
                                                                        capsys):
    out = tmp_path / "scene.png"
    code, stdout, err = scene([README_PROMPT, "--model", LAYOUT_NAME, "--n", "2", "--all",
                               "--seed", "3", "-o", str(out)], capsys)
    assert code == 0, err
    meta = imageio.read_metadata(tmp_path / "scene-2.png")
    restored = picture_spec(meta)
    assert restored["layout"] == layout_json(parse_layout_json(json.dumps(meta["layout"])))
    assert restored == {**meta["spec"], "layout": restored["layout"]}
    assert meta["spec"]["layout"] == ""  # the metadata itself is left as it was
    # Redrawing the restored spec draws the second candidate's layout for every candidate.
    spec = SceneSpec.from_dict(restored)
    info = run_job(spec, Context.for_spec(spec, "cpu")).info
    assert info["layouts"] == [meta["layout"]] * 2


def test_picture_spec_keeps_specs_that_need_no_layout():
    scene_spec = SceneSpec(prompt="a red star", model=LAYOUT_NAME).to_dict()
    layout = {"background": "black", "objects": [_obj()]}
    own = {**scene_spec, "layout": '{"background":"white","objects":[]}'}
    assert picture_spec({"spec": own, "layout": layout}) == own  # its own layout wins
    assert picture_spec({"spec": scene_spec}) == scene_spec  # a caption prior's picture
    assert picture_spec({"spec": scene_spec, "layout": "not a dict"}) == scene_spec
    edit = {**scene_spec, "kind": "scene_edit"}
    assert json.loads(picture_spec({"spec": edit, "layout": layout})["layout"]) == layout
    other = {"kind": "upscale", "seed": 0}
    assert picture_spec({"spec": other, "layout": layout}) == other
    assert picture_spec({}) is None and picture_spec({"spec": "x"}) is None
    compact = picture_spec({"spec": scene_spec, "layout": layout})["layout"]
    assert compact == json.dumps(layout, separators=(",", ":")) and " " not in compact
