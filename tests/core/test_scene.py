"""Scene models, the scene pipeline and ``easel scene`` on tiny random-weight models."""

from __future__ import annotations

import json
import random
import shutil
import threading

import numpy as np
import pytest
import torch
from scene_models import VQ_NAME, install
from shipped_weights import copy_judges

from core import cli, imageio
from core.data.captions import mutate_prompt, pairs_in, parse_pairs, parse_prompt, sample_scene
from core.jobs import Cancelled, Context, ImageRef, JobError, run_job
from core.nets.prior import PriorConfig, ScenePrior
from core.nets.text import PAD, UNK, KVCache, Tokenizer, build_vocab
from core.nets.vqvae import VQVAE, VQVAEConfig
from core.pipelines.scene import (
    DEFAULT_RERANKER,
    SceneEditSpec,
    SceneSpec,
    read_prompt,
    region_cells,
)
from core.sampling.prior import filter_logits, sample_codes
from core.specs.scene import CAPTION_PRIOR
from core.training.recipe import load_recipe
from core.training.trainer import train
from core.weights import load_model, read_card


@pytest.fixture()
def models(tmp_path, monkeypatch):
    monkeypatch.setenv("EASEL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("EASEL_WEIGHTS", str(tmp_path / "shipped"))
    return install(tmp_path / "home")


def run(spec, progress=None, cancel=None):
    ctx = Context.for_spec(spec, "cpu", cancel_event=cancel)
    return run_job(spec, ctx, progress.append if progress is not None else None)


def tiny_prior() -> ScenePrior:
    torch.manual_seed(0)
    return ScenePrior(PriorConfig(vocab=["a", "red", "star"], text_len=6, grid=3,
                                  codebook_size=11, width=16, layers=2, heads=2)).eval()


# --------------------------------------------------------------------------- nets


def test_tokenizer_pads_marks_unknown_and_cuts_long_text():
    tok = Tokenizer(build_vocab(["a red star", "a blue star", "a red circle"]))
    assert tok.vocab[:2] == ["a", "red"] or tok.vocab[:2] == ["a", "star"]  # most frequent first
    enc = tok.encode("A red, zebra star!", 6)
    assert enc.ids[:4] == [tok.index["a"], tok.index["red"], UNK, tok.index["star"]]
    assert enc.ids[4:] == [PAD, PAD] and enc.unknown == ("zebra",)
    assert tok.encode("a red star a red star", 4).dropped == ("red", "star")


def test_vqvae_round_trip_shapes_and_ema_restarts_dead_codes():
    cfg = VQVAEConfig(image_size=16, base=8, downsample=4, res_blocks=1, codebook_size=8,
                      code_dim=4)
    vq = VQVAE(cfg)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    recon, z, codes = vq(x)
    assert recon.shape == x.shape and codes.shape == (2, 4, 4) and z.shape == (2, 4, 4, 4)
    assert torch.equal(vq.encode(x), codes)
    assert vq.decode(codes).shape == x.shape
    # First update: every code is unused so far, so every code restarts on a batch vector.
    restarted = vq.quantizer.update(z, codes, torch.Generator().manual_seed(0), 0.5)
    assert restarted == 8
    flat = z.detach().permute(0, 2, 3, 1).reshape(-1, 4)
    for code in vq.quantizer.codebook:
        assert (flat - code).abs().sum(1).min() < 1e-6


def test_kv_cache_sampling_matches_the_full_forward_pass():
    prior = tiny_prior()
    text = torch.tensor([[2, 3, 4, 0, 0, 0], [2, 0, 0, 0, 0, 0]])
    codes = torch.randint(0, 11, (2, 9))
    full = prior(text, codes)
    caches = [KVCache() for _ in prior.blocks]
    step = [prior.start(text, caches)]
    for i in range(8):
        step.append(prior.step(codes[:, i:i + 1], caches))
    assert torch.allclose(torch.stack(step, 1), full, atol=1e-5)
    # Feeding several known codes at once (region editing) gives the same logits too.
    caches = [KVCache() for _ in prior.blocks]
    prior.start(text, caches)
    assert torch.allclose(prior.step(codes[:, :5], caches), full[:, 5], atol=1e-5)


def test_filter_logits_keeps_top_k_and_the_nucleus():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.isinf(filter_logits(logits, top_k=2)[0, 2:]).all()
    kept = ~torch.isinf(filter_logits(logits, top_p=0.7))
    assert kept.tolist() == [[True, True, False, False]]
    assert torch.equal(filter_logits(logits), logits)


def test_sampling_is_seeded_and_keeps_known_codes():
    prior = tiny_prior()
    text = torch.tensor([[2, 3, 4, 0, 0, 0]] * 3)
    a = sample_codes(prior, text, torch.Generator().manual_seed(1), top_k=5, guidance=2.0)
    b = sample_codes(prior, text, torch.Generator().manual_seed(1), top_k=5, guidance=2.0)
    assert torch.equal(a, b) and a.shape == (3, 9) and int(a.max()) < 11
    known = torch.full((3, 9), -1)
    known[:, ::2] = 7
    c = sample_codes(prior, text, torch.Generator().manual_seed(2), known=known)
    assert (c[:, ::2] == 7).all()


def test_caption_vocab_reads_a_folders_captions_and_refuses_none(tmp_path):
    from PIL import Image

    from core.training.data import caption_vocab, training_captions
    from core.training.recipe import DataSection, RecipeError

    for i, caption in enumerate(["a red boat", "two red kites", None]):
        Image.new("RGB", (20, 12), (i * 60, 90, 30)).save(tmp_path / f"p{i}.png")
        if caption:
            (tmp_path / f"p{i}.txt").write_text(caption)
    assert training_captions(str(tmp_path), 16, 10) == ["a red boat", "two red kites"]
    assert caption_vocab(DataSection(source=str(tmp_path), size=16), 10, "x")[0] == "red"
    for f in tmp_path.glob("*.txt"):
        f.unlink()
    with pytest.raises(RecipeError, match="no captions: the reranker learns"):
        caption_vocab(DataSection(source=str(tmp_path), size=16), 10, "the reranker")


def test_mutated_prompts_change_what_is_asked_and_pairs_are_found():
    rng = random.Random(0)
    for seed in range(60):
        caption = sample_scene(seed).caption
        prompt = parse_prompt(caption)
        wrong = mutate_prompt(prompt, rng)
        assert wrong is not None and wrong.key() != prompt.key(), caption
    assert pairs_in("a green triangle left of a red star") == {("green", "triangle"),
                                                               ("red", "star")}
    assert ("purple", "star") in pairs_in("a star", {"objects": [{"shape": "star",
                                                                   "colour": "purple"}]})
    with pytest.raises(ValueError, match="colour shape"):
        parse_pairs(["triangle green"])


# --------------------------------------------------------------------------- prompt reading


def test_read_prompt_ignores_unknown_words_with_suggestions_and_cuts_long_prompts():
    tok = Tokenizer(["a", "red", "star", "circle", "left", "of", "blue"])
    r = read_prompt("a red strar left of a bleu circle", tok, 12)
    assert r.text == "a red left of a circle"
    assert r.unknown == ("strar", "bleu")
    assert "star" in r.suggestions["strar"] and "blue" in r.suggestions["bleu"]
    assert any("did you mean star" in n for n in r.notices)
    long = read_prompt("a red star " * 10, tok, 5)
    assert long.text == "a red star a red" and any("longer" in n for n in long.notices)
    for bad, message in (("   ", "Type a prompt"), ("zebra quokka", "None of the words")):
        with pytest.raises(JobError, match=message):
            read_prompt(bad, tok, 5)


def test_contradictory_prompt_is_generated_with_the_checker_reading(models, tmp_path):
    # The caption prior draws what it can read; the layout stage refuses (test_layouts.py).
    result = run(SceneSpec(prompt="a red blue star", n=2, seed=0, model=CAPTION_PRIOR))
    assert result.info["reading"] == "a blue star"
    assert len(result.images) == 2 and result.info["checks"] is None  # no judge installed
    copy_judges(tmp_path / "shipped")
    checks = run(SceneSpec(prompt="a red blue star", n=2, seed=0,
                           model=CAPTION_PRIOR)).info["checks"]
    assert len(checks) == 2 and all(c.startswith(("satisfied", "not satisfied")) for c in checks)


# --------------------------------------------------------------------------- pipeline


def test_scene_job_ranks_candidates_and_is_reproducible(models):
    spec = SceneSpec(prompt="a red star to the left of a blue circle", n=4, seed=3,
                     guidance=2.0, top_p=0.9)
    events: list = []
    a = run(spec, events)
    scores = a.info["scores"]
    assert len(a.images) == 4 and scores == sorted(scores, reverse=True)
    assert len(a.info["codes"]) == 4 and len(a.info["codes"][0]) == 16
    assert a.images[0].shape == (16, 16, 3)  # no scenes upscaler installed: not upscaled
    assert any("Not upscaled" in n for n in a.info["notices"])
    assert sum("Drawing code" in e.message for e in events) == 16  # progress per code
    b = run(spec)
    assert all(np.array_equal(x, y) for x, y in zip(a.images, b.images, strict=True))
    json.dumps(a.spec.to_dict())


def test_scene_job_cancels_between_codes(models):
    cancel = threading.Event()
    spec = SceneSpec(prompt="a red star", n=2)

    def on_progress(p):
        if "Drawing code 3" in p.message:
            cancel.set()

    with pytest.raises(Cancelled):
        run_job(spec, Context.for_spec(spec, "cpu", cancel_event=cancel), on_progress)


def test_missing_reranker_is_a_note_and_keeps_sampling_order(models):
    models["rerank_scenes"].unlink()
    result = run(SceneSpec(prompt="a star", n=3))
    assert result.info["order"] == [0, 1, 2] and result.info["scores"] == [None] * 3
    assert any("Not reranked" in n for n in result.info["notices"])


def test_prior_refuses_another_vqvae_than_it_was_trained_on(models):
    vq = load_model(models[VQ_NAME])
    with torch.no_grad():
        vq.quantizer.codebook.add_(1)
    from core.weights import save_model

    save_model(models[VQ_NAME].parent, VQ_NAME, vq, read_card(models[VQ_NAME]))
    with pytest.raises(JobError, match="trained on the codes of another"):
        run(SceneSpec(prompt="a star", n=1))


def test_unknown_model_names_what_is_installed(models):
    with pytest.raises(JobError, match="installed: layout_prior_scenes, prior_scenes"):
        run(SceneSpec(prompt="a star", model="nope"))
    with pytest.raises(JobError, match="is a vqvae model, not a scene prior"):
        run(SceneSpec(prompt="a star", model=str(models[VQ_NAME])))
    with pytest.raises(JobError, match="No scene model file at"):
        run(SceneSpec(prompt="a star", model="/nowhere/prior.safetensors"))


@pytest.mark.parametrize("bad, message", [
    ({"n": 0}, "1 to 32"), ({"temperature": 0.0}, "temperature"), ({"top_p": 0.0}, "top-p"),
    ({"top_k": -1}, "top-k"), ({"guidance": 50.0}, "guidance")])
def test_spec_validation(bad, message):
    with pytest.raises(JobError, match=message):
        SceneSpec(prompt="a star", **bad)


def test_region_cells_cover_the_rectangle():
    cells = region_cells((0.5, 0.0, 1.0, 0.5), 4)
    assert cells.tolist() == [[False, False, True, True]] * 2 + [[False] * 4] * 2
    assert region_cells((0.51, 0.51, 0.52, 0.52), 4).sum() == 1  # a tiny box: its cell


def test_region_edit_resamples_only_the_codes_and_pixels_in_the_box(models):
    first = run(SceneSpec(prompt="a red star", n=1, seed=1))
    picture = np.kron(first.images[0], np.ones((4, 4, 1), np.uint8))  # as a 64 px canvas
    codes = first.info["codes"][0]
    spec = SceneEditSpec(prompt="a blue heart", n=4, seed=2, image=ImageRef.of(picture),
                         box=(0.0, 0.0, 0.5, 0.5), codes=tuple(codes))
    edit = run(spec)
    cells = region_cells(spec.box, 4).flatten()
    assert len(edit.images) == 2  # the better-fitting half of the 4 candidates
    for out, new_codes in zip(edit.images, edit.info["codes"], strict=True):
        assert out.shape == picture.shape
        assert [c for c, m in zip(new_codes, cells, strict=True) if not m] == \
               [c for c, m in zip(codes, cells, strict=True) if not m]
        # Outside the rectangle's cells and their feathered seam, not one pixel changes.
        assert np.array_equal(out[40:, :], picture[40:, :])
        assert np.array_equal(out[:, 40:], picture[:, 40:])
    with pytest.raises(JobError, match="codes do not fit"):
        run(SceneEditSpec(prompt="a star", image=ImageRef.of(picture), box=(0, 0, 1, 1),
                          codes=(1, 2, 3)))
    with pytest.raises(JobError, match="Select a rectangle"):
        SceneEditSpec(prompt="a star", image=ImageRef.of(picture))


def test_region_edit_encodes_a_picture_without_codes(models):
    picture = np.full((40, 30, 3), 128, np.uint8)  # any picture, any size
    edit = run(SceneEditSpec(prompt="a star", n=2, image=ImageRef.of(picture),
                             box=(0.25, 0.25, 0.75, 0.75)))
    assert edit.images[0].shape == (40, 30, 3)


# --------------------------------------------------------------------------- training, eval


def test_tiny_recipes_train_the_three_scene_families_and_evaluate(tmp_path, monkeypatch):
    monkeypatch.setenv("EASEL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("EASEL_WEIGHTS", str(tmp_path / "shipped"))
    from core import paths
    from core.evaluation import scene as scene_eval
    from core.evaluation.evaluate import evaluate

    copy_judges(tmp_path / "shipped")  # FJD and GenEval read with the judge
    models = paths.models_dir()
    vq = train(load_recipe("tiny_vqvae"), tmp_path / "vq", device="cpu",
               weights_dir=models / "vqvae")
    assert "g" in vq.last_losses and vq.last_losses["restarts"] >= 0  # adversarial from step 3
    prior = train(load_recipe("tiny_prior"), tmp_path / "prior", device="cpu",
                  weights_dir=models / "prior")
    card = read_card(prior.weights)
    assert card.config["vqvae"] == "tiny_vqvae" and card.config["grid"] == 4
    assert "triangle" in card.config["vocab"] and prior.last_losses["kept"] <= 8
    rr = train(load_recipe("tiny_reranker"), tmp_path / "rr", device="cpu",
               weights_dir=models / "reranker")
    assert np.isfinite(rr.last_losses["loss"])

    assert set(evaluate(vq.weights, n=4)["metrics"]) >= {"recon_psnr", "codebook_perplexity"}
    assert set(evaluate(rr.weights, n=4)["metrics"]) == {"beats_wrong_caption", "top1_of_100"}
    monkeypatch.setattr(scene_eval, "GENEVAL_PER_CATEGORY", 1)
    monkeypatch.setattr(scene_eval, "COMPOSITIONAL_PROMPTS", 2)
    # The prior's evaluation reranks with the installed reranker of the default name.
    for suffix in (".safetensors", ".json"):
        shutil.move(models / "reranker" / f"tiny_reranker{suffix}",
                    models / "reranker" / f"{DEFAULT_RERANKER}{suffix}")
    metrics = evaluate(prior.weights, n=4)["metrics"]
    assert set(metrics["geneval_n8"]) >= {"position", "colour_attribution", "overall"}
    assert metrics["compositional_held_out"]["pairs"] == ["green triangle"]
    assert metrics["bits_per_code"] > 0 and metrics["refused_prompts"] == 0


# --------------------------------------------------------------------------- CLI


def test_cli_writes_ranked_pngs_with_codes_and_edits_them(models, tmp_path, capsys):
    out = tmp_path / "scene.png"
    assert cli.main(["scene", "a red strar", "-o", str(out), "--n", "3", "--all",
                     "--seed", "4", "--model", CAPTION_PRIOR]) == 0
    text = capsys.readouterr().out
    assert "did you mean star" in text and "Read as: " in text
    meta = imageio.read_metadata(out)
    assert meta["spec"]["kind"] == "scene" and len(meta["codes"]) == 16
    assert (tmp_path / "scene-3.png").is_file()
    moved = tmp_path / "moved.png"
    out.rename(moved)  # OUT is free, OUT-2 is not: refused before anything is drawn
    assert cli.main(["scene", "a red star", "-o", str(out), "--n", "3", "--all"]) == 2
    assert "scene-2.png already exists" in capsys.readouterr().err and not out.exists()
    moved.rename(out)
    assert cli.main(["rerun", str(out), "-o", str(tmp_path / "again.png")]) == 0
    assert np.array_equal(imageio.load_image(out).rgb,
                          imageio.load_image(tmp_path / "again.png").rgb)
    capsys.readouterr()
    edited = tmp_path / "edit.png"
    assert cli.main(["scene", "a blue heart", "--edit", str(out), "--box", "0,0,0.5,0.5",
                     "-o", str(edited), "--json", "--n", "2"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["spec"]["kind"] == "scene_edit" and report["spec"]["codes"] == meta["codes"]
    assert cli.main(["scene", "   ", "-o", str(tmp_path / "x.png")]) == 2
    assert "Type a prompt" in capsys.readouterr().err
    assert cli.main(["scene", "a star", "--box", "0,0,1,1", "-o", str(tmp_path / "y.png")]) == 2
