"""Interactive figures: ipywidgets controls in JupyterLab, the same figure as a static PNG under papermill.

Widgets vs. static figures. Every notebook has a parameter ``interactive = True``. The pipeline
(:mod:`galib.tools.pipeline`, i.e. papermill) always injects ``interactive = False``; so do the profiles.
:func:`show` then draws the figure once from the controls' default values and saves it. With
``interactive = True`` in a live Jupyter kernel it *also* shows ipywidgets controls whose changes
redraw the figure (``interactive_output``); the saved PNG always uses the defaults, so both modes
write the same files. If ipywidgets is missing or no IPython kernel is running, it falls back to
the static figure and says so. An explicit parameter is more robust than guessing whether a
frontend is attached (papermill runs a real kernel too, so kernel detection cannot tell).
"""
from __future__ import annotations

from typing import Callable, Mapping

from .figures import save


def widgets_available() -> bool:
    """True inside a running IPython kernel with ipywidgets importable."""
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    ip = get_ipython()
    return ip is not None and getattr(ip, "kernel", None) is not None


def _control(name: str, spec):
    import ipywidgets as w
    style = {"description_width": "initial"}
    if isinstance(spec, list):                                     # options; default = first
        return w.Dropdown(options=spec, value=_option_value(spec[0]), description=name, style=style)
    lo, hi, default = spec[0], spec[1], spec[-1]
    if all(isinstance(v, int) and not isinstance(v, bool) for v in (lo, hi, default)):
        return w.IntSlider(value=default, min=lo, max=hi, description=name, style=style,
                           continuous_update=False)
    step = spec[2] if len(spec) == 4 else (hi - lo) / 20
    return w.FloatSlider(value=default, min=lo, max=hi, step=step, description=name, style=style,
                         continuous_update=False)


def _option_value(option):
    return option[1] if isinstance(option, tuple) else option      # (label, value) or value


def default_values(controls: Mapping) -> dict:
    """The value each control starts at: first option of a list, last entry of a tuple."""
    return {k: (_option_value(v[0]) if isinstance(v, list) else v[-1]) for k, v in controls.items()}


def show(draw: Callable[..., object], interactive: bool = False, out_path=None, **controls):
    """Draw ``draw(**defaults)`` and save it to ``out_path``; with ``interactive`` also show widgets.

    ``controls`` map keyword names of ``draw`` to ``(min, max, default)`` or
    ``(min, max, step, default)`` for sliders, or a list of options — values or
    ``(label, value)`` pairs — for a dropdown (default: the first).
    Returns the default figure in static mode (a cell ending in it displays it), else ``None``.
    """
    fig = draw(**default_values(controls))
    save(fig, out_path)
    if not interactive:
        return fig
    if not widgets_available():
        print("[galib] ipywidgets or a live kernel not available: showing the static figure")
        return fig
    import ipywidgets as w
    from IPython.display import display
    ctrls = {k: _control(k, spec) for k, spec in controls.items()}

    def redraw(**kw):
        display(draw(**kw))
    out = w.interactive_output(redraw, ctrls)
    display(w.VBox([w.HBox(list(ctrls.values())), out]))
    return None
