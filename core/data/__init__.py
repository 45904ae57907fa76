"""Procedural worlds (faces, scenes) and the user-folder dataset. Importing registers them."""

from core.data import faces, scenes  # noqa: F401
