"""Glue for the notebooks: parameters → config and data, metrics files, widgets with a static fallback.

Widgets vs. static figures. Every notebook has a parameter ``interactive = True``. The pipeline
(:mod:`galib.pipeline`, i.e. papermill) always injects ``interactive = False``; so do the profiles.
:func:`explore` then draws the figure once from the controls' default values and saves it. With
``interactive = True`` in a live Jupyter kernel it *also* shows ipywidgets controls whose changes
redraw the figure (``interactive_output``); the saved PNG always uses the defaults, so both modes
write the same files. If ipywidgets is missing or no IPython kernel is running, it falls back to
the static figure and says so. An explicit parameter is more robust than guessing whether a
frontend is attached (papermill runs a real kernel too, so kernel detection cannot tell).
"""
from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import torch

from .data import DataSplits, load_dataset
from .train import TrainConfig, save_json

_LITERALS = (int, float, str, bool, type(None), list, tuple, dict)


# ----------------------------------------------------------------------------- parameters
def collect_params(namespace: Mapping, before: set | frozenset) -> dict:
    """The parameters a notebook defined (names new since ``before`` holding plain literals)."""
    return {k: v for k, v in namespace.items()
            if k not in before and not k.startswith("_") and isinstance(v, _LITERALS)}


def train_config(params: Mapping, **overrides) -> TrainConfig:
    """``TrainConfig`` from the notebook parameters that are config fields (plus ``overrides``)."""
    names = {f.name for f in fields(TrainConfig)}
    d = {k: v for k, v in params.items() if k in names}
    d.update(overrides)
    return TrainConfig.from_dict(d).validate()


def load_data(dataset: str = "auto", data_root: str | None = None, seed: int = 42,
              max_train: int | None = None, max_test: int | None = None,
              val_fraction: float = 0.2, verbose: bool = True) -> DataSplits:
    """:func:`galib.data.load_dataset` with the notebooks' parameter names."""
    return load_dataset(dataset, data_root, seed=seed, max_train=max_train, max_test=max_test,
                        val_fraction=val_fraction, verbose=verbose)


def class_names(data: DataSplits) -> list[str]:
    """Human-readable class names for the dataset (digits, or Fashion-MNIST's garments)."""
    base = _base_name(data.name)
    if base == "fashion-mnist":
        return ["T-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker",
                "bag", "boot"][: data.num_classes]
    if base.startswith("shapes3d"):
        from .datasets_extra import SHAPE_CLASSES
        return list(SHAPE_CLASSES)[: data.num_classes]
    return [str(i) for i in range(data.num_classes)]


def is_digits(data: DataSplits) -> bool:
    """Whether the classes are the digits 0-9 (``mnist``, ``glyphs`` and wrapped versions)."""
    return _base_name(data.name) in ("mnist", "glyphs")


def _base_name(name: str) -> str:
    while name.startswith("blocked:"):                             # wrapped datasets keep classes
        name = name[len("blocked:"):]
    return name


def resolve_path(path: str | os.PathLike) -> Path:
    p = Path(path).expanduser()
    p.mkdir(parents=True, exist_ok=True)
    return p.resolve()


# ----------------------------------------------------------------------------- metrics files
def jsonable(obj):
    """Tensors, numpy scalars/arrays, tuples and Paths → plain JSON types (nan stays nan)."""
    if isinstance(obj, torch.Tensor):
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_metrics(metrics: Mapping, fig_dir: str | os.PathLike, stem: str) -> Path:
    """Write ``{fig_dir}/{stem}/metrics.json`` atomically; returns its path."""
    path = Path(fig_dir) / stem / "metrics.json"
    save_json(jsonable(metrics), path)
    return path


# ----------------------------------------------------------------------------- widgets
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


def explore(draw: Callable[..., object], interactive: bool = False, out_path=None, **controls):
    """Draw ``draw(**defaults)`` and save it to ``out_path``; with ``interactive`` also show widgets.

    ``controls`` map keyword names of ``draw`` to ``(min, max, default)`` or
    ``(min, max, step, default)`` for sliders, or a list of options — values or
    ``(label, value)`` pairs — for a dropdown (default: the first).
    Returns the default figure in static mode (a cell ending in it displays it), else ``None``.
    """
    from .viz import save
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


def flat_scalars(d: Mapping, prefix: str = "", skip: tuple[str, ...] = ("per_element",)) -> dict:
    """Nested dict → ``{"a.b": number}`` for a ``summary`` block; per-element entries (keys in
    ``skip`` or containing ``/``, e.g. ``recon_mse/90°``) and non-numbers are left out."""
    out = {}
    for k, v in d.items():
        if k in skip or "/" in str(k):
            continue
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flat_scalars(v, key + ".", skip))
        elif isinstance(v, (int, float, np.generic)) and not isinstance(v, bool):
            out[key] = float(v) if isinstance(v, (float, np.floating)) else int(v)
    return out
