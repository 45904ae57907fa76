"""The installed models each panel lists, from their model cards alone.

No weights are read and torch is not imported: the desktop panels fill their model pickers on
the GUI thread while the window is built, and torch loads in the inference worker at the
first job. Shipped models come first, then the user's (core.cards.list_models).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.cards import ModelCard, list_models
from core.specs.inpaint import DIFFUSION_FAMILY, LAMA_FAMILY
from core.specs.judge import FAMILY as JUDGE_FAMILY
from core.specs.judge import layer_names
from core.specs.latent import FAMILIES as LATENT_FAMILIES
from core.specs.scene import PRIOR_FAMILIES
from core.specs.sd import SD_FAMILY
from core.specs.style import FAMILY as FAST_STYLE_FAMILY
from core.specs.style import ONE_PASS_FAMILY
from core.specs.upscale import ARCHITECTURES as UPSCALERS
from core.specs.upscale import FAMILY as UPSCALE_FAMILY


def diffusion_models() -> list[dict[str, Any]]:
    """Every usable diffusion model (the Inpaint panel's): name, source, the data it was
    trained on, and the attributes that can be asked of its fills ("smiling=smiling"; only
    for a world's models)."""
    return [{"name": m.name, "source": m.source, "data": data_of(m.card.data),
             "attributes": world_attributes(data_of(m.card.data))}
            for m in list_models(DIFFUSION_FAMILY) if m.card is not None]


def lama_models() -> list[dict[str, Any]]:
    """Every usable LaMa model (imported from a user's file: the Inpaint panel's LaMa engine):
    name, source and the file it came from."""
    return [{"name": m.name, "source": m.source,
             "file": str(m.card.extra.get("source", {}).get("file", m.name))}
            for m in list_models(LAMA_FAMILY) if m.card is not None]


def data_of(card_data: str) -> str:
    """A card's data line cut to what it names ("faces world, 64 px, ..." -> "faces world")."""
    return card_data.split(",")[0].strip() or "unknown data"


def world_attributes(data: str) -> list[str]:
    """"head=class" for every class a world names ("faces world" -> "smiling=smiling", ...);
    none for other data (a user's folder)."""
    from core.data.worlds import get_world, world_names

    name = data.removesuffix(" world")
    if name not in world_names():
        return []
    attributes = get_world(name).attributes
    return [f"{head}={cls}" for head, classes in attributes.items() for cls in classes]


def latent_models() -> list[dict[str, str]]:
    """Every usable latent model (VAE or DCGAN): name, family, source, world, path."""
    return [{"name": m.name, "family": family, "source": m.source, "world": card_world(m.card),
             "path": str(m.path)}
            for family in LATENT_FAMILIES for m in list_models(family) if m.card is not None]


def card_world(card: ModelCard) -> str:
    """The data a latent model was trained on: its recipe's data source, else the first word
    of its card's data line."""
    recipe = card.extra.get("recipe_resolved", {}) if card.extra else {}
    data = recipe.get("data", {}).get("source", "") if isinstance(recipe, dict) else ""
    return str(data or (card.data.split() or [""])[0])


def scene_priors() -> list[dict[str, Any]]:
    """Every usable scene prior: name, source, path, whether it draws a layout first
    (``layout``), and the words it knows (vocab) and how many it reads (text_len), so a prompt
    box can check words: a caption prior's from its card, a layout prior's those of the
    layout stage (the scenes world's grammar)."""
    from core.data.captions import PROMPT_WORDS, VOCABULARY

    found = []
    for family in PRIOR_FAMILIES:
        for m in list_models(family):
            if m.card is None:
                continue
            layout = m.card.architecture == "layout_prior"
            found.append({"name": m.name, "source": m.source, "path": str(m.path),
                          "layout": layout,
                          "vocab": list(VOCABULARY if layout else m.card.config.get("vocab", [])),
                          "text_len": PROMPT_WORDS if layout
                          else int(m.card.config.get("text_len", 0))})
    return found


def classifiers() -> list[dict[str, Any]]:
    """Every usable classifier (a judge: the Judge panel's): name, source, world, the
    attributes it reads of the whole picture (``heads``) and of its objects (``object_heads``,
    which a dream can draw), and its layers."""
    return [{"name": m.name, "source": m.source, "world": str(m.card.config.get("world", "")),
             "heads": dict(m.card.config.get("heads", {})),
             "object_heads": dict(m.card.config.get("slot_heads", {})),
             "layers": layer_names()}
            for m in list_models(JUDGE_FAMILY) if m.card is not None]


def fast_styles() -> list[dict[str, str]]:
    """Every usable fast style: name, source and the style image it learnt."""
    return [{"name": m.name, "source": m.source,
             "style": str(m.card.config.get("style", "")).removeprefix("procedural:")}
            for m in list_models(FAST_STYLE_FAMILY) if m.card is not None]


def one_pass_styles() -> list[dict[str, str]]:
    """Every usable one-pass (any painting) style net: name and source."""
    return [{"name": m.name, "source": m.source}
            for m in list_models(ONE_PASS_FAMILY) if m.card is not None]


def sd_models() -> list[dict[str, Any]]:
    """Every registered Stable Diffusion model (a user's checkpoint, used where it lies): name,
    source, what it is (its card's variant label, "Stable Diffusion 1.x"), its variant's
    config name, whether it is a 9-channel inpainting model, and the file it came from."""
    out = []
    for m in list_models(SD_FAMILY):
        if m.card is None:
            continue
        file = str(m.card.extra.get("imported_from", ""))
        variant = str(m.card.config.get("variant", ""))
        # The card's data line is "<variant label> (<file name>)" (core/thirdparty/sd/register)
        label = m.card.data.removesuffix(f" ({Path(file).name})") if file else m.card.data
        out.append({"name": m.name, "source": m.source, "label": label or variant,
                    "variant": variant, "file": file,
                    "inpainting": str(m.card.config.get("model_type", "")).startswith(
                        "inpainting")})
    return out


def upscalers() -> list[dict[str, Any]]:
    """Every usable upscaler (Image > Upscale): name, source, scale and what kind of net it is
    (Easel's own, or the architecture of the user's file it was imported from)."""
    return [{"name": m.name, "source": m.source, "scale": int(m.card.config.get("scale", 4)),
             "kind": UPSCALERS[m.card.architecture]}
            for m in list_models(UPSCALE_FAMILY)
            if m.card is not None and m.card.architecture in UPSCALERS]
