"""Fast checks of galib.notebook.widgets: the static fallback of show and the control defaults."""
from __future__ import annotations

import torch
from matplotlib.figure import Figure

from galib.notebook import figures, widgets


def test_explore_static_fallback(tmp_path):
    calls = []

    def draw(index=0, name=None):
        calls.append((index, name))
        return figures.plot_magnitude_maps({"|z|": torch.rand(7, 7)})

    fig = widgets.show(draw, False, tmp_path / "x.png", index=(0, 9, 3),
                      name=[("first", "a"), ("second", "b")])
    assert isinstance(fig, Figure) and (tmp_path / "x.png").is_file()
    assert calls == [(3, "a")]                                   # drawn once, from the defaults
    # outside a live kernel, interactive=True falls back to the same static figure
    assert isinstance(widgets.show(draw, True, None, index=(0, 9, 1)), Figure)
    assert widgets.default_values({"a": (0.0, 1.0, 0.1, 0.5), "b": ["x", "y"]}) == {"a": 0.5, "b": "x"}
