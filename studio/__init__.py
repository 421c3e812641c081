"""Atelier's desktop studio (PySide6). The only package that imports Qt."""
