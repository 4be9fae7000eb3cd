"""Latent views the notebooks show: pairs, orbits, swaps, traversals and magnitude maps.

Each function takes a trained :class:`~galib.models.GroupLatentAutoencoder` (or just a group) and
image batches ``(B, C, *spatial)`` in [-1, 1], and returns tensors that
:mod:`galib.studies.plotting` draws, or the numbers a notebook's ``metrics.json`` records.
Splits use the hard 0/1 mask, as at test time.
"""
from __future__ import annotations

import torch

from ..datasets import ImageSet, to_float
from ..devices import model_device
from ..evaluation.metrics import energy_share
from ..groups import Group, get_group
from ..models import GroupLatentAutoencoder
from ..pairs import images_of, iterate_pairs, make_pairs


def display_elements(group: Group | str, n: int = 8, max_finite: int = 12,
                     seed: int = 0) -> tuple[torch.Tensor, list[str]]:
    """Group elements to show and their names: a finite group's elements (evenly thinned to at
    most ``max_finite``), else the group's evaluation grid of ``n`` elements."""
    group = get_group(group)
    if group.finite:
        k = min(len(group), max_finite)
        idx = torch.linspace(0, len(group) - 1, k).round().long()
        names = group.element_names()
        return idx, [names[i] for i in idx.tolist()]
    return group.evaluation_grid(n, seed)


def pair_examples(data: ImageSet, group: Group | str, per_element: int = 3, seed: int = 0,
                  elements: torch.Tensor | None = None) -> dict:
    """``per_element`` random pairs ``(x, T_g x)`` for each displayed element of ``group``.

    Returns ``x`` and ``gx`` of shape ``(E, K, C, *spatial)``, ``elements`` and ``names``.
    """
    group = get_group(group)
    if elements is None:
        elements, names = display_elements(group, seed=seed)
    else:
        names = [group.element_label(e) for e in elements]
    E, K = len(elements), per_element
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(data), generator=gen)[: E * K]
    g = elements.repeat_interleave(K, dim=0)                         # (E*K, ...)
    x, gx = _pair(data, idx, group, g)                               # (E*K, 1, H, W)
    shape = (E, K, *x.shape[1:])
    return {"x": x.reshape(shape), "gx": gx.reshape(shape), "elements": elements, "names": names}


def pairing_counts(data: ImageSet, group: Group | str, batch_size: int = 64, seed: int = 0,
                   bins: int = 12) -> dict:
    """Count classes and drawn group elements over one epoch of training pairs.

    Finite groups: one count per element. Continuous groups: a histogram (``bins``) of the first
    element parameter. Keys: ``class_counts``, ``element_counts``, ``element_names``,
    ``element_xlabel``, ``n_pairs``.
    """
    group = get_group(group)
    gen = torch.Generator().manual_seed(seed)
    gs = [g for _, _, g, _ in iterate_pairs(data, group, batch_size, gen)]
    g = torch.cat(gs)
    n_classes = int(data.labels.max()) + 1
    class_counts = torch.bincount(data.labels, minlength=n_classes).tolist()
    if group.finite:
        counts = torch.bincount(g.reshape(-1).long(), minlength=len(group)).tolist()
        names, xlabel = group.element_names(), "group element g"
    else:
        v, axis = group.parameter_axis(g)
        lo, hi = float(v.min()), float(v.max())
        counts = torch.histc(v, bins=bins, min=lo, max=hi).tolist()
        edges = torch.linspace(lo, hi, bins + 1)
        names = [f"{(a + b) / 2:.3g}" for a, b in zip(edges[:-1].tolist(), edges[1:].tolist())]
        xlabel = axis + " (bin centre)"
    return {"class_counts": class_counts, "element_counts": counts, "element_names": names,
            "element_xlabel": xlabel, "n_pairs": int(len(g))}


def _pair(data: ImageSet, idx, group: Group, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, T_g x)`` as in training: act on the clean image, then occlude both (if any)."""
    x, gx, _ = make_pairs(data.images[idx], group, g=g, occlude=data.occlude)
    return x, gx


@torch.no_grad()
def transformed_reconstructions(model: GroupLatentAutoencoder, data: ImageSet, idx,
                                g: torch.Tensor) -> dict:
    """For images ``data[idx]``: ``x``, the truth ``T_g x`` and the prediction
    ``D(z_i + Phi_g z_v)`` (all on the CPU); ``g`` has one element per image."""
    model.eval()
    x, gx = _pair(data, idx, model.group, g)
    z_i, z_v = model.split(model.encode(x.to(model_device(model))), hard=True)
    recon = model.decode(z_i + model.act(z_v, g.to(model_device(model))))
    return {"x": x, "gx": gx, "recon": recon.cpu()}


@torch.no_grad()
def orbit(model: GroupLatentAutoencoder, data: ImageSet, index: int, elements: torch.Tensor) -> dict:
    """Latent orbit of image ``data[index]``: ``pred`` = ``{D(z_i + Phi_g z_v)}`` and ``truth`` =
    ``{T_g x}`` over ``elements``, each ``(G, C, ...)``."""
    idx = torch.full((len(elements),), int(index))
    out = transformed_reconstructions(model, data, idx, elements)
    return {"pred": out["recon"], "truth": out["gx"]}


@torch.no_grad()
def latent_swap(model: GroupLatentAutoencoder, xa: torch.Tensor, xb: torch.Tensor) -> dict:
    """The latent swap: ``ab = D(z_i(a) + z_v(b))`` (content of a, pose of b) and ``ba``."""
    model.eval()
    d = model_device(model)
    ia, va = model.split(model.encode(xa.to(d)), hard=True)
    ib, vb = model.split(model.encode(xb.to(d)), hard=True)
    return {"ab": model.decode(ia + vb).cpu(), "ba": model.decode(ib + va).cpu()}


@torch.no_grad()
def invariant_channels(model: GroupLatentAutoencoder, x: torch.Tensor) -> list[int]:
    """Invariant channels (mask 0) ordered by their mean energy on ``x``, largest first."""
    model.eval()
    z = model.encode(x.to(model_device(model)))                              # (B, C, ...)
    energy = z.pow(2).flatten(2).mean((0, 2))                        # (C,)
    inv = (model.hard_mask() == 0).nonzero().flatten()
    return inv[energy[inv].argsort(descending=True)].tolist()


@torch.no_grad()
def channel_traversal(model: GroupLatentAutoencoder, x: torch.Tensor, channels, values) -> torch.Tensor:
    """Decode ``x`` (1, C, ...) with one latent channel scaled by each value (1 = unchanged,
    0 = removed), for each channel in ``channels``: returns ``(K, V, C, ...)``."""
    model.eval()
    z = model.encode(x.to(model_device(model)))                              # (1, C, ...)
    rows = []
    for c in channels:
        zs = z.repeat(len(values), *[1] * (z.dim() - 1))             # (V, C, ...)
        zs[:, c] *= torch.tensor(values, dtype=z.dtype, device=z.device).view(-1, *[1] * (z.dim() - 2))
        rows.append(model.decode(zs).cpu())
    return torch.stack(rows) if rows else torch.empty(0)


@torch.no_grad()
def magnitude_maps(model: GroupLatentAutoencoder, x: torch.Tensor, g: torch.Tensor) -> dict:
    """Per-location latent norm (over channels), averaged over the batch, for ``z``, ``z_v``,
    ``z_i`` and ``Phi_g z_v``: each ``(h, w)`` (or ``(d, h, w)``)."""
    model.eval()
    d = model_device(model)
    z = model.encode(x.to(d))                                        # (B, C, h, w)
    z_i, z_v = model.split(z, hard=True)
    phi = model.act(z_v, g.to(d))

    def norm(t):
        return t.pow(2).sum(1).sqrt().mean(0).cpu()                  # (h, w)
    return {"|z|": norm(z), "|z_v|": norm(z_v), "|z_i|": norm(z_i), "|Φ_g z_v|": norm(phi)}


def pairing_summary(counts: dict) -> dict:
    """Scalars for the metrics file: class imbalance (max/min count), the largest relative deviation
    of an element's count from uniform, and the deviation expected from sampling noise alone."""
    cc = torch.tensor(counts["class_counts"], dtype=torch.float64)
    ec = torch.tensor(counts["element_counts"], dtype=torch.float64)
    mean = ec.mean()
    k = len(ec)
    return {"class_imbalance": float(cc.max() / cc.min().clamp(min=1)),
            "element_max_rel_dev": float((ec - mean).abs().max() / mean),
            "element_rel_sd_expected": float(((1 - 1 / k) / mean) ** 0.5) if mean > 0 else float("nan")}


@torch.no_grad()
def roundtrip_error(data: ImageSet, group: Group | str, n: int = 256, seed: int = 0) -> float:
    """Largest ``|T_{g^-1}(T_g x) - x|`` over ``n`` images with random ``g``: 0 for exact actions
    (rot90, flips, whole-cell shifts); interpolating actions such as ``so2`` blur and lose corners."""
    group = get_group(group)
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(data), generator=gen)[:n]
    x = to_float(data.images[idx])
    g = group.sample(len(x), gen)
    back = group.act_image(group.act_image(x, g), group.inverse(g))
    return float((back - x).abs().max())


def swap_examples(data: ImageSet, group: Group | str, n: int = 4, start: int = 0,
                  seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` pairs ``(a, b)`` from consecutive images starting at ``start``; ``b`` is transformed
    by a random non-identity element so the two differ in pose as well as content."""
    group = get_group(group)
    idx = (torch.arange(2 * n) + start) % len(data)
    gen = torch.Generator().manual_seed(seed + start)
    if group.finite and len(group) > 1:
        g = torch.randint(1, len(group), (n,), generator=gen)
    else:
        g = group.sample(n, gen)
    xa = images_of(data, idx[:n])
    _, xb = _pair(data, idx[n:], group, g)
    return xa, xb


@torch.no_grad()
def orbit_errors(model: GroupLatentAutoencoder, data: ImageSet, idx, elements: torch.Tensor,
                 names: list[str] | None = None) -> dict:
    """MSE between ``D(z_i + Phi_g z_v)`` and ``T_g x`` over images ``data[idx]``, per element."""
    idx = torch.as_tensor(idx)
    out = {}
    for k, g in enumerate(elements):
        r = transformed_reconstructions(model, data, idx, g.expand(len(idx), *g.shape).clone())
        out[names[k] if names else str(k)] = float((r["recon"] - r["gx"]).pow(2).mean())
    return out


@torch.no_grad()
def latent_energy_share(model: GroupLatentAutoencoder, x: torch.Tensor) -> float:
    """Share of latent energy carried by the invariant part: ``sum z_i^2 / sum z^2`` on ``x``."""
    model.eval()
    z = model.encode(x.to(model_device(model)))
    z_i, _ = model.split(z, hard=True)
    return energy_share(z_i, z)


def latent_summary(model: GroupLatentAutoencoder, data: ImageSet, elements: torch.Tensor,
                   names: list[str], x: torch.Tensor, invariant: list[int], n_images: int = 256) -> dict:
    """What notebook 04 records: per-element orbit MSE over the first ``n_images`` images of
    ``data`` (``orbit_mse``) and a ``summary`` (its mean and max, the energy share of ``z_i`` on
    ``x``, the variant fraction and the number of invariant channels)."""
    orbit_mse = orbit_errors(model, data, torch.arange(min(n_images, len(data))), elements, names)
    summary = {"orbit_mse_mean": sum(orbit_mse.values()) / len(orbit_mse),
               "orbit_mse_max": max(orbit_mse.values()), "energy_share_zi": latent_energy_share(model, x),
               "variant_fraction": model.variant_fraction(), "n_invariant_channels": len(invariant)}
    return {"orbit_mse": orbit_mse, "invariant_channels": invariant, "summary": summary}


def pairing_metrics(data, group: Group, counts: dict, balance: dict, roundtrip: float) -> dict:
    """What notebook 01 records: the counts of :func:`pairing_counts`, and a ``summary`` of the
    split sizes, the balance (:func:`pairing_summary`) and the round-trip error."""
    return {"group": group.name, "n_elements": len(group) if group.finite else None,
            "class_counts": counts["class_counts"], "element_counts": counts["element_counts"],
            "element_names": counts["element_names"], "n_pairs": counts["n_pairs"],
            "summary": {"n_train": len(data.train), "n_val": len(data.val), "n_test": len(data.test),
                        "n_classes": data.num_classes, **balance, "roundtrip_error": roundtrip}}
