"""What the notebooks call: ``setup`` (first cell) and ``Context.finish`` (last cell),
``widgets.show`` (a figure with ipywidgets controls, or its static PNG), ``latents`` (pairs, orbits,
swaps, traversals), ``findings`` (sentences from metrics) and ``figures`` (one PNG each). The
studies themselves (what to train, how to score it) live in :mod:`galib.experiments`.
"""
from . import figures, latents, widgets
from .context import Context, setup

__all__ = ["Context", "setup", "figures", "latents", "widgets"]
