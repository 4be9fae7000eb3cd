"""What the notebooks call: ``setup`` (first cell) and ``Context.finish`` (last cell),
``widgets.show`` (a figure with ipywidgets controls, or its static PNG), ``latents`` (pairs, orbits,
swaps, traversals), ``studies`` (τ sweep, probe summaries, confusion) and ``figures`` (one PNG each).
"""
from . import figures, latents, studies, widgets
from .context import Context, setup

__all__ = ["Context", "setup", "figures", "latents", "studies", "widgets"]
