"""Features of a trained model for linear probes, and the three probe protocols (:func:`probe_model`).

Features: ``pixels``, the whole latent ``z``, its parts ``z_i`` / ``z_v`` (hard mask), and
``orbit`` — invariants of the orbit ``{Phi_g z_v : g}`` (:func:`galib.evaluation.probe.orbit_invariants`).
``random-orbit-zv`` (``MATCHED_CONTROLS``) is ``random-orbit`` kept to the model's own variant
channels and the latent positions its ``orbit`` keeps (:func:`matched_coordinates`): the untrained
control with exactly as many features as the model's ``orbit``, so that the two compare like for
like. Two controls need no trained model and are exactly invariant (``CONTROL_FEATURES``):
``pixels-orbit`` — invariants of the image orbit ``{T_h x : h}``, and ``random-orbit`` — invariants
of ``{E_0(T_h x) : h}`` for the paper encoder ``E_0`` at initialisation (fixed seed
``RANDOM_ENCODER_SEED``). Both orbits are only re-ordered when ``x`` is replaced by ``T_g x``
(``T_h T_g = T_hg``), so for a finite group the features are unchanged up to float rounding
(on ``blocked:`` data the occluder does not move, so there they are not exactly invariant).

Protocols b and c transform images by *non-identity* elements only (:func:`sample_moved`): drawing
the identity would leave part of the "transformed" test set upright.

The latent is divided by the model's own hard mask. A model without one (``mask='none'``, the plain
autoencoder) is read with the whole latent variant, ``z_v = z`` and ``z_i = 0``: its features that
need ``z_i`` or a mask are ``None`` and its orbit features are those of the full ``z``.

How features are read and probed is set by two option objects instead of chains of keywords:
:class:`FeatureOptions` (group, orbit kind, batch size, distinct coordinates) for
:func:`features_from_latent`, :func:`compute_features` and :func:`probe_model`, and
:class:`ProbeBudget` (image caps, fit keywords, the draw of elements) for :func:`probe_model`.
Each of these functions also takes the fields as keywords (``batch_size=256``), applied to the
objects with :func:`dataclasses.replace` (:func:`with_options`); an unknown keyword is an error.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch

from ..datasets import DataSplits, ImageSet
from ..devices import model_device
from ..groups import SO2, Group, get_group
from ..models import paper_encoder, split_latent
from ..pairs import images_of
from .probe import orbit_invariants, run_protocols

# The feature names: declared here once; every other list of them derives from these.
LATENT_FEATURES = ("z", "z_i", "z_v", "orbit")              # read off a model's latent
CONTROL_FEATURES = ("pixels-orbit", "random-orbit")          # exactly invariant, need no trained model
# exactly invariant like random-orbit, but of the model's own variant channels and orbit positions:
# the untrained control with as many features as the model's orbit(z_v)
MATCHED_CONTROLS = ("random-orbit-zv",)
DEFAULT_FEATURES = ("pixels",) + LATENT_FEATURES             # what probe_model computes by default
FEATURES = DEFAULT_FEATURES + CONTROL_FEATURES + MATCHED_CONTROLS   # every feature
IMAGE_FEATURES = ("pixels",) + CONTROL_FEATURES              # computed from images, no model needed
RANDOM_ENCODER_SEED = 0
SO2_AWAY = SO2.moved_away  # continuous rotations: moved elements are at least 22.5° from the identity
PROTOCOLS = ("a", "b", "c")     # train/test: upright/upright, upright/transformed, transformed/transformed
PROBE_FIT = {"max_iter": 30}     # L-BFGS iterations per l2: ~0.5% from converged, 3-4x faster


@dataclass(frozen=True)
class FeatureOptions:
    """How features are read off a model (every default runs as it is)."""
    group: Group | str | None = None   # group whose action and elements are used (None: the model's;
                                       # without a model: c4); the model's learned action if same name
    orbit_kind: str | None = None      # orbit_invariants kind (None: the group's orbit_kind())
    batch_size: int = 512              # images / latents per batch
    distinct: bool = True              # orbit features: one latent position per coordinate orbit


@dataclass(frozen=True)
class ProbeBudget:
    """What a linear probe of :func:`probe_model` is given (every default runs as it is)."""
    max_train: int | None = None       # first training images (validation: a quarter); None: all
    max_test: int | None = None        # first test images; None: all
    fit_kwargs: dict | None = None     # keywords of probe.fit_probe (None: PROBE_FIT)
    include_identity: bool = False     # draw elements with the group's sample (identity included):
                                       # the old protocol, for comparison only


def with_options(overrides: dict, *options):
    """``options`` (dataclass instances) with the keywords ``overrides`` applied, each to the
    object that has a field of that name (:func:`dataclasses.replace`), as a tuple in the same
    order. Raises ``TypeError`` naming any keyword that no object has, and the allowed names."""
    owner = {f.name: i for i, o in enumerate(options) for f in dataclasses.fields(o)}
    unknown = sorted(set(overrides) - set(owner))
    if unknown:
        raise TypeError(f"unknown option(s) {unknown}; allowed: {sorted(owner)}")
    return tuple(dataclasses.replace(o, **{k: v for k, v in overrides.items() if owner[k] == i})
                 for i, o in enumerate(options))


class LatentView(NamedTuple):
    """How a model's latent is read (:func:`resolve_view`)."""
    group: Group                       # the group evaluated
    act: Callable                      # its latent action Phi_g (the model's own, maybe learned)
    mask: torch.Tensor | None          # hard mask (C,); None for a model without one


def resolve_view(model, group) -> LatentView:
    """``(group, latent action, hard mask (C,) or None)`` for ``model`` evaluated under ``group``
    (a :class:`LatentView`)."""
    if group is None or get_group(group).name == model.group.name:
        group, act = model.group, model.act                 # may be a learned latent action
    else:
        group = get_group(group)
        act = group.act_latent
    return LatentView(group, act, model.hard_mask())


def view_split(model, z: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(z_i, z_v)`` as evaluated: the model's invariant code under the hard ``mask``, or
    ``(0, z)`` without a mask (``mask='none'``)."""
    z_i, z_v = split_latent(z, mask)
    return (z_i if mask is None else model.invariant_code(z_i)), z_v


def repeat_element(element: torch.Tensor, n: int, device) -> torch.Tensor:
    """One group element as a batch of ``n`` copies ``(n, ...)`` on ``device``."""
    return element.unsqueeze(0).expand(n, *element.shape).contiguous().to(device)


def is_identity(group: Group, element: torch.Tensor) -> bool:
    """Whether one element (a row of ``evaluation_grid``) is the group's identity."""
    ident = group.identity(1)[0]
    return torch.equal(element.reshape(-1).cpu(), ident.reshape(-1).to(element.dtype))


def sample_moved(group: Group, n: int, generator: torch.Generator | None = None,
                 away: float = SO2_AWAY) -> torch.Tensor:
    """``n`` random *non-identity* elements ``(n, ...)``: :meth:`Group.sample_moved
    <galib.groups.base.Group.sample_moved>` (finite groups: uniform over the elements other than
    the identity; ``so2``: an angle uniform in ``[away, 2π − away]``; any other continuous group:
    its own ``sample``, with any draw equal to the identity drawn again)."""
    return group.sample_moved(n, generator, away)


def element_names(group: Group, g: torch.Tensor) -> list[str] | None:
    """The name of each element of ``g`` for a finite group (``90°``), ``None`` for others."""
    return [group.element_label(e) for e in g] if group.finite else None


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
def features_from_latent(model, z: torch.Tensor, name: str, options: FeatureOptions | None = None,
                         n_eval: int = 8, **overrides) -> torch.Tensor | None:
    """Probe feature ``name`` (``z``, ``z_i``, ``z_v`` or ``orbit``) of latents ``z``, ``(N, F)``.

    ``options`` (:class:`FeatureOptions`; its fields may also be given as keywords, e.g.
    ``batch_size=256``) says how: the group (:func:`resolve_view`), the orbit kind,
    the batch size and ``distinct``. ``z_i``/``z_v`` keep only their own channels; ``orbit``
    stacks ``{Phi_g z_v : g}`` over ``n_eval`` evaluation elements, ``(N, G, C_v, h, w)``, keeps
    the variant channels and maps it through :func:`galib.evaluation.probe.orbit_invariants`
    (kind: the group's ``orbit_kind()`` unless given); with ``distinct`` it keeps one latent
    position per coordinate orbit (:func:`coordinate_orbit_representatives`: 13 of 49 positions
    for C4 on 7x7) since the others repeat the same columns exactly. ``None`` when the feature is
    undefined (``z_i``/``z_v`` of a model without a mask) or empty.
    """
    (opt,) = with_options(overrides, options or FeatureOptions())
    group, act, mask = resolve_view(model, opt.group)
    if name == "z":
        return z.flatten(1)
    if name in ("z_i", "z_v"):
        if mask is None:
            return None
        keep = (mask > 0) if name == "z_v" else (mask == 0)
        part = z if name == "z_v" else view_split(model, z, mask)[0]   # z_i: the invariant code
        return part[:, keep].flatten(1) if bool(keep.any()) else None
    if name != "orbit":
        raise ValueError(f"unknown latent feature {name!r}; choose "
                         f"{', '.join(LATENT_FEATURES[:-1])} or {LATENT_FEATURES[-1]}")
    kind = opt.orbit_kind or group.orbit_kind()
    els, _ = group.evaluation_grid(n_eval)
    coords = orbit_coordinates(mask, act, els, z.shape[1:], opt.distinct, z.device)
    if coords is None:
        return None
    out = []
    for start in range(0, len(z), opt.batch_size):
        _, zv = split_latent(z[start:start + opt.batch_size], mask)      # (B, C, h, w)
        orbit = torch.stack([act(zv, repeat_element(e, len(zv), zv.device)) for e in els], 1)
        out.append(orbit_invariants(orbit[:, :, coords], kind))          # (B, G, kept coordinates)
    return torch.cat(out)


@functools.lru_cache(maxsize=4)
def random_encoder(channels: int, spatial_dims: int = 2, seed: int = RANDOM_ENCODER_SEED):
    """The paper encoder at initialisation, drawn from ``seed`` (the global RNG is untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return paper_encoder(1, channels, spatial_dims).eval()


def orbit_coordinates(mask: torch.Tensor | None, act, elements: torch.Tensor, shape,
                      distinct: bool = True, device="cpu") -> torch.Tensor | None:
    """Bool ``(C, *spatial)``: the latent coordinates the ``orbit`` feature keeps — the variant
    channels (every channel without a ``mask``) and, with ``distinct``, one position per coordinate
    orbit where ``act`` permutes positions (:func:`coordinate_orbit_representatives`); ``None``
    when no channel is variant."""
    keep = torch.ones(shape[0], dtype=torch.bool, device=device) if mask is None else mask.to(device) > 0
    if not bool(keep.any()):
        return None
    keep = keep.view(-1, *([1] * (len(shape) - 1))).expand(*shape).clone()
    reps = coordinate_orbit_representatives(act, elements, tuple(shape), device) if distinct else None
    return keep if reps is None else keep & reps


def matched_coordinates(model, latent_shape, options: FeatureOptions | None = None,
                        n_eval: int = 8) -> torch.Tensor | None:
    """The latent coordinates the model's own ``orbit`` feature keeps (:func:`orbit_coordinates`
    under the same group, action and ``distinct``), on the CPU; ``None`` for a model without a mask
    or variant channels (``random-orbit-zv`` is then undefined)."""
    opt = options or FeatureOptions()
    group, act, mask = resolve_view(model, opt.group)
    if mask is None:
        return None
    els, _ = group.evaluation_grid(n_eval)
    return orbit_coordinates(mask.cpu(), act, els, tuple(latent_shape), opt.distinct)


@torch.no_grad()
def control_features(name: str, images: torch.Tensor, group: Group, orbit_kind: str | None = None,
                     channels: int = 64, batch_size: int = 512, keep: torch.Tensor | None = None
                     ) -> torch.Tensor:
    """``pixels-orbit`` / ``random-orbit`` / ``random-orbit-zv`` of float images
    ``(N, 1, *spatial)``, ``(N, F)`` on the CPU.

    The orbit ``{T_h x : h}`` (or ``{E_0(T_h x) : h}``, ``E_0`` = :func:`random_encoder` with
    ``channels``) over the evaluation elements, stacked ``(B, G, F)``, through
    :func:`galib.evaluation.probe.orbit_invariants` (kind: the group's ``orbit_kind()`` unless
    given). ``pixels-orbit`` keeps one pixel per pixel orbit when ``T_h`` permutes pixels;
    ``random-orbit-zv`` keeps the latent coordinates ``keep`` (bool ``(channels, *spatial)``,
    :func:`matched_coordinates`).
    """
    if name not in CONTROL_FEATURES + MATCHED_CONTROLS:
        raise ValueError(f"unknown control feature {name!r}; choose one of "
                         f"{CONTROL_FEATURES + MATCHED_CONTROLS}")
    if (name in MATCHED_CONTROLS) != (keep is not None):
        raise ValueError(f"{name!r}: the coordinates to keep are given for random-orbit-zv, and only for it")
    els, _ = group.evaluation_grid()
    kind = orbit_kind or group.orbit_kind()
    images = images.cpu()
    reps = None
    if name == "pixels-orbit":
        reps = coordinate_orbit_representatives(group.act_image, els, images.shape[1:])
    enc = random_encoder(channels, group.spatial_dims) if name != "pixels-orbit" else None
    if keep is not None:
        reps = keep.cpu()
    out = []
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size]
        moved = [group.act_image(x, repeat_element(e, len(x), "cpu")) for e in els]
        orbit = torch.stack([m if enc is None else enc(m) for m in moved], 1).flatten(2)  # (B, G, F)
        out.append(orbit_invariants(orbit if reps is None else orbit[:, :, reps.reshape(-1)], kind))
    return torch.cat(out)


def compute_features(model, data: ImageSet, features=DEFAULT_FEATURES, *, g: torch.Tensor | None = None,
                     max_images: int | None = None, options: FeatureOptions | None = None,
                     **overrides) -> dict:
    """``{feature: (N, F) tensor or None}`` for the first ``max_images`` images of ``data``
    (transformed by ``g`` (N,…) if given); see :func:`features_from_latent` and
    :func:`control_features`. ``options`` (:class:`FeatureOptions`; its fields may also be given
    as keywords: ``group``, ``orbit_kind``, ``batch_size``, ``distinct``) says how
    they are read. ``pixels`` and the controls need no model; ``model=None`` allows only those
    (``random-orbit`` then uses 64 channels)."""
    (opt,) = with_options(overrides, options or FeatureOptions())
    group, batch_size = opt.group, opt.batch_size
    unknown = set(features) - set(FEATURES)
    if unknown:
        raise ValueError(f"unknown features {sorted(unknown)}; choose from {FEATURES}")
    if model is None and set(features) - set(IMAGE_FEATURES):
        raise ValueError(f"without a model only the {IMAGE_FEATURES} features are available")
    group = get_group(group) if group is not None else (model.group if model is not None else None)
    if g is not None and group is None:
        raise ValueError("transforming images needs a group")
    data = data.head(max_images)
    n = len(data)
    out = {}
    if set(features) & set(IMAGE_FEATURES + MATCHED_CONTROLS):
        images = images_of(data, torch.arange(n), group, None if g is None else g[:n])
        for f in [f for f in features if f in IMAGE_FEATURES + MATCHED_CONTROLS]:
            out[f] = images.flatten(1) if f == "pixels" else _control(
                model, f, images, group or get_group("c4"), opt)
    latent = [f for f in features if f not in IMAGE_FEATURES + MATCHED_CONTROLS]
    if latent:
        z = encode_images(model, data, group, g, batch_size, n)
        for f in latent:
            out[f] = features_from_latent(model, z, f, dataclasses.replace(opt, group=group))
    return out


def _channels(model) -> int:
    """Latent channels of the random encoder control: the model's, else 64 (the paper's)."""
    return 64 if model is None else int(model.latent_channels)


def _control(model, f: str, images: torch.Tensor, group: Group, opt: FeatureOptions) -> torch.Tensor | None:
    """Control feature ``f`` of float images; ``random-orbit-zv`` with the model's coordinates
    (``None`` when the model has none: no mask, or no variant channel)."""
    keep = None
    if f in MATCHED_CONTROLS:
        shape = random_encoder(_channels(model), group.spatial_dims)(images[:1].cpu()).shape[1:]
        keep = matched_coordinates(model, shape, opt)
        if keep is None:
            return None
    return control_features(f, images, group, opt.orbit_kind, _channels(model), opt.batch_size, keep)


# ----------------------------------------------------------------------------- probe_model
def probe_sets(splits: DataSplits, max_train: int | None = None,
               max_test: int | None = None) -> dict[str, ImageSet]:
    """The images a probe uses: the first ``max_train`` training images, validation capped at a
    quarter of that, the first ``max_test`` test images."""
    n_val = None if max_train is None else max(1, math.ceil(max_train / 4))
    return {"train": splits.train.head(max_train), "val": splits.val.head(n_val),
            "test": splits.test.head(max_test)}


def _probe_features(model, f: str, sets: dict, latents: dict, elements: dict,
                    opt: FeatureOptions) -> dict | None:
    """``{set name (``_t``: transformed): (N, F)}`` for feature ``f``; ``None`` if undefined.
    ``opt.group`` is the resolved :class:`~galib.groups.Group`."""
    group = opt.group
    if f in IMAGE_FEATURES + MATCHED_CONTROLS:
        feats = {}
        for k, d in sets.items():
            for key, g in ((k, None), (k + "_t", elements[k])):
                x = images_of(d, slice(None), group, g)
                feats[key] = x.flatten(1) if f == "pixels" else _control(model, f, x, group, opt)
                if feats[key] is None:
                    return None
        return feats
    feats = {k: features_from_latent(model, z, f, opt) for k, z in latents.items()}
    return None if any(v is None for v in feats.values()) else feats


def probe_model(model, splits: DataSplits, features=DEFAULT_FEATURES, seed: int = 0, *,
                options: FeatureOptions | None = None, budget: ProbeBudget | None = None,
                **overrides) -> dict:
    """Linear-probe accuracy of each feature under protocols a, b, c.

    ``options`` (:class:`FeatureOptions`: ``group``, ``orbit_kind``, ``batch_size``,
    ``distinct``) says how features are read, ``budget`` (:class:`ProbeBudget`: ``max_train``,
    ``max_test``, ``fit_kwargs``, ``include_identity``) what the probes get; any of these fields
    may also be given as a keyword (``max_train=2000, batch_size=256``), applied to the two objects.

    (a) probe trained and tested on upright images; (b) the same probe tested on test images each
    transformed by a random *non-identity* element (:func:`sample_moved`); (c) probe trained (and
    validated) on transformed training images, tested on transformed test images. Images:
    :func:`probe_sets` (``max_train``, ``max_test``); elements drawn from ``seed``. Returns
    ``{feature: {...}}`` with the keys of :func:`galib.evaluation.probe.run_protocols` — ``a``,
    ``b``, ``c``, the validation accuracies ``val_a``, ``val_b``, ``val_c`` (the same probes on
    upright / transformed validation images: choose features on these, not on test accuracy),
    ``b/<element>`` and ``c/<element>`` per element for finite groups (``b/90°``),
    ``l2_upright``, ``l2_transformed``, ``val_upright``, ``val_transformed``, ``iters``,
    ``grad_norm`` — and ``dim``. Features
    undefined for this model are left out. ``model=None`` probes only ``IMAGE_FEATURES``
    (``group`` then defaults to ``c4``). ``fit_kwargs`` (default ``PROBE_FIT``) go to
    :func:`galib.evaluation.probe.fit_probe`. ``include_identity=True`` draws transformations
    from the group's own ``sample`` (identity included), the old protocol, for comparison only.
    """
    opt, budget = with_options(overrides, options or FeatureOptions(), budget or ProbeBudget())
    unknown = set(features) - set(FEATURES)
    if unknown:
        raise ValueError(f"unknown features {sorted(unknown)}; choose from {FEATURES}")
    group = opt.group
    if model is None:
        features = [f for f in features if f in IMAGE_FEATURES]
        group = get_group(group or "c4")
    else:
        group = get_group(group) if group is not None else model.group
    opt = dataclasses.replace(opt, group=group)
    sets = probe_sets(splits, budget.max_train, budget.max_test)
    gen = torch.Generator().manual_seed(seed)
    draw = group.sample if budget.include_identity else functools.partial(sample_moved, group)
    elements = {k: draw(len(d), gen) for k, d in sets.items()}          # one element per image
    latents = {}
    if model is not None and set(features) - set(IMAGE_FEATURES + MATCHED_CONTROLS):
        for k, d in sets.items():
            latents[k] = encode_images(model, d, group, None, opt.batch_size)
            latents[k + "_t"] = encode_images(model, d, group, elements[k], opt.batch_size)
    names = {k: element_names(group, elements[k]) for k in ("val", "test")}
    results = {}
    for f in features:
        feats = _probe_features(model, f, sets, latents, elements, opt)
        if feats is None:
            continue
        y = {k: d.labels.to(feats["train"].device) for k, d in sets.items()}
        fit = PROBE_FIT if budget.fit_kwargs is None else budget.fit_kwargs
        res = run_protocols(feats, y, names, **fit)
        res["dim"] = int(feats["train"].shape[1])
        results[f] = res
        del feats
    return results
