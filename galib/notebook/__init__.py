"""What the notebooks call besides their study (:mod:`galib.studies`): ``setup`` (first cell) and
``Context.finish`` (last cell), ``widgets.show`` (a figure with ipywidgets controls, or its static
PNG) and ``latents`` (pairs, orbits, swaps, traversals).
"""
from . import latents, widgets
from .context import Context, setup

__all__ = ["Context", "setup", "latents", "widgets"]
