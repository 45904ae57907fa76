"""The layout stage of text-to-scene: layout tokens, the JSON form, planning a layout from a
prompt, the layout prior (training, resume, sampling) and the scene job with a layout prior."""

from __future__ import annotations

import dataclasses
import json
import os
import signal

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from scene_models import LAYOUT_NAME, install, install_layout_prior

from core.data.captions import parse_prompt, sample_scene, satisfies
from core.data.layouts import (
    BINS,
    LAYOUT_LEN,
    MAX_JSON_BYTES,
    TOKENS,
    LayoutError,
    describe_layout,
    label_layout,
    layout_json,
    layout_to_dict,
    layout_tokens,
    parse_layout_json,
    plan_layout,
    read_layout_file,
    token_format,
    tokens_layout,
)
from core.jobs import Context, JobError, run_job
from core.nets.prior import LayoutPrior, LayoutPriorConfig
from core.nets.text import KVCache
from core.pipelines.scene import SceneEditSpec, SceneSpec, draw_batch, load_models
from core.sampling.prior import sample_codes
from core.specs.scene import CAPTION_PRIOR
from core.training.recipe import RecipeError, load_recipe
from core.training.trainer import train
from core.weights import load_model, read_card

README_PROMPT = "a red star to the left of two blue circles on a black background"


def checked(text: str, layout) -> bool:
    """Whether the layout's objects and background satisfy the prompt (the world's checker)."""
    return satisfies(parse_prompt(text), [o.label() for o in layout.objects], layout.background,
                     layout.background2)


# --------------------------------------------------------------------------- tokens


def test_layout_tokens_round_trip_the_worlds_layouts():
    for seed in range(200):
        layout = label_layout(sample_scene(seed).labels())
        ids = layout_tokens(layout)
        assert len(ids) == LAYOUT_LEN and all(0 <= i < len(TOKENS) for i in ids)
        back = tokens_layout(ids)
        assert (back.background, back.background2) == (layout.background, layout.background2)
        # Objects come back left to right, each box covering the original within one bin.
        order = sorted(layout.objects, key=lambda o: o.bbox[0] + o.bbox[2])
        assert [(o.shape, o.colour, o.size) for o in back.objects] == \
               [(o.shape, o.colour, o.size) for o in order]
        for new, old in zip(back.objects, order, strict=True):
            assert new.bbox[0] <= old.bbox[0] + 1e-9 and new.bbox[2] >= old.bbox[2] - 1e-9
            assert max(abs(a - b) for a, b in zip(new.bbox, old.bbox, strict=True)) < 1 / BINS
        assert layout_tokens(back) == ids  # bin edges are fixed points
    # The prior's card records the token format; its defaults are this module's.
    defaults = dataclasses.asdict(LayoutPriorConfig())
    assert {k: defaults[k] for k in token_format()} == token_format()


def test_object_order_does_not_change_the_tokens_and_slots_pad_with_zeros():
    layout = label_layout(sample_scene(5, "three_objects").labels())
    reordered = layout.__class__(layout.objects[::-1], layout.background, layout.background2)
    assert layout_tokens(reordered) == layout_tokens(layout)
    one = label_layout(sample_scene(1, "single_object").labels())
    assert layout_tokens(one)[9:] == [0] * (LAYOUT_LEN - 9)
    with pytest.raises(LayoutError, match="token"):
        tokens_layout([1] * LAYOUT_LEN)  # a colour where a shape belongs


# --------------------------------------------------------------------------- JSON


def test_layout_json_round_trips_and_infers_a_missing_size():
    layout = plan_layout(README_PROMPT, 0)
    assert parse_layout_json(layout_json(layout)) == \
        parse_layout_json(json.dumps(layout_to_dict(layout), indent=2))
    again = parse_layout_json(layout_json(layout))
    assert [o.bbox for o in again.objects] == [tuple(round(v, 4) for v in o.bbox)
                                               for o in layout.objects]
    text = ('{"background": "black", "objects": [{"shape": "star", "colour": "red", '
            '"box": [0.1, 0.1, 0.45, 0.45]}, {"shape": "heart", "colour": "pink", '
            '"box": [0.6, 0.6, 0.8, 0.8]}]}')
    assert [o.size for o in parse_layout_json(text).objects] == ["big", "small"]
    assert describe_layout(parse_layout_json(text)) == \
        "a big red star and a small pink heart on a black background"


def _obj(**over):
    return {"shape": "star", "colour": "red", "size": "small", "box": [0.1, 0.1, 0.3, 0.3],
            **over}


@pytest.mark.parametrize("text, message", [
    ("", "the layout is empty"),
    ("  \n ", "the layout is empty"),
    ("{", "not valid JSON"),
    ('{"background": "black", "objects": [{"shape": "star", "colour": "red", '
     '"box": [NaN, 0, 1, 1]}]}', "NaN is not a number"),
    ("[]", "a layout is a JSON object"),
    ('{"objects": []}', "no 'background'"),
    ('{"background": "blak", "objects": []}', "did you mean black"),
    (json.dumps({"background": "black", "objects": []}), "1 to 3 'objects'"),
    (json.dumps({"background": "black", "objects": [_obj()] * 4}), "4 objects; a scene holds"),
    (json.dumps({"background": "black", "objects": [_obj(box=[0.5, 0.1, 1.2, 0.3])]}),
     "leaves the picture"),
    (json.dumps({"background": "black", "objects": [_obj(box=[0.5, 0.1, 0.5, 0.3])]}),
     "is empty"),
    (json.dumps({"background": "black", "objects": [_obj(box=[0.1, 0.1, 0.3])]}),
     "four numbers"),
    (json.dumps({"background": "black", "objects": [_obj(box=[0.1, 0.1, True, 0.3])]}),
     "four numbers"),
    (json.dumps({"background": "black", "objects": [_obj(shape="zebra")]}), "unknown shape"),
    (json.dumps({"background": "black", "objects": [_obj(colour="bleu")]}),
     "did you mean blue"),
    (json.dumps({"background": "black", "objects": [_obj(size="huge")]}), "unknown size"),
    (json.dumps({"background": "black", "objects": [_obj(angle=3)]}), "unknown key 'angle'"),
    (json.dumps({"background": "black", "objects": [{"shape": "star", "colour": "red"}]}),
     "has no 'box'"),
    (json.dumps({"background": "red", "objects": [_obj()]}), "invisible on the red"),
    (json.dumps({"background": "black", "background2": "black", "objects": [_obj()]}),
     "must differ"),
    (json.dumps({"background": "black", "objects": [_obj()], "note": 1}), "unknown layout key"),
])
def test_bad_layouts_are_refused_with_one_line(text, message):
    with pytest.raises(LayoutError, match=message) as err:
        parse_layout_json(text)
    assert "\n" not in str(err.value)


def test_layout_files_over_64_kb_are_refused_before_they_are_read(tmp_path):
    good = tmp_path / "layout.json"
    good.write_text(json.dumps({"background": "black", "objects": [_obj()]}))
    assert read_layout_file(good).objects[0].shape == "star"
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"background": "black", "objects": [_obj()]})
                   + " " * MAX_JSON_BYTES)
    with pytest.raises(LayoutError, match="big.json is 64 KB; a layout file holds at most 64"):
        read_layout_file(big)
    with pytest.raises(LayoutError, match="at most 64 KB"):
        parse_layout_json(big.read_bytes())
    with pytest.raises(LayoutError, match="no layout file"):
        read_layout_file(tmp_path / "missing.json")
    (tmp_path / "empty.json").write_bytes(b"")
    with pytest.raises(LayoutError, match="empty.json: the layout is empty"):
        read_layout_file(tmp_path / "empty.json")


# --------------------------------------------------------------------------- the layout stage


@pytest.mark.parametrize("prompt", [
    README_PROMPT, "a big star above two hearts", "three small purple squares",
    "a green triangle below a yellow heart on a blue and white background",
    "a circle, a square and a heart", "to the left of a heart there is a small square"])
def test_planned_layouts_satisfy_their_prompt(prompt):
    layouts = [plan_layout(prompt, 7, i) for i in range(6)]
    assert all(checked(prompt, lay) for lay in layouts)
    assert layouts[0] == plan_layout(prompt, 7, 0)  # a function of (prompt, seed, index)
    assert len({layout_json(lay) for lay in layouts}) == 6  # one layout per candidate
    if "black background" in prompt:  # one background named: one tone drawn
        assert all(lay.background2 is None for lay in layouts)


@pytest.mark.parametrize("prompt, message", [
    ("a cute star", "does not know the word.*cute"),
    ("a red strar", "strar \\(did you mean star"),
    ("four stars", "\"four\" asks for more objects than a scene holds"),
    ("two red stars and two blue circles", "asks for 4 objects; a scene holds at most 3"),
    ("a star left of itself", "a relation must link two different objects"),
    ("a star left of a circle and the circle left of the star", "a relation must link"),
    # a side with no second object is refused, not silently dropped
    ("a red star to the right", "a relation must link two different objects"),
    ("a red star to its left", "a relation must link two different objects"),
    ("a red star to the left of it", "a relation must link two different objects"),
    ("a red star on a red background", "invisible on a red background"),
    ("a black background", "names no shape"),
    ("a star and a red", "\"a red\" describe no object"),
    ("", "names no shape"),
])
def test_prompts_the_layout_stage_cannot_draw_are_refused(prompt, message):
    with pytest.raises(LayoutError, match=message):
        plan_layout(prompt, 0)


# --------------------------------------------------------------------------- the layout prior


def tiny_layout_prior() -> LayoutPrior:
    torch.manual_seed(0)
    return LayoutPrior(LayoutPriorConfig(grid=3, codebook_size=11, width=16, layers=2,
                                         heads=2)).eval()


def test_layout_prior_kv_cache_matches_the_full_pass_and_samples_per_layout():
    prior = tiny_layout_prior()
    cond = torch.tensor([layout_tokens(plan_layout(README_PROMPT, s)) for s in range(2)])
    codes = torch.randint(0, 11, (2, 9))
    full = prior(cond, codes)
    caches = [KVCache() for _ in prior.blocks]
    steps = [prior.start(cond, caches)] + [prior.step(codes[:, i:i + 1], caches)
                                           for i in range(8)]
    assert torch.allclose(torch.stack(steps, 1), full, atol=1e-5)
    caches = [KVCache() for _ in prior.blocks]  # several known codes at once (region editing)
    prior.start(cond, caches)
    assert torch.allclose(prior.step(codes[:, :5], caches), full[:, 5], atol=1e-5)
    a = sample_codes(prior, cond, torch.Generator().manual_seed(1), guidance=2.0, top_k=5)
    b = sample_codes(prior, cond, torch.Generator().manual_seed(1), guidance=2.0, top_k=5)
    assert torch.equal(a, b) and a.shape == (2, 9)
    # The layout reaches the codes: another layout, other logits.
    other = torch.tensor([layout_tokens(plan_layout("a big green heart", 3))] * 2)
    assert not torch.allclose(prior(other, codes), full)


def test_each_code_is_told_which_object_covers_its_cell_and_where():
    prior = LayoutPrior(LayoutPriorConfig(grid=8, codebook_size=11, width=16, layers=1,
                                          heads=2)).eval()
    layout = parse_layout_json(json.dumps({"background": "black", "objects": [
        _obj(box=[0.5, 0.0, 1.0, 0.5]), _obj(shape="heart", colour="blue",
                                             box=[0.0, 0.5, 0.25, 0.75])]}))
    with torch.no_grad():
        per_code = prior.code_condition(torch.tensor([layout_tokens(layout)]))[0].view(8, 8, -1)
        bare = prior.code_condition(torch.tensor([layout_tokens(layout)[:2] + [0] * 21]))[0]
    # Cells far from both boxes carry the background alone; the star's cells (top right)
    # differ from one another (where in the star) and from the heart's (bottom left).
    assert torch.allclose(per_code[7, 7], bare[0]) and torch.allclose(per_code[0, 0], bare[0])
    assert not torch.allclose(per_code[1, 5], bare[0])
    assert not torch.allclose(per_code[1, 5], per_code[2, 6])
    assert not torch.allclose(per_code[5, 0], bare[0])
    assert not torch.allclose(per_code[5, 0], per_code[5, 1])


@pytest.fixture()
def easel_home(tmp_path, monkeypatch):
    monkeypatch.setenv("EASEL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("EASEL_WEIGHTS", str(tmp_path / "shipped"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield tmp_path / "home"
    torch.set_num_threads(threads)


def test_tiny_layout_prior_trains_resumes_exactly_and_draws_a_layout(easel_home, tmp_path):
    from core import paths

    vq = train(load_recipe("tiny_vqvae"), tmp_path / "vq", device="cpu",
               weights_dir=paths.models_dir() / "vqvae")
    recipe = load_recipe("tiny_layout_prior", ["train.checkpoint_every=100"])
    full = train(recipe, tmp_path / "full", device="cpu")
    card = read_card(full.weights)
    assert card.architecture == "layout_prior" and card.family == "layout_prior"
    assert card.config["layout_len"] == LAYOUT_LEN and card.config["grid"] == 4
    assert card.config["vqvae_sha256"] == read_card(vq.weights).sha256
    assert np.isfinite(full.last_losses["loss"]) and full.last_losses["kept"] <= 8
    assert (tmp_path / "full" / "samples").is_dir()

    def stop_at_2(event):
        if event["event"] == "step" and event["step"] == 2:
            os.kill(os.getpid(), signal.SIGINT)  # finish the step, checkpoint, stop

    part = train(recipe, tmp_path / "part", device="cpu", emit=stop_at_2)
    assert part.interrupted and part.step in (2, 3)
    done = train(recipe, tmp_path / "part", device="cpu", resume=True)
    assert done.step == 4
    a, b = load_file(full.weights), load_file(done.weights)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    # The trained prior draws a picture for a layout: codes sampled, decoded by the VQ-VAE.
    prior, vqvae = load_model(full.weights), load_model(vq.weights)
    cond = torch.tensor([layout_tokens(plan_layout("a red star", 0))])
    codes = sample_codes(prior, cond, torch.Generator().manual_seed(0))
    with torch.no_grad():
        picture = vqvae.decode(codes.view(1, 4, 4))
    assert picture.shape == (1, 3, 16, 16) and torch.isfinite(picture).all()


def test_layout_prior_training_needs_the_scenes_world_without_flips(easel_home, tmp_path):
    from core import paths

    train(load_recipe("tiny_vqvae", ["train.steps=1"]), tmp_path / "vq", device="cpu",
          weights_dir=paths.models_dir() / "vqvae")
    with pytest.raises(RecipeError, match="data.flip = false"):
        train(load_recipe("tiny_layout_prior", ["data.flip=true"]), tmp_path / "r",
              device="cpu")
    with pytest.raises(RecipeError, match="learns from the scenes world"):
        train(load_recipe("tiny_layout_prior", ['data.source="faces"']), tmp_path / "r2",
              device="cpu")


# --------------------------------------------------------------------------- the scene job


@pytest.fixture()
def models(easel_home):
    found = install(easel_home)
    found[LAYOUT_NAME] = install_layout_prior(easel_home)
    return found


def run(spec):
    return run_job(spec, Context.for_spec(spec, "cpu"))


def test_scene_job_with_a_layout_prior_draws_each_candidates_layout(models):
    spec = SceneSpec(prompt=README_PROMPT, model=LAYOUT_NAME, n=3, seed=4)
    result = run(spec)
    info = result.info
    assert len(result.images) == 3 and result.images[0].shape == (16, 16, 3)
    assert len(info["layouts"]) == 3 and info["layout"] == info["layouts"][0]
    assert len(info["codes"][0]) == 16
    for d in info["layouts"]:
        assert checked(README_PROMPT, parse_layout_json(json.dumps(d)))
    again = run(spec)
    assert all(np.array_equal(x, y) for x, y in zip(result.images, again.images, strict=True))
    assert again.info["layouts"] == info["layouts"]
    json.dumps(info["layouts"])


def test_redraw_from_a_layout_draws_that_layout_for_every_candidate(models):
    layout = layout_json(parse_layout_json(json.dumps(
        {"background": "white", "objects": [_obj(), _obj(shape="heart", box=[0.6, 0.5, 0.9,
                                                                              0.8])]})))
    spec = SceneSpec(prompt="", layout=layout, model=LAYOUT_NAME, n=2, seed=4)
    result = run(spec)
    assert [json.dumps(d) for d in result.info["layouts"]] == \
           [json.dumps(layout_to_dict(parse_layout_json(layout)))] * 2
    assert result.info["reading"].startswith("the layout: a small red star and")
    restored = SceneSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert restored.layout == layout  # the layout travels with the spec (PNG metadata)


def test_scene_job_with_a_layout_prior_refuses_what_it_cannot_draw(models):
    with pytest.raises(JobError, match="Cannot lay out .*a scene holds at most 3"):
        run(SceneSpec(prompt="two red stars and two blue circles", model=LAYOUT_NAME))
    with pytest.raises(JobError, match="does not know the word"):
        run(SceneSpec(prompt="a zebra", model=LAYOUT_NAME))
    with pytest.raises(JobError, match="The layout cannot be drawn: the layout is not valid"):
        run(SceneSpec(prompt="", layout="{", model=LAYOUT_NAME))
    with pytest.raises(JobError, match="Type a prompt"):
        run(SceneSpec(prompt=" ", model=LAYOUT_NAME))
    with pytest.raises(JobError, match="draws from prompts only"):
        run(SceneSpec(prompt="a star", layout=layout_json(plan_layout("a star", 0)),
                      model=CAPTION_PRIOR))
    with pytest.raises(JobError, match="at most 8192"):
        SceneSpec(prompt="a star", layout="x" * 9000)


def test_layout_prior_of_another_token_format_is_refused(models):
    from core.weights import save_model

    path = models[LAYOUT_NAME]
    card = read_card(path)
    config = {**card.config, "layout_len": LAYOUT_LEN + 7}
    save_model(path.parent, LAYOUT_NAME, LayoutPrior(LayoutPriorConfig(**config)).eval(),
               dataclasses.replace(card, config=config))
    with pytest.raises(JobError, match="reads layouts of 30 tokens"):
        run(SceneSpec(prompt="a star", model=LAYOUT_NAME))


def test_region_edit_and_batches_work_with_a_layout_prior(models):
    first = run(SceneSpec(prompt="a red star", model=LAYOUT_NAME, n=1, seed=1))
    picture = np.kron(first.images[0], np.ones((4, 4, 1), np.uint8))
    from core.jobs import ImageRef

    edit = run(SceneEditSpec(prompt="a red star", model=LAYOUT_NAME, n=2, seed=2,
                             image=ImageRef.of(picture), box=(0.0, 0.0, 0.5, 0.5),
                             codes=tuple(first.info["codes"][0]),
                             layout=layout_json(parse_layout_json(json.dumps(
                                 first.info["layout"])))))
    assert edit.images[0].shape == picture.shape and edit.info["layout"] == first.info["layout"]
    spec = SceneSpec(prompt="", model=LAYOUT_NAME, upscale=False)
    scene_models = load_models(spec, Context.for_spec(spec, "cpu"))
    drawn = draw_batch(scene_models, ["a red star", README_PROMPT], 2,
                       torch.Generator().manual_seed(0))
    assert drawn["first"].shape == (2, 16, 16, 3) and drawn["scores"].shape == (2, 2)
    assert checked(README_PROMPT, drawn["layouts"][1][1])


def test_batches_draw_nothing_for_refused_prompts_and_count_them_as_failures(models, tmp_path):
    from shipped_weights import copy_judges

    from core.data.captions import render_layout
    from core.evaluation import scene as scene_eval
    from core.evaluation.geneval import checked_judge

    spec = SceneSpec(prompt="", model=LAYOUT_NAME, upscale=False)
    scene_models = load_models(spec, Context.for_spec(spec, "cpu"))
    texts = ["a red star", "four red stars", README_PROMPT]
    with pytest.raises(JobError, match="\"four\" asks for more objects"):
        draw_batch(scene_models, texts, 2, torch.Generator().manual_seed(0))
    drawn = draw_batch(scene_models, texts, 2, torch.Generator().manual_seed(0),
                       keep_going=True)
    assert list(drawn["refused"]) == [1] and "at most 3" in drawn["refused"][1]
    assert not drawn["first"][1].any() and not drawn["best"][1].any()
    assert np.isnan(drawn["scores"][1]).all() and drawn["layouts"][1] is None
    # The other prompts are drawn exactly as without the refused one.
    alone = draw_batch(scene_models, [texts[0], texts[2]], 2, torch.Generator().manual_seed(0))
    assert alone["refused"] == {} and np.array_equal(alone["first"], drawn["first"][[0, 2]])
    assert np.array_equal(alone["scores"], drawn["scores"][[0, 2]])
    # The judge reads a refused prompt as nothing drawn, whatever its picture shows.
    copy_judges(tmp_path / "shipped")
    judge = checked_judge("scenes")
    star = render_layout(plan_layout("a red star on a black background", 0), 64, 0).image
    both = {"first": np.stack([star, star]), "refused": {}}
    prompts = ["a red star", "a red star"]
    assert scene_eval.faithfulness(prompts, scene_eval.judged(judge, both, "first")) == 1.0
    both["refused"] = {1: "refused"}
    assert scene_eval.faithfulness(prompts, scene_eval.judged(judge, both, "first")) == 0.5


def test_the_catalog_lists_layout_priors_with_the_worlds_words(models):
    from core.catalog import scene_priors

    found = {p["name"]: p for p in scene_priors()}
    assert found[LAYOUT_NAME]["layout"] is True and "star" in found[LAYOUT_NAME]["vocab"]
    assert found["prior_scenes"]["layout"] is False
