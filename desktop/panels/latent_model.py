"""The Latent panel's state, apart from its widgets (as krita-ai-diffusion keeps its model/ apart
from its ui/): the model everything belongs to and what it says of itself, the picks (latents
taken from the grid, files, the canvas or results), the grid, slots A, B and C, the direction
amounts, the result shown, the walk, and the edit job in flight.

The panel changes the state through its methods and renders what the signals say changed;
nothing here touches a widget, runs a job or reads a weight.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from core.specs.latent import MAX_SLOT, LatentEditSpec, LatentWalkSpec

SLOTS = "ABC"


@dataclass(eq=False)
class Pick:
    """A latent the user picked, with its decoded image (None until it is decoded). Picks are
    compared by identity: two picks of the same latent are two thumbnails."""

    key: str
    latent: tuple[float, ...]
    image: np.ndarray | None = None
    label: str = ""


class LatentState(QObject):
    modelChanged = Signal(str)  # a new model: every pick, slot, amount, result and walk is gone
    infoChanged = Signal()  # what the model says of itself (size, directions) arrived
    gridChanged = Signal()
    slotChanged = Signal(str)  # that slot's picks
    targetChanged = Signal(str)  # the slot grid clicks go into
    amountsChanged = Signal()
    pickImageChanged = Signal(str)  # that pick's image arrived (decoded after a restore)
    resultChanged = Signal()
    walkEndsChanged = Signal()
    walkChanged = Signal()  # the walk's frames

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.model = ""  # the model everything below belongs to
        self.generation = 0  # bumped with the model: answers for the previous one are stale
        self.info: dict[str, Any] | None = None  # the latent_info answer for the model
        self.picks: dict[str, Pick] = {}
        self._next_key = 0
        self.grid: list[Pick] = []
        self.slots: dict[str, list[Pick]] = {name: [] for name in SLOTS}
        self.target = "A"
        # The wanted non-zero direction amounts; until the model's directions are known they
        # may name any direction (a restored edit's), and are checked when the info arrives.
        self.amounts: dict[str, float] = {}
        self.result_image: np.ndarray | None = None
        self.result_latent: tuple[float, ...] = ()
        self.result_spec: LatentEditSpec | None = None
        self.result_note = ""  # what the result view says beside (or instead of) the result
        self.walk_ends: list[Pick | None] = [None, None]
        self.walk: list[Pick] = []  # the frames of the last walk, as picks
        self.walk_spec: LatentWalkSpec | None = None
        self.edit_in_flight: LatentEditSpec | None = None
        self.edit_again = False  # the state changed while that edit ran

    # ---------------------------------------------------------------- model

    def set_model(self, name: str) -> None:
        """Everything picked so far belongs to the old latent space: drop it."""
        self.model = name
        self.generation += 1
        self.info = None
        self.picks.clear()
        self.grid = []
        self.slots = {n: [] for n in SLOTS}
        self.amounts = {}
        self.result_image, self.result_latent, self.result_spec = None, (), None
        self.result_note = ""
        self.walk_ends, self.walk, self.walk_spec = [None, None], [], None
        self.edit_in_flight, self.edit_again = None, False
        self.modelChanged.emit(name)

    def directions(self) -> set[str] | None:
        """The names of the model's directions (None until its info arrives)."""
        if self.info is None:
            return None
        return {*self.info.get("directions", []), *self.info.get("user_directions", [])}

    def set_info(self, info: dict[str, Any]) -> list[str]:
        """The model's info; returns the wanted amounts' names it has no direction for (they
        are dropped)."""
        self.info = info
        unknown = self._drop_unknown()
        self.infoChanged.emit()
        return unknown

    # ---------------------------------------------------------------- picks

    def new_pick(self, latent: Any, image: np.ndarray | None, label: str) -> Pick:
        self._next_key += 1
        pick = Pick(f"p{self._next_key}", tuple(float(v) for v in latent), image, label)
        self.picks[pick.key] = pick
        return pick

    def resolve(self, keys: list[str]) -> list[Pick]:
        """The picks of ``keys`` that belong to the current model."""
        return [self.picks[k] for k in keys if k in self.picks]

    def set_pick_image(self, pick: Pick, image: np.ndarray) -> None:
        pick.image = image
        self.pickImageChanged.emit(pick.key)

    def set_grid(self, picks: list[Pick]) -> None:
        self.grid = list(picks)
        self.gridChanged.emit()

    # ---------------------------------------------------------------- slots

    def put(self, name: str, picks: list[Pick]) -> int:
        """Append ``picks`` to slot ``name`` (at most MAX_SLOT in all); how many went in."""
        room = max(0, MAX_SLOT - len(self.slots[name]))
        added = picks[:room]
        if added:
            self.set_slot(name, self.slots[name] + added)
        return len(added)

    def set_slot(self, name: str, picks: list[Pick]) -> None:
        self.slots[name] = list(picks)[:MAX_SLOT]
        self.slotChanged.emit(name)

    def latents(self, name: str) -> tuple[tuple[float, ...], ...]:
        return tuple(p.latent for p in self.slots[name])

    def set_target(self, name: str) -> None:
        """Grid clicks go into slot ``name`` from now on."""
        self.target = name
        self.targetChanged.emit(name)

    # ---------------------------------------------------------------- amounts

    def set_amounts(self, amounts: dict[str, float]) -> list[str]:
        """Set the wanted amounts (the others are 0); returns the names the model has no
        direction for, which are dropped (none while its directions are not known yet)."""
        before = self.amounts
        self.amounts = {n: float(v) for n, v in amounts.items() if v}
        unknown = self._drop_unknown()
        if self.amounts != before:
            self.amountsChanged.emit()
        return unknown

    def _drop_unknown(self) -> list[str]:
        known = self.directions()
        if known is None:
            return []
        unknown = [n for n in self.amounts if n not in known]
        for n in unknown:
            del self.amounts[n]
        return unknown

    def edit_directions(self) -> tuple[tuple[str, float], ...]:
        """The amounts as an edit spec carries them: by name."""
        return tuple(sorted(self.amounts.items()))

    # ---------------------------------------------------------------- the edit and its result

    def want_edit(self, spec: LatentEditSpec) -> bool:
        """Whether to run ``spec`` now. At most one edit runs at a time: while one does, the
        newest state is asked for once it returns (a slider drag queues no backlog)."""
        if self.edit_in_flight is not None:
            self.edit_again = True
            return False
        if spec == self.result_spec:
            return False
        self.edit_in_flight = spec
        return True

    def edit_returned(self, spec: LatentEditSpec, image: np.ndarray | None = None,
                      latent: Any = (), note: str = "", cancelled: bool = False) -> bool:
        """The edit ``spec`` ended with ``image`` (None: it failed or was cancelled); returns
        whether the newest state should now be asked for."""
        if spec is not self.edit_in_flight:
            return False
        self.edit_in_flight = None
        if cancelled:  # the user stopped the work (Esc): wait for the next change
            self.edit_again = False
        if image is not None:
            self.set_result(image, latent, spec, note)
        again, self.edit_again = self.edit_again, False
        return again

    def is_idle(self) -> bool:
        """No edit in flight and none wanted."""
        return self.edit_in_flight is None and not self.edit_again

    def set_result(self, image: np.ndarray, latent: Any, spec: LatentEditSpec,
                   note: str = "") -> None:
        self.result_image, self.result_latent = image, tuple(latent)
        self.result_spec, self.result_note = spec, note
        self.resultChanged.emit()

    def clear_result(self, note: str = "") -> None:
        """No result to show (``note`` says why)."""
        self.result_image, self.result_latent, self.result_spec = None, (), None
        self.result_note = note
        self.resultChanged.emit()

    # ---------------------------------------------------------------- walk

    def set_walk_end(self, which: int, pick: Pick) -> None:
        self.walk_ends[which] = pick
        self.walkEndsChanged.emit()

    def set_walk(self, spec: LatentWalkSpec, frames: list[Pick]) -> None:
        self.walk_spec, self.walk = spec, list(frames)
        self.walkChanged.emit()

    @property
    def walk_frames(self) -> list[np.ndarray]:
        return [p.image for p in self.walk if p.image is not None]
