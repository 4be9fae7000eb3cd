"""Features of a trained model for linear probes, and the three probe protocols (:func:`probe_model`).

Features: ``pixels``, the whole latent ``z``, its parts ``z_i`` / ``z_v`` (hard mask), and
``orbit`` — invariants of the orbit ``{Phi_g z_v : g}`` (:func:`galib.evaluation.probe.orbit_invariants`).

``split`` says how the latent is divided: ``"mask"`` (the model's ALD mask) or ``"full"`` (the whole
latent is treated as variant, ``z_v = z`` and ``z_i = 0``) — the right reading of a plain
autoencoder (``objective='ae'``), which has no mask: its features that need ``z_i`` or a mask are
``None`` and its orbit features are those of the full ``z``.
"""
from __future__ import annotations

import math

import torch

from ..datasets import DataSplits, ImageSet
from ..devices import model_device
from ..groups import Group, get_group
from ..models import split_latent
from ..pairs import images_of
from .probe import evaluate_protocols, orbit_invariants

FEATURES = ("pixels", "z", "z_i", "z_v", "orbit")
PROTOCOLS = ("a", "b", "c")     # train/test: upright/upright, upright/transformed, transformed/transformed
SPLITS = ("mask", "full")
PROBE_FIT = {"max_iter": 30}     # L-BFGS iterations per l2: ~0.5% from converged, 3-4x faster


def resolve_view(model, group, split):
    """``(group, latent action, hard mask (C,) or None)`` for ``model`` evaluated under ``split``."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
    if group is None or get_group(group).name == model.group.name:
        group, act = model.group, model.act                 # may be a learned latent action
    else:
        group = get_group(group)
        act = group.act_latent
    mask = None if split == "full" else model.hard_mask()
    return group, act, mask


def view_split(model, z: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(z_i, z_v)`` as evaluated: the model's invariant code under the hard ``mask``, or
    ``(0, z)`` without a mask (``split='full'``)."""
    z_i, z_v = split_latent(z, mask)
    return (z_i if mask is None else model.invariant_code(z_i)), z_v


def repeat_element(element: torch.Tensor, n: int, device) -> torch.Tensor:
    """One group element as a batch of ``n`` copies ``(n, ...)`` on ``device``."""
    return element.unsqueeze(0).expand(n, *element.shape).contiguous().to(device)


@torch.no_grad()
def encode_images(model, data: ImageSet, group: Group | None = None, g: torch.Tensor | None = None,
                  batch_size: int = 512, max_images: int | None = None) -> torch.Tensor:
    """Latents ``z = E(T_g x)`` (``E(x)`` if ``g`` is None) of the first ``max_images`` images,
    ``(N, C, *latent_spatial)`` on the model's device."""
    device, was_training = model_device(model), model.training
    model.eval()
    data = data.head(max_images)
    n = len(data)
    out = []
    for start in range(0, n, batch_size):
        idx = torch.arange(start, min(start + batch_size, n))
        out.append(model.encode(images_of(data, idx, group, None if g is None else g[idx], device)))
    model.train(was_training)
    return torch.cat(out)


@torch.no_grad()
def coordinate_orbit_representatives(act, elements: torch.Tensor, shape, device="cpu"):
    """Bool ``(C, *spatial)``: one latent coordinate per orbit of coordinates, or ``None``.

    When every ``Phi_g`` merely permutes latent coordinates within each channel (rot90, flips,
    cyclic shifts), the orbit invariants at coordinates ``p`` and ``Phi_g p`` are equal (the orbit
    sequence is only re-ordered), so one representative per coordinate orbit keeps all the
    information. Found by acting on a map of coordinate ids; ``None`` for any other action
    (interpolating or learned ones), which then keeps every coordinate.
    """
    n = math.prod(shape)
    ids = torch.arange(n, dtype=torch.float64, device=device).view(1, *shape)   # (1, C, h, w)
    try:
        moved = torch.stack([act(ids, repeat_element(e, 1, device)).reshape(-1) for e in elements])
    except (RuntimeError, TypeError, ValueError):                    # e.g. float32-only modules
        return None
    ref = ids.reshape(-1)
    per_channel = n // shape[0]
    if moved.shape != (len(elements), n) or not all(
            torch.equal(m.sort().values, ref) for m in moved) or not torch.equal(
            moved.div(per_channel, rounding_mode="floor"), ref.div(per_channel, rounding_mode="floor")
            .expand_as(moved)):
        return None                                                  # not a channel-wise permutation
    # Phi_g z at j reads z at moved[g, j]: {moved[g, j] : g} is the orbit of j; keep its minimum.
    return (moved.min(0).values == ref).view(shape)


@torch.no_grad()
def features_from_latent(model, z: torch.Tensor, name: str, group: Group | str | None = None,
                         split: str = "mask", orbit_kind: str | None = None,
                         batch_size: int = 512, n_eval: int = 8,
                         distinct: bool = True) -> torch.Tensor | None:
    """Probe feature ``name`` (``z``, ``z_i``, ``z_v`` or ``orbit``) of latents ``z``, ``(N, F)``.

    ``z_i``/``z_v`` keep only their own channels; ``orbit`` stacks ``{Phi_g z_v : g}`` over the
    evaluation elements, ``(N, G, C_v, h, w)``, keeps the variant channels and maps it through
    :func:`galib.evaluation.probe.orbit_invariants` (kind: the group's ``orbit_kind()`` unless
    given); with ``distinct`` it keeps one latent position per coordinate orbit
    (:func:`coordinate_orbit_representatives`: 13 of 49 positions for C4 on 7x7) since the others
    repeat the same columns exactly. ``None`` when the feature is undefined (``z_i``/``z_v`` under
    ``split='full'``) or empty.
    """
    group, act, mask = resolve_view(model, group, split)
    if name == "z":
        return z.flatten(1)
    if name in ("z_i", "z_v"):
        if mask is None:
            return None
        keep = (mask > 0) if name == "z_v" else (mask == 0)
        part = z if name == "z_v" else view_split(model, z, mask)[0]   # z_i: the invariant code
        return part[:, keep].flatten(1) if bool(keep.any()) else None
    if name != "orbit":
        raise ValueError(f"unknown latent feature {name!r}; choose z, z_i, z_v or orbit")
    keep = torch.ones(z.shape[1], dtype=torch.bool, device=z.device) if mask is None else mask > 0
    if not bool(keep.any()):
        return None
    kind = orbit_kind or group.orbit_kind()
    els, _ = group.evaluation_grid(n_eval)
    reps = coordinate_orbit_representatives(act, els, z.shape[1:], z.device) if distinct else None
    cols = None if reps is None else reps[keep].reshape(-1)             # (C_v*h*w,) bool
    out = []
    for start in range(0, len(z), batch_size):
        _, zv = split_latent(z[start:start + batch_size], mask)          # (B, C, h, w)
        orbit = torch.stack([act(zv, repeat_element(e, len(zv), zv.device)) for e in els], 1)
        orbit = orbit[:, :, keep].flatten(2)                             # (B, G, C_v*h*w)
        out.append(orbit_invariants(orbit if cols is None else orbit[:, :, cols], kind))
    return torch.cat(out)


def compute_features(model, data: ImageSet, features=FEATURES, group: Group | str | None = None,
                     g: torch.Tensor | None = None, split: str = "mask", orbit_kind: str | None = None,
                     batch_size: int = 512, max_images: int | None = None,
                     distinct: bool = True) -> dict:
    """``{feature: (N, F) tensor or None}`` for the images of ``data`` (transformed by ``g`` (N,…)
    if given); see :func:`features_from_latent`. ``pixels`` needs no model; ``model=None`` allows
    only ``pixels``."""
    if model is None and set(features) - {"pixels"}:
        raise ValueError("without a model only the 'pixels' feature is available")
    group = get_group(group) if group is not None else (model.group if model is not None else None)
    if g is not None and group is None:
        raise ValueError("transforming images needs a group")
    data = data.head(max_images)
    n = len(data)
    out = {}
    if "pixels" in features:
        out["pixels"] = images_of(data, torch.arange(n), group, None if g is None else g[:n]).flatten(1)
    latent = [f for f in features if f != "pixels"]
    if latent:
        z = encode_images(model, data, group, g, batch_size, n)
        for f in latent:
            out[f] = features_from_latent(model, z, f, group, split, orbit_kind, batch_size,
                                          distinct=distinct)
    return out


# ----------------------------------------------------------------------------- probe_model
def probe_sets(splits: DataSplits, max_train: int | None = None,
               max_test: int | None = None) -> dict[str, ImageSet]:
    """The images a probe uses: the first ``max_train`` training images, validation capped at a
    quarter of that, the first ``max_test`` test images."""
    n_val = None if max_train is None else max(1, math.ceil(max_train / 4))
    return {"train": splits.train.head(max_train), "val": splits.val.head(n_val),
            "test": splits.test.head(max_test)}


def _probe_features(model, f: str, sets: dict, latents: dict, elements: dict, group, split,
                    orbit_kind, batch_size, distinct) -> dict | None:
    """``{set name (``_t``: transformed): (N, F)}`` for feature ``f``; ``None`` if undefined."""
    if f == "pixels":
        feats = {k: images_of(d, slice(None)).flatten(1) for k, d in sets.items()}
        feats.update({k + "_t": images_of(d, slice(None), group, elements[k]).flatten(1)
                      for k, d in sets.items()})
        return feats
    feats = {k: features_from_latent(model, z, f, group, split, orbit_kind, batch_size,
                                     distinct=distinct) for k, z in latents.items()}
    return None if any(v is None for v in feats.values()) else feats


def probe_model(model, splits: DataSplits, features=FEATURES, seed: int = 0,
                max_train: int | None = None, max_test: int | None = None,
                group: Group | str | None = None, split: str = "mask",
                orbit_kind: str | None = None, batch_size: int = 512,
                fit_kwargs: dict | None = None, distinct: bool = True) -> dict:
    """Linear-probe accuracy of each feature under protocols a, b, c.

    (a) probe trained and tested on upright images; (b) the same probe tested on test images each
    transformed by a random group element; (c) probe trained (and validated) on transformed
    training images, tested on transformed test images. Images: :func:`probe_sets`; random
    elements drawn from ``seed``. Returns ``{feature: {"a", "b", "c", "l2_upright",
    "l2_transformed", "val_upright", "val_transformed", "dim"}}``; features that are undefined for
    this model/split are left out. ``model=None`` probes ``pixels`` only (``group`` then defaults
    to ``c4``). ``fit_kwargs`` (default ``PROBE_FIT``) go to :func:`galib.evaluation.probe.fit_probe`.
    """
    unknown = set(features) - set(FEATURES)
    if unknown:
        raise ValueError(f"unknown features {sorted(unknown)}; choose from {FEATURES}")
    if model is None:
        features = [f for f in features if f == "pixels"]
        group = get_group(group or "c4")
    else:
        group = get_group(group) if group is not None else model.group
    sets = probe_sets(splits, max_train, max_test)
    gen = torch.Generator().manual_seed(seed)
    elements = {k: group.sample(len(d), gen) for k, d in sets.items()}   # one random g per image
    latents = {}
    if model is not None and set(features) - {"pixels"}:
        for k, d in sets.items():
            latents[k] = encode_images(model, d, group, None, batch_size)
            latents[k + "_t"] = encode_images(model, d, group, elements[k], batch_size)
    results = {}
    for f in features:
        feats = _probe_features(model, f, sets, latents, elements, group, split, orbit_kind,
                                batch_size, distinct)
        if feats is None:
            continue
        y = {k: d.labels.to(feats["train"].device) for k, d in sets.items()}
        kw = PROBE_FIT if fit_kwargs is None else fit_kwargs
        res = evaluate_protocols(feats["train"], y["train"], feats["val"], y["val"],
                                 feats["test"], y["test"], feats["train_t"], feats["val_t"],
                                 feats["test_t"], **kw)
        res["dim"] = int(feats["train"].shape[1])
        results[f] = res
        del feats
    return results
