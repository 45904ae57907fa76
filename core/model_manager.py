"""Managing installed models: size, hash status, rename, delete, import and export.

The desktop Model manager dialog is a thin view over these functions, so every rule lives
here, headless and tested without Qt (core never imports Qt):

- Shipped models (``paths.shipped_weights_dir()``) are read-only: they may be installed in a
  read-only folder and are reproducible from recipes, so only the user's models (in
  ``paths.models_dir()``) can be renamed or deleted.
- A model is up to three files side by side: ``<name>.safetensors``, its card ``<name>.json``
  and, for latent models, ``<name>.directions.json``. Rename, delete, import and export carry
  all of them, so no orphan is left behind.
- Easel's own model files never unpickle: such a file must be safetensors (a renamed
  ``.pt``/``.ckpt`` is refused by its magic bytes before anything parses it), and a file that
  comes with a card must have the sha256 that card states. A file without a card is first
  offered to core.thirdparty's detectors (a user's Real-ESRGAN ``.pth``, LaMa ``.ckpt``...:
  pickled ones are read only by ``torch.load(weights_only=True)``) and saved once as an Easel
  safetensors file with a generated card; a ``.safetensors`` file no detector knows is imported
  as an Easel model of the family the caller names, with a minimal card marked ``unverified``
  so the listing says so.
- Every file written goes through ``paths.atomic_write``: a crash leaves the old state or
  the new one, never a half-written model.
- Every file read is a regular file read with a size bound (``cards.read_regular``); a zip
  is read member by member with bounded reads, within limits on members, total size and
  compression ratio, so a crafted archive is refused instead of filling memory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import re
import zipfile
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from core import paths
from core.cards import (
    MAX_JSON_BYTES,
    MAX_WEIGHTS_BYTES,
    SUFFIX,
    ModelCard,
    ModelInfo,
    WeightsError,
    card_path,
    check_registered,
    open_regular,
    parse_card,
    read_regular,
    registered,
    sha256_of,
    verify_bytes,
)
from core.paths import atomic_write
from core.safezip import ZipLimits, ZipRefused, check_members, read_member

if TYPE_CHECKING:
    from core.thirdparty.detected import Detected

DIRECTIONS_SUFFIX = ".directions.json"
HASH_STATUSES = ("ok", "mismatch", "missing", "unverified")
MAX_NAME = 100
# An exported zip holds a model's weights, card and sidecar; the limits leave room for more.
ZIP_MAX_MEMBERS = 64
FREE_SPACE_MARGIN = 64 << 20  # bytes left free on the disk after an import, at least
ZIP_MAX_TOTAL = 2 * MAX_WEIGHTS_BYTES  # uncompressed, all members together
ZIP_MAX_RATIO = 100  # uncompressed / compressed size of a member
ZIP_LIMITS = ZipLimits(ZIP_MAX_MEMBERS, ZIP_MAX_TOTAL, ZIP_MAX_RATIO, "a model archive")
# Characters Windows refuses in file names, and names it reserves: a model made on Linux may
# be exported and imported on Windows.
_BAD_CHARS = re.compile(r'[<>:"/\\|?*\x00-\x1f]')
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)),
             *(f"lpt{i}" for i in range(1, 10))}


class ModelManagerError(Exception):
    """A model operation that cannot be done; the message is meant for the user."""


class TrashFailed(ModelManagerError):
    """A file could not be moved to the trash; the caller may ask, then delete for good."""


class FamilyRequired(ModelManagerError):
    """An import without a model card: the caller must say which family the model is."""


# --------------------------------------------------------------------------- inspection


def directions_path(weights_path: str | os.PathLike) -> Path:
    """The latent-directions sidecar beside a weights file (it may not exist)."""
    p = Path(weights_path)
    return p.with_name(p.stem + DIRECTIONS_SUFFIX)


def model_files(info: ModelInfo) -> list[Path]:
    """The files of ``info`` that exist: weights, card, sidecar (in that order)."""
    return [p for p in (info.path, card_path(info.path), directions_path(info.path))
            if p.is_file()]


def model_size(info: ModelInfo) -> int:
    """Bytes of the weights file (0 when it is missing)."""
    try:
        return info.path.stat().st_size
    except OSError:
        return 0


def check_hash(info: ModelInfo) -> str:
    """"ok", "mismatch", "missing" (no weights file) or "unverified" (no usable card, a card
    without sha256, or one written by an import that came without a card)."""
    record = registered(info.card)
    if record is not None:  # a user's file used where it lies (a Stable Diffusion checkpoint)
        if not Path(record["path"]).exists():
            return "missing"
        return "mismatch" if check_registered(info.card, full=True) else "ok"
    if not info.path.is_file():
        return "missing"
    if info.card is None or not info.card.sha256:
        return "unverified"
    try:
        digest = sha256_of(info.path)
    except (OSError, WeightsError):  # gone, or no longer a regular file
        return "missing"
    if digest != info.card.sha256.lower():
        return "mismatch"
    return "unverified" if info.card.extra.get("unverified") else "ok"


# --------------------------------------------------------------------------- names


def validate_name(name: str) -> str:
    """``name`` stripped, or ModelManagerError saying why it cannot be a model's file name."""
    name = name.strip() if isinstance(name, str) else ""
    if not name:
        raise ModelManagerError("A model name cannot be empty.")
    if _BAD_CHARS.search(name) or os.sep in name or (os.altsep and os.altsep in name):
        raise ModelManagerError(f"{name!r} cannot be a model name: it becomes a file name, so "
                                'it cannot contain / \\ : * ? " < > | or control characters.')
    if name.startswith(".") or name.endswith("."):
        raise ModelManagerError(f"{name!r} cannot be a model name: it cannot start or end "
                                "with a dot.")
    if name.lower().endswith((".directions", ".json", SUFFIX)):
        raise ModelManagerError(f"{name!r} cannot be a model name: leave out the file "
                                "extension.")
    if name.split(".")[0].lower() in _RESERVED:
        raise ModelManagerError(f"{name!r} cannot be a model name: Windows reserves it.")
    if len(name) > MAX_NAME:
        raise ModelManagerError(f"A model name can have at most {MAX_NAME} characters.")
    return name


def name_taken(family: str, name: str, ignore: str = "") -> bool:
    """Whether ``name`` is used in ``family``: by a user model's files (compared without case,
    as macOS and Windows do), or by a shipped model, which would hide a user model of that name
    (shipped models are found first)."""
    key = name.casefold()
    if ignore and key == ignore.casefold():
        return False
    folder = paths.models_dir() / family
    if folder.is_dir():
        for p in folder.iterdir():
            if p.suffix not in (SUFFIX, ".json"):  # e.g. an atomic write's temp file
                continue
            stem = p.name.removesuffix(DIRECTIONS_SUFFIX) if p.name.endswith(
                DIRECTIONS_SUFFIX) else p.stem
            if stem.casefold() == key:
                return True
    shipped = paths.shipped_weights_dir() / family
    return (shipped / f"{name}{SUFFIX}").exists() or (shipped / f"{name}.json").exists()


def _require_user(info: ModelInfo, verb: str) -> None:
    if info.source != "user":
        raise ModelManagerError(f"{info.name} is a shipped model; shipped models are read-only "
                                f"and cannot be {verb}.")
    root = paths.models_dir().resolve()
    if not info.path.resolve().is_relative_to(root):
        raise ModelManagerError(f"{info.path} is not in the user models folder {root}; it "
                                f"cannot be {verb} here.")


def _card_bytes(card: ModelCard) -> bytes:
    """The card as save_model writes it."""
    return (json.dumps(card.to_dict(), indent=2) + "\n").encode("utf-8")


def _sidecar_bytes(data: bytes, old: str, new: str) -> bytes:
    """The sidecar with its ``model`` name updated; unchanged when it is not the expected JSON."""
    try:
        d = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return data
    if isinstance(d, dict) and d.get("model") in (old, "") and old != new:
        d["model"] = new
        return (json.dumps(d) + "\n").encode("utf-8")
    return data


# --------------------------------------------------------------------------- rename / delete


def rename_model(info: ModelInfo, new_name: str) -> Path:
    """Rename a user model's files and the ``name`` in its card; returns the new weights path.

    The weights bytes do not change, so the card's sha256 stays valid."""
    _require_user(info, "renamed")
    new_name = validate_name(new_name)
    if new_name == info.name:
        return info.path
    if name_taken(info.family, new_name, ignore=info.name):
        raise ModelManagerError(f"A {info.family} model called {new_name!r} already exists.")
    if not info.path.is_file():
        raise ModelManagerError(f"{info.path} is missing, so {info.name} cannot be renamed; "
                                "delete it instead.")
    if info.card is None:
        raise ModelManagerError(f"The model card of {info.name} cannot be read ({info.error}); "
                                "it cannot be renamed.")
    folder = info.path.parent
    new_path = folder / f"{new_name}{SUFFIX}"
    old_card, old_dirs = card_path(info.path), directions_path(info.path)
    card = dataclasses.replace(info.card, name=new_name)
    try:
        # Weights first (a rename: same bytes, atomic), then the new card; the model is listed
        # by its card, so until the old card goes it still shows under its old name.
        os.replace(info.path, new_path)
        try:
            atomic_write(card_path(new_path), _card_bytes(card))
        except OSError:
            os.replace(new_path, info.path)
            raise
        _drop_old(old_card, card_path(new_path))
        if old_dirs.is_file():
            new_dirs = directions_path(new_path)
            atomic_write(new_dirs, _sidecar_bytes(old_dirs.read_bytes(), info.name, new_name))
            _drop_old(old_dirs, new_dirs)
    except OSError as exc:
        raise ModelManagerError(f"Could not rename {info.name}: {exc}") from None
    return new_path


def _drop_old(old: Path, new: Path) -> None:
    """Remove ``old`` unless it is ``new`` (a change of case only, on a case-blind disk)."""
    if old.exists() and not (new.exists() and os.path.samefile(old, new)):
        old.unlink()


def delete_model(info: ModelInfo, trash: Callable[[Path], bool] | None = None) -> None:
    """Remove a user model's weights, card and sidecar.

    With ``trash`` (the GUI passes a QFile.moveToTrash wrapper) each file is moved to the
    trash; when it returns False, TrashFailed (a ModelManagerError) is raised so the caller
    can ask the user and call again with ``trash=None``, which deletes the remaining files for
    good. The card
    goes last: while it exists the model stays listed, so a half-done delete can be finished.
    """
    _require_user(info, "deleted")
    files = [p for p in (directions_path(info.path), info.path, card_path(info.path))
             if p.is_file()]
    for p in files:
        if trash is not None:
            if not trash(p):
                raise TrashFailed(f"{p.name} could not be moved to the trash.")
            continue
        try:
            p.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise ModelManagerError(f"Could not delete {p}: {exc}") from None


# --------------------------------------------------------------------------- import


def known_families() -> list[str]:
    """Model families (folder names) a model can be imported into."""
    from core.thirdparty import FAMILIES as THIRDPARTY_FAMILIES
    from core.training.task import task_families

    return sorted({*task_families(), *THIRDPARTY_FAMILIES})


def family_architecture(family: str) -> str:
    """The core.registry architecture the trained models of ``family`` use."""
    import core.nets  # noqa: F401  (importing registers every architecture)
    from core import registry
    from core.training.task import TrainingError, get_task

    try:
        arch = get_task(family).architecture
    except TrainingError:
        raise ModelManagerError(f"{family!r} is not a model family; known: "
                                f"{', '.join(known_families())}.") from None
    if arch:
        return arch
    if family in registry.names():  # a family whose task leaves the check to its own code
        return family
    raise ModelManagerError(f"Easel does not know which architecture {family!r} models use.")


def _refuse_pickle(data: bytes, source: Path) -> None:
    """A torch.save file (a zip of pickles, or a bare pickle) is recognised by its first bytes
    and refused before anything else looks at it, with a message saying why."""
    if data[:4] == b"PK\x03\x04" or data[:1] == b"\x80":
        raise ModelManagerError(
            f"{source.name} is a PyTorch pickle checkpoint (.pt/.ckpt), not safetensors; "
            "Easel never loads pickles because opening one can run code. Not imported.")


def _check_safetensors(data: bytes, source: Path) -> None:
    """Parse the header and tensors with the safetensors parser (which never unpickles)."""
    from safetensors.torch import load as st_load  # torch: only imports need it

    try:
        header = int.from_bytes(data[:8], "little")
        if len(data) < 8 or header > len(data) - 8 or data[8:9] != b"{":
            raise ValueError("no safetensors header")
        st_load(data)
    except Exception as exc:  # noqa: BLE001 - the safetensors parser raises several types
        raise ModelManagerError(f"{source.name} is not a valid safetensors file ({exc}); "
                                "not imported.") from None


def _parse_card(data: bytes, label: str) -> ModelCard:
    try:
        return parse_card(data)
    except (ValueError, TypeError) as exc:
        raise ModelManagerError(f"Model card {label} cannot be read: {exc}") from None


def check_free_space(size: int, source: Path) -> None:
    """ModelManagerError unless the models folder's disk has room for ``size`` bytes and a
    margin (the file is written beside its temporary copy)."""
    free = paths.free_bytes(paths.models_dir())
    if free < size + FREE_SPACE_MARGIN:
        raise ModelManagerError(
            f"Not enough free space to import {source.name}: it needs {size / 2**20:,.0f} MB "
            f"and {paths.models_dir()} has {free / 2**20:,.0f} MB free. Nothing was written.")


def _read_file(path: Path, limit: int, what: str,
               progress: Callable[[int, int], None] | None = None) -> bytes:
    """``path``'s bytes (a regular file of at most ``limit`` bytes), or ModelManagerError."""
    try:
        return read_regular(path, limit, progress)
    except FileNotFoundError:
        raise ModelManagerError(f"{what} {path} not found.") from None
    except WeightsError as exc:  # not a regular file, or too large: the message names it
        raise ModelManagerError(str(exc)) from None
    except OSError as exc:
        raise ModelManagerError(f"{what} {path} cannot be read: {exc}") from None


def _read_card_file(path: Path) -> ModelCard:
    return _parse_card(_read_file(path, MAX_JSON_BYTES, "Model card"), path.name)


def free_name(family: str, name: str) -> str:
    """``name``, or ``name-2``, ``name-3``... when it is taken in ``family``."""
    candidate, n = name, 1
    while name_taken(family, candidate):
        n += 1
        candidate = f"{name[:MAX_NAME - 4]}-{n}"
    return candidate


def import_model(weights_path: str | os.PathLike, card: str | os.PathLike | None = None,
                 family: str | None = None, name: str | None = None,
                 prediction: str | None = None,
                 progress: Callable[[int, int], None] | None = None) -> ModelInfo:
    """Copy a model into ``models_dir()/<family>/`` and return its listing.

    ``weights_path`` is a ``.safetensors`` file, a ``.zip`` made by :func:`export_model`
    (chosen by the file's extension) or a user's third-party model file (``.pth``, ``.pt``,
    ``.ckpt``, ``.bin`` or ``.safetensors``: a Real-ESRGAN upscaler, a LaMa...). The card is
    ``card``, else ``<stem>.json`` beside the weights; with one, the family is the card's and
    the file must have the card's sha256. Without one, a file that core.thirdparty recognises
    is converted to an Easel model with a generated card (its family the detector's; a
    ``family`` given must agree); for any other ``.safetensors`` file ``family`` is required
    (else FamilyRequired; a family only users' files fill, such as lama, refuses it) and a
    minimal card marked unverified is written. ``name`` is the name to install under
    (ModelManagerError when it is taken); without it, the card's name (or the file's) is used,
    with a suffix (``name-2``) when it is taken, since the imported file may well be a copy of
    an installed model. The returned ModelInfo has the name used.

    A Stable Diffusion checkpoint or diffusers folder is registered where it lies instead
    (:func:`_import_sd`); ``prediction`` ("epsilon" or "v") is its prediction type.

    ``progress(bytes read, size)`` follows the read (or, for a Stable Diffusion checkpoint,
    the hashing) of the model file; it may raise (e.g. core.jobs.Cancelled) to stop the
    import, which then writes nothing. An import that would not fit in the free space of the
    models folder is refused before anything is written.
    """
    source = Path(weights_path).expanduser()
    if not source.exists():
        raise ModelManagerError(f"No file at {source}.")
    sd = _import_sd(source, name, prediction, progress)
    if sd is not None:
        return sd
    if prediction is not None:
        raise ModelManagerError(f"{source.name} is not a Stable Diffusion model; the "
                                "prediction type is a setting of those only.")
    if source.suffix.lower() == ".zip":
        return _import_zip(source, family, name)
    data = _read_file(source, MAX_WEIGHTS_BYTES, "Model file", progress)
    check_free_space(len(data), source)
    card_file = Path(card).expanduser() if card is not None else card_path(source)
    if card is None and not card_file.exists():
        imported = _import_user_file(data, source, family, name)
        if imported is not None:
            return imported
    model_card = (_read_card_file(card_file) if card is not None or card_file.exists()
                  else None)
    sidecar = directions_path(source)
    return _install(data, source, model_card, family,
                    _read_file(sidecar, MAX_JSON_BYTES, "Directions file")
                    if sidecar.exists() else None, name)


def _import_user_file(data: bytes, source: Path, family: str | None, wanted: str | None
                      ) -> ModelInfo | None:
    """A user's third-party model file (one without an Easel card) saved once as an Easel
    model (core/thirdparty/importing.py), or None for a ``.safetensors`` file that no detector
    knows (perhaps an Easel model that lost its card: the family the caller names decides,
    unless that family is one only users' files fill)."""
    # torch: only imports of users' files need it
    from core.thirdparty.files import PICKLED, ThirdPartyError
    from core.thirdparty.files import SUFFIXES as USER_SUFFIXES
    from core.thirdparty.importing import UnknownModel, import_thirdparty

    suffix = source.suffix.lower()
    if suffix not in USER_SUFFIXES:
        return None
    if suffix not in PICKLED:
        _refuse_pickle(data, source)  # a pickle named .safetensors is no user's model file

    def choose_name(found: Detected) -> str:
        if family and family != found.family:
            raise ModelManagerError(f"{source.name} is {found.description} (family "
                                    f"{found.family}), not a {family} model.")
        try:
            default = validate_name(source.stem)
        except ModelManagerError:
            default = found.family
        return _choose_name(found.family, default, wanted)

    try:
        return import_thirdparty(data, source, choose_name)
    except UnknownModel as exc:
        if suffix not in PICKLED and not _users_only(family):
            return None
        raise ModelManagerError(str(exc)) from None
    except ThirdPartyError as exc:
        raise ModelManagerError(str(exc)) from None
    except OSError as exc:
        raise ModelManagerError(f"Could not import {source.name}: {exc}") from None


def _import_sd(source: Path, wanted: str | None, prediction: str | None,
               progress: Callable[[int, int], None] | None) -> ModelInfo | None:
    """Register a Stable Diffusion checkpoint or diffusers folder where it lies
    (core/thirdparty/sd/register.py); None when ``source`` is not one."""
    from core.thirdparty.files import ThirdPartyError
    from core.thirdparty.sd import FAMILY
    from core.thirdparty.sd.register import is_sd_source, register_sd

    if not is_sd_source(source):
        return None
    name = _choose_name(FAMILY, source.stem if source.is_file() else source.name, wanted)
    try:
        return register_sd(source.resolve(), name, prediction, progress)
    except ThirdPartyError as exc:
        raise ModelManagerError(f"{exc} Not imported.") from None
    except OSError as exc:
        raise ModelManagerError(f"Could not import {source.name}: {exc}") from None


def _users_only(family: str | None) -> bool:
    """Whether ``family`` holds only models imported from users' files (LaMa): Easel trains
    none, so a file said to be one must be recognised, never installed unverified."""
    from core.thirdparty import FAMILIES as THIRDPARTY_FAMILIES
    from core.training.task import task_families

    return family in THIRDPARTY_FAMILIES and family not in task_families()


def _choose_name(family: str, name: str, wanted: str | None) -> str:
    """``wanted`` when given (ModelManagerError when it is taken), else ``name`` or, when that
    is taken, :func:`free_name`'s variant of it."""
    if wanted is None:
        return free_name(family, validate_name(name))
    wanted = validate_name(wanted)
    if name_taken(family, wanted):
        raise ModelManagerError(f"A {family} model called {wanted!r} already exists; choose "
                                "another name.")
    return wanted


def _member_names(z: zipfile.ZipFile, source: Path) -> list[str]:
    """The archive's member names, after refusing one that breaks the archive limits."""
    try:
        return check_members(z, source.name, ZIP_LIMITS)
    except ZipRefused as exc:
        raise ModelManagerError(f"{exc}; not imported.") from None


def _read_member(z: zipfile.ZipFile, name: str, limit: int, source: Path) -> bytes:
    """A member's bytes, read with a bound: the sizes an archive declares may be lies."""
    try:
        return read_member(z, name, limit, source.name, ZIP_LIMITS)
    except ZipRefused as exc:
        raise ModelManagerError(f"{exc}; not imported.") from None


def _import_zip(source: Path, family: str | None, name: str | None) -> ModelInfo:
    """Read the model out of an exported zip by member name (nothing is extracted to disk)."""
    try:
        with open_regular(source, ZIP_MAX_TOTAL) as f, zipfile.ZipFile(f) as z:
            names = _member_names(z, source)
            weights = [n for n in names if n.endswith(SUFFIX)]
            if len(weights) != 1:
                raise ModelManagerError(f"{source.name} must hold exactly one {SUFFIX} file; "
                                        f"it holds {len(weights)}.")
            stem = weights[0][:-len(SUFFIX)]
            data = _read_member(z, weights[0], MAX_WEIGHTS_BYTES, source)
            card = (_parse_card(_read_member(z, f"{stem}.json", MAX_JSON_BYTES, source),
                                f"{stem}.json") if f"{stem}.json" in names else None)
            sidecar = (_read_member(z, stem + DIRECTIONS_SUFFIX, MAX_JSON_BYTES, source)
                       if stem + DIRECTIONS_SUFFIX in names else None)
    except WeightsError as exc:
        raise ModelManagerError(str(exc)) from None
    except zipfile.BadZipFile as exc:
        raise ModelManagerError(f"{source.name} is not a usable zip archive ({exc}); not "
                                "imported.") from None
    except (OSError, KeyError, EOFError, NotImplementedError, RuntimeError, ValueError,
            zlib.error) as exc:  # unsupported compression, encryption, damaged data
        raise ModelManagerError(f"Cannot read {source.name}: {exc}") from None
    return _install(data, source.with_name(Path(weights[0]).name), card, family, sidecar, name)


def _install(data: bytes, source: Path, card: ModelCard | None, family: str | None,
             sidecar: bytes | None, wanted: str | None = None) -> ModelInfo:
    from core.weights import check_fit  # torch: the rest of this module does without

    _refuse_pickle(data, source)
    digest = hashlib.sha256(data).hexdigest()
    if card is not None:
        if family and family != card.family:
            raise ModelManagerError(f"{source.name}'s model card says it is a {card.family} "
                                    f"model, not {family}.")
        family = card.family
        if family not in known_families():
            raise ModelManagerError(f"{source.name}'s model card names family {family!r}, "
                                    "which this version of Easel does not know; not imported.")
        if not card.sha256 or card.sha256.lower() != digest:
            raise ModelManagerError(f"{source.name} does not match its model card (sha256 "
                                    "differs: the file was modified or damaged); not imported.")
        _check_safetensors(data, source)
        try:  # the card's network, built on the meta device, must be exactly these tensors
            check_fit(card, verify_bytes(data, card, source), source)
        except WeightsError as exc:
            raise ModelManagerError(f"{exc} Not imported.") from None
        try:
            name = validate_name(card.name)
        except ModelManagerError:
            name = validate_name(source.stem)
    else:
        if not family:
            from core.thirdparty import OPENS

            raise FamilyRequired(f"{source.name} has no model card beside it and is not a "
                                 f"model file Easel recognises (it opens {OPENS}); if "
                                 "it is an Easel model, say which family it is.")
        _check_safetensors(data, source)
        architecture = family_architecture(family)
        name = validate_name(source.stem)
        card = ModelCard(name=name, family=family, architecture=architecture, sha256=digest,
                         created=datetime.now(UTC).isoformat(timespec="seconds"),
                         notes="Imported without a model card: its architecture settings are "
                               "Easel's defaults and its origin is unknown.",
                         extra={"unverified": True, "imported_from": str(source)})
    name = _choose_name(family, name, wanted)
    folder = paths.models_dir() / family
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}{SUFFIX}"
    old_name = card.name
    card = dataclasses.replace(card, name=name)
    try:
        # Weights and sidecar first, the card last: the card is what makes the model listed.
        atomic_write(path, data)
        if sidecar is not None:
            atomic_write(directions_path(path), _sidecar_bytes(sidecar, old_name, name))
        atomic_write(card_path(path), _card_bytes(card))
    except OSError as exc:
        raise ModelManagerError(f"Could not import {source.name}: {exc}") from None
    return ModelInfo(name, family, "user", path, card)


# --------------------------------------------------------------------------- export


def export_model(info: ModelInfo, zip_path: str | os.PathLike) -> Path:
    """Write a zip of the model's weights, card and sidecar (flat, by file name), atomically.

    A model whose file is missing or does not match its card is refused: the zip would carry
    the damage to another machine, where the import refuses it anyway."""
    status = check_hash(info)
    if status in ("missing", "mismatch"):
        what = "is missing" if status == "missing" else "does not match its model card"
        raise ModelManagerError(f"{info.path.name} {what}; not exported.")
    if not card_path(info.path).is_file():
        raise ModelManagerError(f"{info.name} has no model card; not exported.")
    zip_path = Path(zip_path).expanduser()
    buf = io.BytesIO()
    try:
        with zipfile.ZipFile(buf, "w") as z:
            for p in model_files(info):
                # Float weights barely compress; the JSON files do.
                method = zipfile.ZIP_STORED if p.suffix == SUFFIX else zipfile.ZIP_DEFLATED
                z.write(p, p.name, compress_type=method)
        atomic_write(zip_path, buf.getvalue())
    except OSError as exc:
        raise ModelManagerError(f"Could not export {info.name} to {zip_path}: {exc}") from None
    return zip_path

