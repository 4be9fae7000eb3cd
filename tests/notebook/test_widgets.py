"""Fast checks of galib.notebook.widgets: the static fallback of show and where controls start.

Controls read as ``ipywidgets.interact`` reads them: ``(min, max[, step])`` is a slider, a list a
dropdown; the start value is ``draw``'s default for that keyword (else ``defaults=``, else where
``interact`` starts it)."""
from __future__ import annotations

import pytest
import torch
from matplotlib.figure import Figure

from galib.notebook import widgets
from galib.studies import traversals


def test_explore_static_fallback(tmp_path):
    calls = []

    def draw(index=3, name="a"):
        calls.append((index, name))
        return traversals.plot_magnitude_maps({"|z|": torch.rand(7, 7)})

    fig = widgets.show(draw, False, tmp_path / "x.png", index=(0, 9),
                       name=[("first", "a"), ("second", "b")])
    assert isinstance(fig, Figure) and (tmp_path / "x.png").is_file()
    assert calls == [(3, "a")]                                   # drawn once, from the defaults
    # outside a live kernel, interactive=True falls back to the same static figure
    assert isinstance(widgets.show(draw, True, None, index=(0, 9, 1)), Figure)


def test_start_values_follow_interact():
    def draw(a, b=0.25, c="y", d=None):
        return None
    controls = {"a": (0, 10), "b": (0.0, 1.0, 0.05), "c": ["x", "y"],
                "d": [("top", None), ("one", 1)]}
    assert widgets.default_values(controls, draw) == {"a": 5, "b": 0.25, "c": "y", "d": None}
    assert widgets.default_values(controls, draw, defaults={"a": 2})["a"] == 2
    # without a default: the middle of the range snapped to the step, the first option
    assert widgets.default_values({"a": (0, 7), "f": (0.0, 1.0, 0.3), "o": [("l", 4), ("m", 5)]}) == \
        {"a": 3, "f": pytest.approx(0.3), "o": 4}


@pytest.mark.parametrize("bad", [(0, 10, 0), (0, 10, 2, 5), (5, 1), (0,), ("a", "b"), []])
def test_malformed_controls_are_errors(bad):
    with pytest.raises(ValueError, match="control 'x'"):
        widgets.default_values({"x": bad})


def test_controls_are_what_interact_builds():
    pytest.importorskip("ipywidgets")
    from ipywidgets.widgets.interaction import interactive
    for spec in [(0, 10), (0, 10, 3), (0.0, 1.0), (0.0, 1.0, 0.3), ["x", "y"], [("t", None), ("c", 1)]]:
        start = widgets.default_values({"x": spec})["x"]          # computed without ipywidgets
        w = widgets._control("x", spec, start)
        ref = interactive.widget_from_abbrev(spec)                # interact's own, no default
        assert type(w) is type(ref) and w.value == ref.value and w.description == "x"
        if hasattr(ref, "step"):
            assert (w.min, w.max, w.step) == (ref.min, ref.max, ref.step)
            assert w.continuous_update is False                  # redraw on release only
    assert widgets._control("x", (0, 99), 7).value == 7          # draw's default wins
