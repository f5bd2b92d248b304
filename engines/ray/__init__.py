"""Engines on Ray Serve: one deployment per model (`replica`), reached through the same Protocols (`proxy`).

Importing this package needs the `ray` extra; nothing else in voxloop imports it unless `voxloop ray` runs.
"""
