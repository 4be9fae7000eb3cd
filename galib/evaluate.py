"""Measure a trained model the same way everywhere: transformed reconstruction, latent
equivariance/invariance, latent energy, mask statistics (:func:`evaluate_model`) and linear probes
on pixels, latents and orbit invariants under three protocols (:func:`probe_model`).

Thin wrappers around the pure functions of :mod:`galib.metrics` and :mod:`galib.probe`: they batch
the data, run the model under ``no_grad`` with the *hard* mask, and return flat dicts of
JSON-serialisable scores. Everything is deterministic for a given ``seed``.

``split`` says how the latent is divided: ``"mask"`` (the model's ALD mask) or ``"full"`` (the whole
latent is treated as variant, ``z_v = z`` and ``z_i = 0``) — the right reading of a plain
autoencoder (``objective='ae'``), which has no mask: its scores that need ``z_i`` or a mask are
``None`` and its orbit features are those of the full ``z``.
"""
from __future__ import annotations

import math

import torch

from . import metrics as M
from .data import DataSplits, ImageSet, make_pairs, to_float
from .groups import Group, get_group
from .probe import evaluate_protocols, orbit_invariants

FEATURES = ("pixels", "z", "z_i", "z_v", "orbit")
PROTOCOLS = ("a", "b", "c")     # train/test: upright/upright, upright/transformed, transformed/transformed
SPLITS = ("mask", "full")


# ----------------------------------------------------------------------------- helpers
def evaluation_elements(group: Group, n: int = 8, seed: int = 0) -> tuple[torch.Tensor, list[str]]:
    """Elements to average and report over: every element of a finite group, else the group's
    evaluation grid ``eval_elements(n)`` (or, lacking one, ``n`` elements sampled with ``seed``)."""
    if group.finite and hasattr(group, "elements"):
        return group.elements(), group.element_names()
    if hasattr(group, "eval_elements"):
        els = group.eval_elements(n)
        names = group.eval_names(n) if hasattr(group, "eval_names") else None
    else:
        els, names = group.sample(n, torch.Generator().manual_seed(seed)), None
    if names is None:
        names = [",".join(f"{v:.4g}" for v in e.reshape(-1).tolist()) for e in els]
    return els, list(names)


def default_orbit_kind(group: Group) -> str:
    """``'fourier'`` for a cyclic group whose elements are ordered by powers of element 1 (as C4's
    are: table[1, k] = k + 1 mod G), where the orbit is then only ever cyclically shifted; else
    ``'moments'`` (invariant to any permutation of the orbit)."""
    table = getattr(group, "table", None)
    if table is not None and len(group) > 1:
        k = torch.arange(len(group))
        if torch.equal(table[1].cpu(), (k + 1) % len(group)):
            return "fourier"
    return "moments"


def _device(model) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _resolve(model, group, split):
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


def _split(z: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(z_i, z_v)`` with the hard mask; ``mask=None`` means all channels variant."""
    if mask is None:
        return torch.zeros_like(z), z
    m = mask.view(1, -1, *([1] * (z.dim() - 2)))            # (1, C, 1, 1)
    return (1 - m) * z, m * z


def _sq(t: torch.Tensor) -> float:
    """Sum of squares, in float64 where the device has it (MPS does not)."""
    return float(_wide(t).pow(2).sum()) if torch.is_tensor(t) else 0.0


def _wide(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.float32 if t.device.type == "mps" else torch.float64)


def _root_ratio(num: float, den: float, eps: float = 1e-12) -> float:
    """``sqrt(num / den)`` with ``0/0 = 0`` (as :func:`galib.metrics.relative_error`)."""
    if den <= eps:
        return 0.0 if num <= eps else math.inf
    return math.sqrt(max(num, 0.0) / den)


def _repeat(element: torch.Tensor, n: int, device) -> torch.Tensor:
    return element.unsqueeze(0).expand(n, *element.shape).contiguous().to(device)   # (n, ...)


def _images(data: ImageSet, idx, group: Group | None = None, g: torch.Tensor | None = None,
            device="cpu") -> torch.Tensor:
    """Float images ``(B, 1, *spatial)``, transformed by ``g`` if given, then occluded if the set
    has an occluder (the order :func:`galib.data.make_pairs` uses)."""
    images = data.images[idx].to(device)
    if g is None:
        x = to_float(images)
        return x if data.occlude is None else data.occlude(x)
    return make_pairs(images, group, g=g.to(device), occlude=data.occlude)[1]


# ----------------------------------------------------------------------------- evaluate_model
@torch.no_grad()
def evaluate_model(model, data: ImageSet | DataSplits, group: Group | str | None = None, seed: int = 0,
                   batch_size: int = 512, split: str = "mask", max_images: int | None = None,
                   n_eval: int = 8) -> dict:
    """Scores of ``model`` on every image of ``data`` paired with every evaluation element ``g``.

    Keys (``<e>`` = element name, e.g. ``90°``): ``recon_mse``, ``recon_psnr``, ``recon_ssim`` of
    ``D(z_i + Phi_g z_v(x))`` vs ``T_g x`` and ``recon_*/<e>``; ``equivariance_error`` (mean of
    ``‖Phi_g z_v(x) − z_v(T_g x)‖/‖z_v(T_g x)‖``), ``equivariance_error_max``,
    ``equivariance_error/<e>``, ``equivariance_n_zero_target``; the same for ``invariance_error``
    (``‖z_i(x) − z_i(T_g x)‖/‖z_i(x)‖``); ``equivariance_error_centred`` and
    ``invariance_error_centred``, ``sqrt(Σ‖error‖² / Σ‖target − mean target‖²)`` over all pairs
    (the target's mean over images, per element, removed: 0 is exact, about √2 is no better than
    pairing random images — the plain relative errors look small whenever a large input-independent
    offset dominates the norm); ``energy_share_zi`` (``Σz_i²/Σz²``); mask statistics
    ``variant_fraction``, ``n_variant``, ``variant_channels``, ``mask_probs`` (sigmoid(alpha)),
    ``n_unsettled`` (channels with ``|p − τ| < 0.05``), ``tau``; and ``group``, ``split``,
    ``elements``, ``n_images``, ``n_pairs``. Under ``split='full'`` the ``z_i``/mask scores are
    ``None``. Overall means weight every element equally (each sees the same images).
    A ``DataSplits`` is evaluated on its test set.
    """
    if isinstance(data, DataSplits):
        data = data.test
    group, act, mask = _resolve(model, group, split)
    els, names = evaluation_elements(group, n_eval, seed)
    device, was_training = _device(model), model.training
    model.eval()
    n = len(data) if max_images is None else min(max_images, len(data))
    if n == 0:
        raise ValueError("evaluate_model needs at least one image")
    keys = ("recon_mse", "recon_psnr", "recon_ssim", "equivariance_error", "invariance_error")
    sums = {k: [0.0] * len(els) for k in keys}                          # weighted by batch size
    worst = {"equivariance_error": 0.0, "invariance_error": 0.0}
    zero_targets = {"equivariance_error": 0, "invariance_error": 0}
    energy_i = energy = 0.0
    # centred errors: sums of squared differences, and of the targets and their squares
    centred = {"eq_num": 0.0, "inv_num": 0.0, "zi_sum": 0.0, "zt_sum": [0.0] * len(els),
               "zt_sq": [0.0] * len(els)}
    for start in range(0, n, batch_size):
        idx = torch.arange(start, min(start + batch_size, n))
        x = _images(data, idx, device=device)                            # (B, 1, H, W)
        z = model.encode(x)                                               # (B, C, h, w)
        z_i, z_v = _split(z, mask)
        energy_i += _sq(z_i)
        energy += _sq(z)
        centred["zi_sum"] = centred["zi_sum"] + _wide(z_i).sum(0)       # (C, h, w)
        B = len(idx)
        for k, el in enumerate(els):
            g = _repeat(el, B, device)                                    # (B, ...)
            gx = _images(data, idx, group, g, device)                     # T_g x
            phi = act(z_v, g)                                             # Phi_g z_v(x)
            recon = model.decode(z_i + phi)
            zt_i, zt_v = _split(model.encode(gx), mask)                   # z_i(T_g x), z_v(T_g x)
            img = M.image_scores(recon, gx)
            eq = M.equivariance_errors(phi, zt_v)
            inv = M.invariance_errors(z_i, zt_i)
            centred["eq_num"] += _sq(phi - zt_v)
            centred["inv_num"] += _sq(z_i - zt_i)
            centred["zt_sum"][k] = centred["zt_sum"][k] + _wide(zt_v).sum(0)
            centred["zt_sq"][k] += _sq(zt_v)
            for key, value in (("recon_mse", img["mse"]), ("recon_psnr", img["psnr"]),
                               ("recon_ssim", img["ssim"]), ("equivariance_error", eq["mean"]),
                               ("invariance_error", inv["mean"])):
                sums[key][k] += value * B
            for key, res in (("equivariance_error", eq), ("invariance_error", inv)):
                worst[key] = max(worst[key], res["max"])
                zero_targets[key] += res["n_zero_target"]
    model.train(was_training)

    out = {"group": group.name, "split": split, "elements": names, "n_images": n,
           "n_pairs": n * len(els)}
    for key in keys:
        per = [s / n for s in sums[key]]
        out[key] = sum(per) / len(per)
        out.update({f"{key}/{name}": v for name, v in zip(names, per)})
    for key in worst:
        out[f"{key}_max"] = worst[key]
        out[f"{key.split('_')[0]}_n_zero_target"] = zero_targets[key]
    out["energy_share_zi"] = energy_i / energy if energy > 0 else math.nan
    eq_den = sum(sq - _sq(sm) / n for sq, sm in zip(centred["zt_sq"], centred["zt_sum"]))
    inv_den = len(els) * (energy_i - _sq(centred["zi_sum"]) / n)
    out["equivariance_error_centred"] = _root_ratio(centred["eq_num"], eq_den)
    out["invariance_error_centred"] = _root_ratio(centred["inv_num"], inv_den)
    if mask is None:                                   # no mask: z_i and mask scores are undefined
        for key in [k for k in out if k.startswith("invariance_")] + ["energy_share_zi"]:
            out[key] = None
        out.update(variant_fraction=None, n_variant=None, variant_channels=None, mask_probs=None,
                   n_unsettled=None, tau=None)
    else:
        stats = M.mask_stats(model.mask.logits, model.tau, band=0.05)
        out.update(variant_fraction=stats["variant_fraction"], n_variant=stats["n_variant"],
                   variant_channels=stats["variant_channels"], mask_probs=stats["probs"],
                   n_unsettled=stats["n_unsettled"], tau=model.tau)
    return out


# ----------------------------------------------------------------------------- probe features
@torch.no_grad()
def encode_images(model, data: ImageSet, group: Group | None = None, g: torch.Tensor | None = None,
                  batch_size: int = 512, max_images: int | None = None) -> torch.Tensor:
    """Latents ``z = E(T_g x)`` (``E(x)`` if ``g`` is None) of the first ``max_images`` images,
    ``(N, C, *latent_spatial)`` on the model's device."""
    device, was_training = _device(model), model.training
    model.eval()
    n = len(data) if max_images is None else min(max_images, len(data))
    out = []
    for start in range(0, n, batch_size):
        idx = torch.arange(start, min(start + batch_size, n))
        out.append(model.encode(_images(data, idx, group, None if g is None else g[idx], device)))
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
        moved = torch.stack([act(ids, _repeat(e, 1, device)).reshape(-1) for e in elements])
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
    :func:`galib.probe.orbit_invariants` (kind: :func:`default_orbit_kind` unless given); with
    ``distinct`` it keeps one latent position per coordinate orbit
    (:func:`coordinate_orbit_representatives`: 13 of 49 positions for C4 on 7x7) since the others
    repeat the same columns exactly. ``None`` when the feature is undefined (``z_i``/``z_v`` under
    ``split='full'``) or empty.
    """
    group, act, mask = _resolve(model, group, split)
    if name == "z":
        return z.flatten(1)
    if name in ("z_i", "z_v"):
        if mask is None:
            return None
        keep = (mask > 0) if name == "z_v" else (mask == 0)
        return z[:, keep].flatten(1) if bool(keep.any()) else None
    if name != "orbit":
        raise ValueError(f"unknown latent feature {name!r}; choose z, z_i, z_v or orbit")
    keep = torch.ones(z.shape[1], dtype=torch.bool, device=z.device) if mask is None else mask > 0
    if not bool(keep.any()):
        return None
    kind = orbit_kind or default_orbit_kind(group)
    els, _ = evaluation_elements(group, n_eval)
    reps = coordinate_orbit_representatives(act, els, z.shape[1:], z.device) if distinct else None
    cols = None if reps is None else reps[keep].reshape(-1)             # (C_v*h*w,) bool
    out = []
    for start in range(0, len(z), batch_size):
        _, zv = _split(z[start:start + batch_size], mask)                # (B, C, h, w)
        orbit = torch.stack([act(zv, _repeat(e, len(zv), zv.device)) for e in els], 1)  # (B, G, C, h, w)
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
    n = len(data) if max_images is None else min(max_images, len(data))
    out = {}
    if "pixels" in features:
        out["pixels"] = _images(data, torch.arange(n), group, None if g is None else g[:n]).flatten(1)
    latent = [f for f in features if f != "pixels"]
    if latent:
        z = encode_images(model, data, group, g, batch_size, n)
        for f in latent:
            out[f] = features_from_latent(model, z, f, group, split, orbit_kind, batch_size,
                                          distinct=distinct)
    return out


# ----------------------------------------------------------------------------- probe_model
PROBE_FIT = {"max_iter": 30}     # L-BFGS iterations per l2: ~0.5% from converged, 3-4x faster


def probe_sets(splits: DataSplits, max_train: int | None = None,
               max_test: int | None = None) -> dict[str, ImageSet]:
    """The images a probe uses: the first ``max_train`` training images, validation capped at a
    quarter of that, the first ``max_test`` test images."""
    n_val = None if max_train is None else max(1, math.ceil(max_train / 4))
    return {"train": splits.train.head(max_train), "val": splits.val.head(n_val),
            "test": splits.test.head(max_test)}


def probe_model(model, splits: DataSplits, features=FEATURES, seed: int = 0,
                max_train: int | None = None, max_test: int | None = None,
                group: Group | str | None = None, split: str = "mask",
                orbit_kind: str | None = None, batch_size: int = 512,
                fit_kwargs: dict | None = None, distinct: bool = True) -> dict:
    """Linear-probe accuracy of each feature under protocols a, b, c.

    (a) probe trained and tested on upright images; (b) the same probe tested on test images each
    transformed by a random group element; (c) probe trained (and validated) on transformed
    training images, tested on transformed test images. Images: the first ``max_train`` of
    ``splits.train`` (validation capped at a quarter of that), the first ``max_test`` of
    ``splits.test``; random elements drawn from ``seed``. Returns ``{feature: {"a", "b", "c",
    "l2_upright", "l2_transformed", "val_upright", "val_transformed", "dim"}}``; features that are
    undefined for this model/split are left out. ``model=None`` probes ``pixels`` only (``group``
    then defaults to ``c4``). ``fit_kwargs`` (default ``PROBE_FIT``) go to
    :func:`galib.probe.fit_probe`.
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
    labels = {k: d.labels for k, d in sets.items()}                     # moved to the features' device
    latents = {}
    if model is not None and set(features) - {"pixels"}:
        for k, d in sets.items():
            latents[k] = encode_images(model, d, group, None, batch_size)
            latents[k + "_t"] = encode_images(model, d, group, elements[k], batch_size)
    results = {}
    for f in features:
        if f == "pixels":
            feats = {k: _images(d, slice(None)).flatten(1) for k, d in sets.items()}
            feats.update({k + "_t": _images(d, slice(None), group, elements[k]).flatten(1)
                          for k, d in sets.items()})
        else:
            feats = {k: features_from_latent(model, z, f, group, split, orbit_kind, batch_size,
                                             distinct=distinct) for k, z in latents.items()}
            if any(v is None for v in feats.values()):
                continue
        y = {k: v.to(feats["train"].device) for k, v in labels.items()}
        kw = PROBE_FIT if fit_kwargs is None else fit_kwargs
        res = evaluate_protocols(feats["train"], y["train"], feats["val"], y["val"],
                                 feats["test"], y["test"], feats["train_t"], feats["val_t"],
                                 feats["test_t"], **kw)
        res["dim"] = int(feats["train"].shape[1])
        results[f] = res
        del feats
    return results


__all__ = ["FEATURES", "PROTOCOLS", "evaluate_model", "probe_model", "probe_sets", "compute_features",
           "encode_images", "features_from_latent", "evaluation_elements", "default_orbit_kind",
           "coordinate_orbit_representatives", "PROBE_FIT"]
