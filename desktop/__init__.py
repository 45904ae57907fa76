"""Easel desktop app (PySide6)."""
