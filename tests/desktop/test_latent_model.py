"""The Latent panel's state without its widgets: a model change drops what belonged to the old
latent space, slots hold at most MAX_SLOT picks, restored amounts wait for the model's
directions, edits are coalesced to one in flight, and each change says what changed."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from core.specs.latent import MAX_SLOT, LatentEditSpec, LatentWalkSpec
from desktop.panels.latent_model import LatentState

INFO = {"directions": ["smiling", "glasses"], "user_directions": ["freckles"]}


def recorder(state: LatentState) -> list[tuple]:
    """Every signal the state emits, in order, with its arguments."""
    seen: list[tuple] = []
    for name in ("modelChanged", "infoChanged", "gridChanged", "slotChanged",
                 "targetChanged", "amountsChanged", "pickImageChanged", "resultChanged",
                 "walkEndsChanged", "walkChanged"):
        getattr(state, name).connect(lambda *args, n=name: seen.append((n, *args)))
    return seen


def picks(state: LatentState, n: int):
    return [state.new_pick([float(i)] * 4, None, f"face {i}") for i in range(n)]


def edit(state: LatentState, amount: float = 0.0) -> LatentEditSpec:
    return LatentEditSpec(model=state.model, a=state.latents("A"),
                          directions=(("smiling", amount),) if amount else ())


def test_a_new_model_drops_everything_of_the_old_latent_space():
    state = LatentState()
    state.set_model("vae_a")
    state.set_info(INFO)
    a, b = picks(state, 2)
    state.set_grid([a, b])
    state.put("A", [a])
    state.set_amounts({"smiling": 0.5})
    state.set_walk_end(0, b)
    state.set_result(np.zeros((4, 4, 3), np.uint8), (0.0,) * 4, edit(state))
    state.set_target("C")
    generation = state.generation
    seen = recorder(state)

    state.set_model("vae_b")
    assert seen == [("modelChanged", "vae_b")]  # one signal: the panel renders it all anew
    assert state.generation == generation + 1  # answers for vae_a are now stale
    assert state.info is None and state.resolve([a.key, b.key]) == []
    assert state.grid == [] and all(not p for p in state.slots.values())
    assert state.amounts == {} and state.walk_ends == [None, None]
    assert state.result_image is None and state.result_spec is None
    assert state.target == "C"  # where grid clicks go is the user's choice, not the model's


def test_a_slot_holds_at_most_max_slot_picks_and_says_when_it_changed():
    state = LatentState()
    seen = recorder(state)
    many = picks(state, MAX_SLOT + 2)
    assert state.put("B", many[:2]) == 2
    assert state.put("B", many[2:]) == MAX_SLOT - 2
    assert state.slots["B"] == many[:MAX_SLOT]
    assert state.put("B", many[:1]) == 0  # full: nothing changes, nothing is said
    assert seen == [("slotChanged", "B"), ("slotChanged", "B")]
    assert state.latents("B") == tuple(p.latent for p in many[:MAX_SLOT])
    state.set_pick_image(many[0], np.ones((2, 2, 3), np.uint8))
    assert seen[-1] == ("pickImageChanged", many[0].key) and many[0].image is not None


def test_restored_amounts_wait_for_the_directions_then_unknown_ones_are_dropped():
    state = LatentState()
    state.set_model("vae")
    seen = recorder(state)
    assert state.set_amounts({"smiling": 0.75, "beard": 1.0, "glasses": 0.0}) == []
    assert state.amounts == {"smiling": 0.75, "beard": 1.0}  # 0 is no amount
    assert state.directions() is None
    assert state.set_info(INFO) == ["beard"]
    assert state.amounts == {"smiling": 0.75}
    assert state.edit_directions() == (("smiling", 0.75),)
    # Once the directions are known an unknown name is refused at once.
    assert state.set_amounts({"freckles": -1.0, "hat": 1.0}) == ["hat"]
    assert state.amounts == {"freckles": -1.0}
    assert state.set_amounts({"freckles": -1.0}) == []
    assert [s[0] for s in seen] == ["amountsChanged", "infoChanged", "amountsChanged"]


def test_edits_are_coalesced_to_one_in_flight_ending_on_the_newest_state():
    state = LatentState()
    state.set_model("vae")
    state.put("A", picks(state, 1))
    first = edit(state, 0.1)
    assert state.want_edit(first) and not state.is_idle()
    assert not state.want_edit(edit(state, 0.2))  # while it runs: asked for again later
    assert not state.want_edit(edit(state, 0.3))
    stale = edit(state, 0.1)  # equal, but not the job in flight
    assert not state.edit_returned(stale, np.zeros((2, 2, 3), np.uint8))
    assert state.edit_returned(first, np.zeros((2, 2, 3), np.uint8), [1.0] * 4, "a note")
    assert state.result_spec is first and state.result_note == "a note"
    assert state.result_latent == (1.0,) * 4
    newest = edit(state, 0.3)
    assert state.want_edit(newest)  # the one the panel asks for then
    assert not state.edit_returned(newest, None, cancelled=True)  # Esc: nothing more
    assert state.is_idle() and state.result_spec is first
    assert not state.want_edit(first)  # what is shown already is not run again


def test_a_cancelled_edit_forgets_the_changes_made_while_it_ran():
    state = LatentState()
    state.set_model("vae")
    state.put("A", picks(state, 1))
    spec = edit(state, 0.1)
    assert state.want_edit(spec)
    assert not state.want_edit(edit(state, 0.5))
    assert not state.edit_returned(spec, None, cancelled=True)
    assert state.is_idle()
    state.clear_result("Slot A is empty")
    assert state.result_image is None and state.result_note == "Slot A is empty"


def test_the_walk_keeps_its_ends_and_frames():
    state = LatentState()
    state.set_model("vae")
    start, end, *frames = picks(state, 5)
    seen = recorder(state)
    state.set_walk_end(0, start)
    state.set_walk_end(1, end)
    assert state.walk_ends == [start, end]
    for p in frames:
        p.image = np.full((2, 2, 3), len(p.label), np.uint8)
    spec = LatentWalkSpec(model="vae", start=start.latent, end=end.latent, frames=3)
    state.set_walk(spec, frames)
    assert state.walk_spec is spec and len(state.walk_frames) == 3
    assert [s[0] for s in seen] == ["walkEndsChanged", "walkEndsChanged", "walkChanged"]


def test_the_state_imports_neither_widgets_nor_torch():
    code = ("import sys, desktop.panels.latent_model; "
            "print(sorted(m for m in ('torch', 'PySide6.QtWidgets') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
