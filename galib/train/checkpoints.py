"""Checkpoint files: written durably, read safely, checked for damage.

A checkpoint is a plain dict of tensors and literals in torch's zip format. It is serialised in
memory and written with :func:`galib.io.write_bytes` (temporary file, ``fsync``, rename), so a
crash leaves the old file and a full disk is reported as such, naming the path. Reading checks
the zip archive's CRC-32 of every member first (flipped bytes, truncation and empty files are
caught, naming the file), then unpickles with ``weights_only=True`` and checks the keys galib
needs. Errors never suggest loading unsafely.
"""
from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import torch

from ..io import write_bytes
from .config import MODEL_FIELDS, TrainConfig, check_compatible, model_from_config, upgrade_config, with_legacy

# What a checkpoint must hold to rebuild its model, and to resume training from it.
MODEL_KEYS = ("config", "model", "image_shape")
RESUME_KEYS = MODEL_KEYS + ("optimizer", "epoch", "history", "best_val")


class CheckpointError(ValueError):
    """A checkpoint file that is empty, truncated, corrupt, or not a galib checkpoint; the
    message names the file (``problem``: the cause alone)."""
    problem: str = ""


def checkpoint_bytes(state: dict) -> memoryview:
    """``state`` serialised as ``torch.save`` would write it to a file."""
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getbuffer()


def write_checkpoint(path: Path, state: dict | memoryview | bytes) -> Path:
    """Write a checkpoint (a state dict, or bytes from :func:`checkpoint_bytes`) atomically."""
    return write_bytes(path, state if isinstance(state, (bytes, memoryview)) else checkpoint_bytes(state))


def _zip_problem(path: Path) -> str | None:
    """Why ``path`` is not an intact torch zip archive, or None."""
    size = path.stat().st_size
    if size == 0:
        return "empty (0 bytes)"
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, RuntimeError) as err:
        return f"not an intact checkpoint archive ({size} bytes, truncated or not a torch file: {err})"
    if bad is not None:
        return f"corrupt: archive member {bad!r} fails its CRC-32 check (the bytes changed on disk)"
    return None


def _load_reason(err: Exception) -> str:
    """A short cause for a failed safe load (never torch's advice to load unsafely)."""
    if isinstance(err, pickle.UnpicklingError):
        return "it holds Python objects other than tensors and plain values, which galib never writes"
    first = (str(err).splitlines() or [""])[0]
    if "weights_only" in first or not first:
        first = "unreadable content"
    return f"{type(err).__name__}: {first[:200]}"


def read_checkpoint(path: str | Path, keys=MODEL_KEYS, map_location="cpu") -> dict:
    """The checkpoint dict in ``path``, after checking it is intact and holds ``keys``.

    Raises ``FileNotFoundError`` if there is nothing at ``path`` and :class:`CheckpointError`
    (naming the file and the cause) if it is a folder, empty, truncated, corrupt, unsafe or lacks a
    key.
    """
    path = Path(path)
    if path.is_dir():
        err = CheckpointError(f"checkpoint {path} is a folder, not a checkpoint file; move it away "
                              f"(or pass the .pt file inside it)")
        err.problem = "a folder, not a checkpoint file"
        raise err
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    problem = _zip_problem(path)
    if problem is None:
        try:
            ckpt = torch.load(path, map_location=map_location, weights_only=True)
        except Exception as err:                               # noqa: BLE001 (any cause: name the file)
            problem = f"not loadable ({_load_reason(err)})"
    if problem is None:
        missing = [k for k in keys if not isinstance(ckpt, dict) or k not in ckpt]
        if missing:
            problem = f"not a galib checkpoint: it lacks {missing}"
    if problem is not None:
        err = CheckpointError(f"checkpoint {path} is {problem}")
        err.problem = problem
        raise err
    return upgrade_checkpoint(ckpt)


def upgrade_checkpoint(ckpt: dict) -> dict:
    """A checkpoint as an earlier galib wrote it, in today's form: its config in today's names
    (:func:`~galib.train.config.upgrade_config`); an autoencoder of commit 4624a4a
    (``objective="ae"``, today ``mask="none"``) carried mask logits it never used, which leave its
    weights and, by their position among the parameters, its optimizer state. Today's
    checkpoints come back unchanged."""
    config = ckpt.get("config")
    if not isinstance(config, dict):
        return ckpt
    ckpt = {**ckpt, "config": upgrade_config(config)}
    if config.get("objective") == "ae" and "mask.logits" in ckpt.get("model", {}):
        names = list(ckpt["model"])       # the paper model has no buffers: the parameters, in order
        ckpt["model"] = {k: v for k, v in ckpt["model"].items() if k != "mask.logits"}
        if isinstance(ckpt.get("optimizer"), dict):
            ckpt["optimizer"] = _drop_parameter(ckpt["optimizer"], names.index("mask.logits"))
    return ckpt


def _drop_parameter(optimizer: dict, index: int) -> dict:
    """An optimizer state dict of one parameter group without parameter ``index`` (later indices
    shift down by one)."""
    shift = {i: i - (i > index) for group in optimizer["param_groups"] for i in group["params"] if i != index}
    groups = [{**g, "params": [shift[i] for i in g["params"] if i != index]} for g in optimizer["param_groups"]]
    return {**optimizer, "param_groups": groups,
            "state": {shift[i]: s for i, s in optimizer["state"].items() if i != index}}


def config_of(ckpt: dict, path) -> TrainConfig:
    """The ``TrainConfig`` a checkpoint was trained with (legacy defaults filled in)."""
    try:
        return TrainConfig.from_dict(with_legacy(ckpt["config"]))
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"checkpoint {path} holds a configuration this galib cannot use: "
                              f"{err}") from None


def load_checkpoint(path: str | Path, cfg: TrainConfig | None = None,
                    map_location: str | torch.device = "cpu"):
    """``(model, config, checkpoint dict)``; with ``cfg`` the model-defining fields must agree."""
    ckpt = read_checkpoint(path, MODEL_KEYS, map_location)
    saved = config_of(ckpt, path)
    if cfg is not None:
        check_compatible(ckpt["config"], cfg, MODEL_FIELDS, path)
    model = model_from_config(saved, tuple(ckpt["image_shape"]))
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as err:
        raise CheckpointError(f"checkpoint {path}: its weights do not fit the model its config "
                              f"builds ({str(err).splitlines()[0]})") from None
    return model.eval(), saved, ckpt
