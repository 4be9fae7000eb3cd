"""Interactive figures: ipywidgets controls in JupyterLab, the same figure as a static PNG under papermill.

Widgets vs. static figures. Every notebook has a parameter ``interactive = True``. The pipeline
(:mod:`galib.tools.pipeline`, i.e. papermill) always injects ``interactive = False``; so do the profiles.
:func:`show` then draws the figure once from the controls' default values and saves it. With
``interactive = True`` in a live Jupyter kernel it *also* shows ipywidgets controls whose changes
redraw the figure (``interactive_output``); the saved PNG always uses the defaults, so both modes
write the same files. If ipywidgets is missing or no IPython kernel is running, it falls back to
the static figure and says so. An explicit parameter is more robust than guessing whether a
frontend is attached (papermill runs a real kernel too, so kernel detection cannot tell).

Controls follow ipywidgets' ``interact`` abbreviations: ``(min, max)`` or ``(min, max, step)`` is a
slider (integers: ``IntSlider``, else ``FloatSlider``), a list is a dropdown of values or
``(label, value)`` pairs. Each control starts at the default of ``draw``'s keyword argument of the
same name (as ``interact`` does), else at ``defaults[name]``, else where ``interact`` would start it
(a slider at the middle of its range, snapped to the step; a dropdown at its first option).
"""
from __future__ import annotations

import inspect
from numbers import Integral, Real
from typing import Callable, Mapping

from ..studies.plotting import save


def widgets_available() -> bool:
    """True inside a running IPython kernel with ipywidgets importable."""
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    ip = get_ipython()
    return ip is not None and getattr(ip, "kernel", None) is not None


def _check(name: str, spec) -> None:
    if isinstance(spec, list):
        if not spec:
            raise ValueError(f"control {name!r}: an empty list of options")
        return
    if not (isinstance(spec, tuple) and len(spec) in (2, 3)
            and all(isinstance(v, Real) and not isinstance(v, bool) for v in spec)):
        raise ValueError(f"control {name!r}: expected (min, max), (min, max, step) or a list of "
                         f"options, got {spec!r}; the default goes in draw's signature or defaults=")
    if spec[0] > spec[1]:
        raise ValueError(f"control {name!r}: min {spec[0]!r} > max {spec[1]!r}")
    if len(spec) == 3 and not spec[2] > 0:
        raise ValueError(f"control {name!r}: step must be > 0, got {spec[2]!r} "
                         f"(tuples are (min, max, step) as in ipywidgets.interact)")


def _option_value(option):
    return option[1] if isinstance(option, tuple) else option      # (label, value) or value


def _interact_start(spec):
    """Where ``interact`` starts a control without a default: the middle of a slider's range
    (integer division for integer sliders), snapped down to the step; a dropdown's first option."""
    if isinstance(spec, list):
        return _option_value(spec[0])
    lo, hi = spec[0], spec[1]
    integer = all(isinstance(v, Integral) for v in spec)
    value = lo + (hi - lo) // 2 if integer else lo + (hi - lo) / 2
    if len(spec) == 3:
        value = lo + int((value - lo) / spec[2]) * spec[2]
    return value


def _signature_defaults(draw: Callable) -> dict:
    try:
        params = inspect.signature(draw).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}


def default_values(controls: Mapping, draw: Callable | None = None,
                   defaults: Mapping | None = None) -> dict:
    """The value each control starts at: ``draw``'s default for that keyword, else
    ``defaults[name]``, else ``interact``'s start (middle of a slider, first option)."""
    sig = _signature_defaults(draw) if draw is not None else {}
    out = {}
    for name, spec in controls.items():
        _check(name, spec)
        if name in sig:
            out[name] = sig[name]
        elif defaults and name in defaults:
            out[name] = defaults[name]
        else:
            out[name] = _interact_start(spec)
    return out


def _control(name: str, spec, value):
    """The ipywidgets control ``interact`` builds for ``spec``, set to ``value``, that redraws on
    release (``continuous_update=False``: each figure takes a moment)."""
    from ipywidgets.widgets.interaction import interactive
    widget = interactive.widget_from_abbrev(spec, value)
    widget.description = name
    widget.style = {"description_width": "initial"}
    if hasattr(widget, "continuous_update"):
        widget.continuous_update = False
    return widget


def show(draw: Callable[..., object], interactive: bool = False, out_path=None,
         defaults: Mapping | None = None, **controls):
    """Draw ``draw(**start values)`` and save it to ``out_path``; with ``interactive`` also show
    widgets.

    ``controls`` map keyword names of ``draw`` to ``(min, max)`` / ``(min, max, step)`` for a
    slider or a list of options — values or ``(label, value)`` pairs — for a dropdown, exactly as
    ``ipywidgets.interact`` reads them. Start values: see :func:`default_values`.
    Returns the default figure in static mode (a cell ending in it displays it), else ``None``.
    """
    values = default_values(controls, draw, defaults)
    fig = draw(**values)
    save(fig, out_path)
    if not interactive:
        return fig
    if not widgets_available():
        print("[galib] ipywidgets or a live kernel not available: showing the static figure")
        return fig
    import ipywidgets as w
    from IPython.display import display
    ctrls = {k: _control(k, spec, values[k]) for k, spec in controls.items()}

    def redraw(**kw):
        display(draw(**kw))
    out = w.interactive_output(redraw, ctrls)
    display(w.VBox([w.HBox(list(ctrls.values())), out]))
    return None
