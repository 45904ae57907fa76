"""Stable Diffusion layouts for tests: tiny random-weight models and full-size key layouts.

``tiny(kind)`` builds an SD-shaped UNet, VAE and CLIP text encoder (four levels, two layers a
level, as every SD 1.x/2.x checkpoint has) with a few channels each. ``save_folder`` writes
them as a diffusers folder; ``to_ldm`` writes the same weights in the original
(CompVis/Stability) single-file key layout. The mapping here is written from the original
code's module names (ldm/modules/diffusionmodules/openaimodel.py and model.py, open_clip), not
taken from diffusers, so a wrong mapping on either side makes the two loads differ.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from core.thirdparty.sd import offline

offline()  # quiet and offline before diffusers and transformers are first imported

KINDS = ("v1", "v2", "inpainting")

# Per test kind: the text encoder layout and the UNet's input channels.
TINY_UNET = {
    "block_out_channels": [8, 8, 16, 16], "layers_per_block": 2, "norm_num_groups": 4,
    "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
    "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
    "cross_attention_dim": 16, "sample_size": 8, "in_channels": 4, "out_channels": 4,
}
TINY_VAE = {
    "block_out_channels": [8, 8, 16, 16], "layers_per_block": 2, "norm_num_groups": 4,
    "down_block_types": ["DownEncoderBlock2D"] * 4, "up_block_types": ["UpDecoderBlock2D"] * 4,
    "latent_channels": 4, "in_channels": 3, "out_channels": 3, "sample_size": 64,
    "scaling_factor": 0.18215,
}
TINY_TEXT = {"hidden_size": 16, "intermediate_size": 32, "num_attention_heads": 2,
             "num_hidden_layers": 2, "max_position_embeddings": 77, "vocab_size": 49408,
             "projection_dim": 16, "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1}
SCHEDULER = {"_class_name": "DDIMScheduler", "beta_start": 0.00085, "beta_end": 0.012,
             "beta_schedule": "scaled_linear", "num_train_timesteps": 1000,
             "clip_sample": False, "set_alpha_to_one": False, "steps_offset": 1,
             "prediction_type": "epsilon", "timestep_spacing": "leading"}


def unet_config(kind: str, full: bool = False) -> dict:
    if full:
        base = {"block_out_channels": [320, 640, 1280, 1280], "layers_per_block": 2,
                "norm_num_groups": 32, "down_block_types": TINY_UNET["down_block_types"],
                "up_block_types": TINY_UNET["up_block_types"], "sample_size": 64,
                "in_channels": 4, "out_channels": 4,
                "cross_attention_dim": 1024 if kind.endswith("v2") else 768,
                "attention_head_dim": [5, 10, 20, 20] if kind.endswith("v2") else 8}
    else:
        base = dict(TINY_UNET, attention_head_dim=[2, 2, 4, 4] if kind == "v2" else 2)
    if kind in ("v2", "inpainting_v2"):
        base["use_linear_projection"] = True
    if kind.startswith("inpainting"):
        base["in_channels"] = 9
    return base


def vae_config(full: bool = False) -> dict:
    if not full:
        return dict(TINY_VAE)
    return dict(TINY_VAE, block_out_channels=[128, 256, 512, 512], norm_num_groups=32,
                sample_size=512)


def text_config(kind: str, full: bool = False) -> dict:
    if not full:
        return dict(TINY_TEXT, hidden_act="gelu" if kind == "v2" else "quick_gelu")
    if kind.endswith("v2"):
        return dict(TINY_TEXT, hidden_size=1024, intermediate_size=4096, num_attention_heads=16,
                    num_hidden_layers=23, projection_dim=512, hidden_act="gelu")
    return dict(TINY_TEXT, hidden_size=768, intermediate_size=3072, num_attention_heads=12,
                num_hidden_layers=12, projection_dim=768, hidden_act="quick_gelu")


def tiny(kind: str = "v1", seed: int = 0) -> dict:
    """The UNet, VAE and text encoder of a tiny SD of ``kind`` (random weights, eval mode)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(**unet_config(kind))
    vae = AutoencoderKL(**vae_config())
    text = CLIPTextModel(CLIPTextConfig(**text_config(kind)))
    with torch.no_grad():  # random norms and biases, so a mix-up of any two tensors shows
        for model in (unet, vae, text):
            for p in model.parameters():
                if p.ndim == 1:
                    p.add_(torch.randn_like(p) * 0.1)
    return {"unet": unet.eval(), "vae": vae.eval(), "text_encoder": text.eval()}


def save_folder(models: dict, folder: Path, kind: str = "v1", weights: bool = True) -> Path:
    """A diffusers folder of ``models`` (``weights=False``: the JSON configs alone, as Easel
    ships them)."""
    from core.thirdparty.sd.tokenizer import clip_tokenizer

    folder.mkdir(parents=True, exist_ok=True)
    index = {"_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.42.1",
             "unet": ["diffusers", "UNet2DConditionModel"],
             "vae": ["diffusers", "AutoencoderKL"],
             "text_encoder": ["transformers", "CLIPTextModel"],
             "tokenizer": ["transformers", "CLIPTokenizer"],
             "scheduler": ["diffusers", "DDIMScheduler"],
             "safety_checker": [None, None], "feature_extractor": [None, None],
             "requires_safety_checker": False}
    (folder / "model_index.json").write_text(json.dumps(index, indent=1))
    for name in ("unet", "vae", "text_encoder"):
        if weights:
            models[name].save_pretrained(folder / name)
        else:
            (folder / name).mkdir(exist_ok=True)
            config = dict(models[name].config) if name != "text_encoder" else \
                models[name].config.to_dict()
            (folder / name / "config.json").write_text(json.dumps(config, indent=1))
    (folder / "scheduler").mkdir(exist_ok=True)
    (folder / "scheduler" / "scheduler_config.json").write_text(json.dumps(SCHEDULER))
    pad = "!" if kind.endswith("v2") else "<|endoftext|>"
    (folder / "tokenizer").mkdir(exist_ok=True)
    if weights:
        clip_tokenizer(pad_token=pad).save_pretrained(folder / "tokenizer")
    else:
        (folder / "tokenizer" / "tokenizer_config.json").write_text(json.dumps(
            {"pad_token": pad, "model_max_length": 77}))
    return folder


def importable_folder(folder: Path) -> Path:
    """A diffusers folder of a tiny SD 1.x that ``easel models import`` takes as one (its text
    width is SD 1.x's 768; two layers, random weights, about 170 MB): installer/build_linux.sh
    runs a job with it in the built bundle."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    text = dict(text_config("v1"), hidden_size=768, num_attention_heads=2)
    models = {"unet": UNet2DConditionModel(**dict(unet_config("v1"), cross_attention_dim=768)),
              "vae": AutoencoderKL(**vae_config()),
              "text_encoder": CLIPTextModel(CLIPTextConfig(**text))}
    return save_folder({k: m.eval() for k, m in models.items()}, folder)


# --------------------------------------------------------------------------- original layout


def _unet_names(levels: int = 4, layers: int = 2) -> dict[str, str]:
    """diffusers module prefix -> original (openaimodel.py) module prefix, for the UNet."""
    m = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
         "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2",
         "mid_block.resnets.0": "middle_block.0", "mid_block.attentions.0": "middle_block.1",
         "mid_block.resnets.1": "middle_block.2"}
    for i in range(levels):
        for j in range(layers):
            block = 1 + i * (layers + 1) + j
            m[f"down_blocks.{i}.resnets.{j}"] = f"input_blocks.{block}.0"
            if i < levels - 1:
                m[f"down_blocks.{i}.attentions.{j}"] = f"input_blocks.{block}.1"
        if i < levels - 1:
            m[f"down_blocks.{i}.downsamplers.0.conv"] = \
                f"input_blocks.{(i + 1) * (layers + 1)}.0.op"
        for j in range(layers + 1):
            block = i * (layers + 1) + j
            m[f"up_blocks.{i}.resnets.{j}"] = f"output_blocks.{block}.0"
            if i > 0:
                m[f"up_blocks.{i}.attentions.{j}"] = f"output_blocks.{block}.1"
        if i < levels - 1:
            last = i * (layers + 1) + layers
            up = f"output_blocks.{last}.{1 if i == 0 else 2}.conv"  # after the attention
            m[f"up_blocks.{i}.upsamplers.0.conv"] = up
    return m


UNET_RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "norm2": "out_layers.0",
               "conv2": "out_layers.3", "time_emb_proj": "emb_layers.1",
               "conv_shortcut": "skip_connection"}


def _vae_names(levels: int = 4, layers: int = 2) -> dict[str, str]:
    """diffusers module prefix -> original (ldm model.py Encoder/Decoder) module prefix."""
    m = {"encoder.conv_norm_out": "encoder.norm_out", "decoder.conv_norm_out": "decoder.norm_out"}
    for part in ("encoder", "decoder"):
        m[f"{part}.mid_block.resnets.0"] = f"{part}.mid.block_1"
        m[f"{part}.mid_block.resnets.1"] = f"{part}.mid.block_2"
        m[f"{part}.mid_block.attentions.0"] = f"{part}.mid.attn_1"
    for i in range(levels):
        for j in range(layers):
            m[f"encoder.down_blocks.{i}.resnets.{j}"] = f"encoder.down.{i}.block.{j}"
        if i < levels - 1:
            m[f"encoder.down_blocks.{i}.downsamplers.0.conv"] = f"encoder.down.{i}.downsample.conv"
        up = levels - 1 - i  # the original numbers its decoder levels from the bottom
        for j in range(layers + 1):
            m[f"decoder.up_blocks.{i}.resnets.{j}"] = f"decoder.up.{up}.block.{j}"
        if i < levels - 1:
            m[f"decoder.up_blocks.{i}.upsamplers.0.conv"] = f"decoder.up.{up}.upsample.conv"
    return m


VAE_INNER = {"conv_shortcut": "nin_shortcut", "group_norm": "norm", "to_q": "q", "to_k": "k",
             "to_v": "v", "to_out.0": "proj_out"}


def _rename(key: str, modules: dict[str, str], inner: dict[str, str]) -> str:
    """``key`` with its longest matching module prefix and then its inner names mapped."""
    prefix = max((p for p in modules if key.startswith(p + ".")), key=len, default=None)
    if prefix is None:
        return key
    rest = key[len(prefix) + 1:]
    head = max((p for p in inner if rest.startswith(p + ".")), key=len, default=None)
    if head is not None:
        rest = inner[head] + rest[len(head):]
    return modules[prefix] + "." + rest


def unet_to_ldm(state: dict) -> dict:
    names = _unet_names()
    return {"model.diffusion_model." + _rename(k, names, UNET_RESNET): v
            for k, v in state.items()}


def vae_to_ldm(state: dict) -> dict:
    names = _vae_names()
    out = {}
    for k, v in state.items():
        new = _rename(k, names, VAE_INNER)
        if ".mid.attn_1." in new and new.endswith("weight") and v.ndim == 2:
            v = v[:, :, None, None]  # the original attention uses 1x1 convolutions
        out["first_stage_model." + new] = v
    return out


def clip_to_ldm(state: dict) -> dict:
    """OpenAI CLIP text encoder (SD 1.x): the transformers layout under a prefix."""
    return {"cond_stage_model.transformer.text_model." + k.removeprefix("text_model."): v
            for k, v in state.items() if not k.endswith("position_ids")}


def open_clip_to_ldm(state: dict, layers: int) -> dict:
    """OpenCLIP text encoder (SD 2.x): one fused q/k/v matrix a layer, MLP c_fc/c_proj, and
    one more layer than SD uses (SD 2.x takes the penultimate layer's output)."""
    s = {k.removeprefix("text_model."): v for k, v in state.items()}
    p = "cond_stage_model.model."
    width = s["embeddings.token_embedding.weight"].shape[1]
    out = {p + "token_embedding.weight": s["embeddings.token_embedding.weight"],
           p + "positional_embedding": s["embeddings.position_embedding.weight"],
           p + "ln_final.weight": s["final_layer_norm.weight"],
           p + "ln_final.bias": s["final_layer_norm.bias"],
           p + "text_projection": torch.randn(width, width, dtype=s["final_layer_norm.weight"]
                                              .dtype)}
    for i in range(layers + 1):  # the extra last layer: a copy of the one before
        src = f"encoder.layers.{min(i, layers - 1)}."
        dst = f"{p}transformer.resblocks.{i}."
        out[dst + "attn.in_proj_weight"] = torch.cat(
            [s[src + f"self_attn.{x}_proj.weight"] for x in "qkv"])
        out[dst + "attn.in_proj_bias"] = torch.cat(
            [s[src + f"self_attn.{x}_proj.bias"] for x in "qkv"])
        for a, b in (("self_attn.out_proj", "attn.out_proj"), ("layer_norm1", "ln_1"),
                     ("layer_norm2", "ln_2"), ("mlp.fc1", "mlp.c_fc"),
                     ("mlp.fc2", "mlp.c_proj")):
            for t in ("weight", "bias"):
                out[dst + f"{b}.{t}"] = s[src + f"{a}.{t}"].clone()
    return out


def to_ldm(models: dict, kind: str = "v1") -> dict[str, torch.Tensor]:
    """One state dict in the original single-file layout (as users' .safetensors have)."""
    text = models["text_encoder"]
    state = {**unet_to_ldm(models["unet"].state_dict()),
             **vae_to_ldm(models["vae"].state_dict())}
    if kind.endswith("v2"):
        state.update(open_clip_to_ldm(text.state_dict(), text.config.num_hidden_layers))
    else:
        state.update(clip_to_ldm(text.state_dict()))
    return {k: v.detach().contiguous() for k, v in state.items()}


def save_single_file(models: dict, path: Path, kind: str = "v1") -> Path:
    from safetensors.torch import save_file

    save_file(to_ldm(models, kind), str(path))
    return path


def meta_layout(kind: str) -> dict[str, torch.Tensor]:
    """A full-size checkpoint's keys and shapes (tensors on the meta device: no memory) for
    ``kind`` v1, v2 (768 or base), inpainting, inpainting_v2, or xl (SDXL-like extras)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    base = "v1" if kind == "xl" else kind
    with torch.device("meta"):
        models = {"unet": UNet2DConditionModel(**unet_config(base, full=True)),
                  "vae": AutoencoderKL(**vae_config(full=True)),
                  "text_encoder": CLIPTextModel(CLIPTextConfig(**text_config(base, full=True)))}
        state = to_ldm(models, base)
        if kind == "xl":
            state["conditioner.embedders.1.model.transformer.resblocks.9.mlp.c_proj.bias"] = \
                torch.empty(1280)
    return state
