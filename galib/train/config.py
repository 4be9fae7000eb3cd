"""``TrainConfig`` (the paper's defaults), its checks, and the model it builds.

Every field carries its help text and, where the values are a fixed set, its choices
(``field(metadata=...)``): :func:`describe_field` reads them for the command line
(:mod:`galib.train.cli`) and the docs. :meth:`TrainConfig.validate` rejects wrong types,
non-finite and out-of-range numbers and unknown names up front, naming the value and what is
allowed. :func:`model_from_config` checks that the model can take the images (a clear shape error
naming sizes that fit, before any training step).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import torch

from ..datasets import available_datasets
from ..devices import amp_problem, resolve_device
from ..groups import available_groups, get_group
from ..losses import CONSISTENCY, INV_FORMS, TARGETS, resolve_consistency
from .limits import check_limits
from ..models import MASKS, ZI_DESIGNS, GroupLatentAutoencoder, ModelOptions, build_model, fixed_mask_channels

# Fields that define the model's weights: a checkpoint only loads into a config that agrees on them.
MODEL_FIELDS = ("group", "latent_channels", "mask", "latent_action", "mask_variant", "mask_seed",
                "zi_design")
# Fields that may differ when resuming (everything else must match the checkpoint).
RESUME_FREE = ("epochs", "device", "data_root", "amp", "threads")
# Fields added after checkpoints were first written, with the behaviour the code had before them.
LEGACY = {"consistency": "direct", "mask_variant": None, "mask_seed": 0, "zi_design": "paper",
          "inv_form": "mse", "mask_init": "normal", "pose": "upright", "targets": "detached",
          "weight_decay": 0.0, "threads": None}
# Fields renamed after commit 4624a4a (old name → today's). That commit's ``objective`` is folded
# into ``mask``: ``objective="ae"`` (the plain autoencoder) is ``mask="none"``; "group" is the rest.
RENAMED = {"invariant": "zi_design", "invariance": "inv_form"}


def upgrade_config(d: dict) -> dict:
    """A config dict as an earlier galib wrote it (checkpoints, ``history.json``, cached rows,
    profiles), in today's names (:data:`RENAMED`; ``objective`` folded into ``mask``). Today's
    dicts come back unchanged; an unknown objective is kept, so ``from_dict`` names it."""
    out = {RENAMED.get(k, k): v for k, v in d.items()}
    if out.get("objective") in ("group", "ae"):
        if out.pop("objective") == "ae":
            out["mask"] = "none"
    return out


def with_legacy(d: dict) -> dict:
    """``d`` upgraded (:func:`upgrade_config`), with :data:`LEGACY` filling the fields it predates."""
    return {**LEGACY, **upgrade_config(d)}


def key_fields(cfg: "TrainConfig") -> dict:
    """The config's fields under the names they had before the renaming (the inverse of
    :func:`upgrade_config`): what run keys hash, so folders keyed before it keep their keys."""
    back = {new: old for old, new in RENAMED.items()}
    d = {back.get(f.name, f.name): getattr(cfg, f.name) for f in fields(cfg)}
    d["objective"] = "ae" if d["mask"] == "none" else "group"
    if d["mask"] == "none":
        d["mask"] = "learned"
    return d


MASK_INITS = ("normal", "negated")   # the initialisation test: same network seed, logits negated
POSES = ("upright", "random")        # the pose of x in each training pair


def _f(default, help: str, choices=None, strict: bool = True):
    """A field with its help text; ``choices`` (a tuple, or a function returning the names) are
    enforced on the command line when ``strict`` (else listed as examples)."""
    return field(default=default, metadata={"help": help, "choices": choices, "strict": strict})


@dataclass
class TrainConfig:
    dataset: str = _f("auto", "dataset to train on; NAME:SPEC forms: npz:PATH, shapes3d:N_TRAIN,N_TEST, "
                      "blocked:NAME", available_datasets, strict=False)
    data_root: str | None = _f(None, "folder with local datasets (None: $GALIB_DATA_ROOT or ./data)")
    group: str = _f("c4", "group acting on images and latents", available_groups)
    tau: float = _f(0.5, "mask threshold, in (0, 1): a channel is variant when sigmoid(alpha) > tau")
    epochs: int = _f(50, "training epochs; a run dir resumes up to this many")
    batch_size: int = _f(64, "pairs per batch (the global batch under torch.distributed)")
    lr: float = _f(1e-3, "Adam learning rate (finite, > 0)")
    latent_channels: int = _f(64, "latent channels C (the mask has one logit per channel)")
    lambda_inv: float = _f(1.0, "weight of L_inv (finite, >= 0)")
    lambda_const: float = _f(1.0, "weight of L_const (finite, >= 0)")
    seed: int = _f(42, "seed of the initialisation, the train/val split and the pairs")
    max_train: int | None = _f(None, "cap on training images; None = all (validation keeps the ratio)")
    device: str = _f("auto", "auto (cuda, mps, cpu) | cpu | cuda | cuda:N | mps")
    val_fraction: float = _f(0.2, "fraction of the training set held out for validation, in (0, 1)")
    mask: str = _f("learned", "learned (ALD, the paper's model) | manual (first channels variant) | random "
                   "(fixed draw) | none (no mask and no group: the plain autoencoder baseline)", MASKS)
    mask_variant: int | None = _f(None, "variant channels of a manual/random mask; None = half")
    mask_seed: int = _f(0, "which random mask (mask=random)")
    zi_design: str = _f("paper", "the design of z_i: paper (masked map) | pooled (grid mean) | orbit "
                        "(orbit mean) | spectrum (learned map of the orbit's invariant spectrum)",
                        ZI_DESIGNS)
    latent_action: str = _f("exact", "exact (the group's own Phi_g) | a learned kind the group offers "
                            "(so2: learned)")
    amp: bool = _f(False, "bf16 autocast of the training and validation steps (CUDA, or a CPU with "
                   "native bf16: amx_bf16 / avx512_bf16)")
    consistency: str = _f("auto", "L_const form: auto | direct (paper) | midpoint (see galib.losses)",
                          CONSISTENCY)
    inv_form: str = _f("mse", "the form of L_inv: mse (paper) | normalised (per-channel, by the "
                       "target's batch variance; see galib.losses)", INV_FORMS)
    mask_init: str = _f("normal", "initial mask logits: normal (N(0, 0.1²), the paper) | negated (the "
                        "same draw with the sign flipped: same weights, opposite initial sides)",
                        MASK_INITS)
    pose: str = _f("upright", "pose of x in each training pair: upright (the paper: the stored image) | "
                   "random (T_h x for a random h, so both images of a pair are alike in "
                   "distribution; see docs/stability.md)", POSES)
    targets: str = _f("detached", "targets of L_inv and L_const: detached (the paper: T_g x encoded "
                      "without gradient) | both-ways (both sides trained) | scale-free (detached, both "
                      "sides centred and normalised; see galib.losses)", TARGETS)
    weight_decay: float = _f(0.0, "decoupled weight decay (AdamW) per step, finite and >= 0; 0 = Adam "
                             "(the paper)")
    threads: int | None = _f(None, "torch threads of the training; None: the count its run recorded (a "
                             "resume or replay), else this process's (a sweep worker: 1), else the "
                             "cores available (CPU affinity, capped by OMP_NUM_THREADS). Recorded in "
                             "the run: results depend on it")

    def validate(self) -> "TrainConfig":
        """Raise ``ValueError`` naming the first bad value and what is allowed; return ``self``."""
        self._check_numbers()
        for key in ("dataset", "group", "device", "mask", "latent_action", "zi_design", "consistency"):
            if not isinstance(getattr(self, key), str) or not getattr(self, key):
                raise ValueError(f"{key} must be a non-empty string; got {getattr(self, key)!r}")
        for key, allowed in (("mask_init", MASK_INITS), ("pose", POSES), ("targets", TARGETS)):
            if getattr(self, key) not in allowed:
                raise ValueError(f"{key} must be one of {list(allowed)}; got {getattr(self, key)!r}")
        if self.data_root is not None and not isinstance(self.data_root, str):
            raise ValueError(f"data_root must be a folder path or None; got {self.data_root!r}")
        resolve_consistency(self.consistency, get_group(self.group))  # raises on unknown names
        if self.zi_design not in ZI_DESIGNS:
            raise ValueError(f"unknown zi_design {self.zi_design!r}; choose one of {list(ZI_DESIGNS)}")
        if self.inv_form not in INV_FORMS:
            raise ValueError(f"unknown inv_form {self.inv_form!r}; choose one of {list(INV_FORMS)}")
        if self.mask not in MASKS:
            raise ValueError(f"unknown mask {self.mask!r}; choose one of {list(MASKS)}")
        fixed_mask_channels("manual", self.latent_channels, self.mask_variant)  # checks the count
        if not isinstance(self.amp, bool):
            raise ValueError(f"amp must be True or False; got {self.amp!r}")
        device = resolve_device(self.device)
        problem = amp_problem(device) if self.amp else None
        if problem:
            raise ValueError(f"amp=True (bf16 autocast) needs a CUDA device or a CPU with native bf16; "
                             f"device {self.device!r} resolves to {device.type!r} and {problem}: "
                             f"set amp=False")
        return self

    def _check_numbers(self) -> None:
        for key in ("epochs", "batch_size", "latent_channels"):
            _require_int(key, getattr(self, key), low=1)
        for key in ("seed", "mask_seed"):
            _require_int(key, getattr(self, key), low=0)
        check_limits(self)                                    # seeds torch can take; sane sizes
        for key in ("max_train", "mask_variant", "threads"):
            if getattr(self, key) is not None:
                _require_int(key, getattr(self, key), low=0 if key == "mask_variant" else 1, none=True)
        _require_float("tau", self.tau, "lie in the open interval (0, 1)", lambda v: 0.0 < v < 1.0)
        _require_float("lr", self.lr, "be positive", lambda v: v > 0)
        for key in ("lambda_inv", "lambda_const", "weight_decay"):
            _require_float(key, getattr(self, key), "be >= 0", lambda v: v >= 0)
        _require_float("val_fraction", self.val_fraction, "lie in the open interval (0, 1)",
                       lambda v: 0.0 < v < 1.0)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """The config of ``d``, whose names may be those of an earlier galib (:func:`upgrade_config`)."""
        d = upgrade_config(d)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown TrainConfig fields {unknown}; allowed: {sorted(known)}")
        return cls(**d)


def _require_int(key: str, value, low: int, none: bool = False) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        kind = "a positive integer" if low == 1 else f"an integer >= {low}"
        raise ValueError(f"{key} must be {kind}{' or None' if none else ''}; got {value!r}")


def _require_float(key: str, value, allowed: str, ok) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not ok(value):
        raise ValueError(f"{key} must {allowed} and be a finite number; got {value!r}")


def describe_field(name: str) -> tuple[str, list[str] | None, bool]:
    """``(help, choices or None, strict)`` of a ``TrainConfig`` field (choices resolved now)."""
    meta = next(f for f in fields(TrainConfig) if f.name == name).metadata
    choices = meta.get("choices")
    choices = list(choices() if callable(choices) else choices) if choices is not None else None
    return meta.get("help", ""), choices, meta.get("strict", True)


# ----------------------------------------------------------------------------- the model
def model_from_config(cfg: TrainConfig, image_shape: tuple[int, ...]) -> GroupLatentAutoencoder:
    """Build the paper model for ``cfg`` and check that it and the group can take the images."""
    group = get_group(cfg.group)
    group.check_shape((1, 1, *image_shape), "image")
    action = None if cfg.latent_action == "exact" else group.make_latent_action(
        cfg.latent_action, cfg.latent_channels)
    options = ModelOptions(mask=cfg.mask, mask_variant=cfg.mask_variant, mask_seed=cfg.mask_seed,
                           zi_design=cfg.zi_design, latent_action=action)
    model = build_model(group, cfg.latent_channels, cfg.tau, options=options)
    if cfg.mask_init == "negated" and cfg.mask == "learned":   # after every draw: same weights
        with torch.no_grad():
            model.mask.logits.neg_()
    with torch.no_grad():
        z = _encode(model, tuple(image_shape))
        group.check_shape(z.shape, "latent")
        out = tuple(model.decode(z).shape[2:])
    if out != tuple(image_shape):
        raise ValueError(_size_message(model, tuple(image_shape), tuple(z.shape[2:]), out))
    return model


def _encode(model: GroupLatentAutoencoder, shape: tuple[int, ...]) -> torch.Tensor:
    try:
        return model.encode(torch.zeros(1, 1, *shape))
    except RuntimeError:
        raise ValueError(_size_message(model, shape, None, None)) from None


def _round_trips(model: GroupLatentAutoencoder, shape: tuple[int, ...]) -> bool:
    """Whether the model and its group take images of ``shape`` and decode them to ``shape``."""
    try:
        model.group.check_shape((1, 1, *shape), "image")
        z = model.encode(torch.zeros(1, 1, *shape))
        model.group.check_shape(z.shape, "latent")
        return tuple(model.decode(z).shape[2:]) == shape
    except (ValueError, RuntimeError):
        return False


def _size_message(model, shape, latent, out) -> str:
    side = max(shape)
    with torch.no_grad():
        near = [s for s in range(max(4, side - 8), side + 9) if _round_trips(model, (s,) * len(shape))]
    what = "x".join(map(str, shape))
    trip = (f"its encoder maps them to a {'x'.join(map(str, latent))} latent and its decoder back "
            f"to {'x'.join(map(str, out))}" if latent else "its encoder cannot take them")
    return (f"images of size {what} do not fit the model: {trip}. Sizes that fit near {side}: "
            f"{', '.join(map(str, near)) or 'none'} (the paper model halves each side twice, so a "
            f"side must be a multiple of 4); resize or pad the images")


def initial_mask_probs(cfg: TrainConfig, image_shape: tuple[int, ...]) -> list[float]:
    """``sigmoid(alpha)`` per channel as :func:`galib.train.train` initialises it (same seeding)."""
    torch.manual_seed(cfg.seed)
    return model_from_config(cfg, image_shape).mask.probs().detach().tolist()


def _effective(config: dict | TrainConfig, key: str):
    """A config value as it acts: legacy defaults filled in, ``consistency`` resolved per group."""
    get = config.get if isinstance(config, dict) else lambda k, d=None: getattr(config, k, d)
    value = get(key, LEGACY.get(key))
    if key == "consistency":
        value = resolve_consistency(value, get_group(get("group", "c4")))
    return value


def config_differences(saved: dict, cfg: TrainConfig, keys) -> list[str]:
    """``"key: checkpoint A vs config B"`` for each of ``keys`` on which ``saved`` and ``cfg`` act
    differently (legacy defaults filled in; ``saved`` may use an earlier galib's names)."""
    saved = upgrade_config(saved)
    return [f"{k}: checkpoint {saved.get(k)!r} vs config {getattr(cfg, k)!r}" for k in keys
            if _effective(saved, k) != _effective(cfg, k)]


def check_compatible(saved: dict, cfg: TrainConfig, keys, path) -> None:
    """Raise ``ValueError`` naming the checkpoint ``path`` and every difference
    (:func:`config_differences`) if ``saved`` (a checkpoint's config) and ``cfg`` act differently
    on any of ``keys``."""
    diffs = config_differences(saved, cfg, keys)
    if diffs:
        raise ValueError(f"checkpoint {path} is incompatible with the config ({', '.join(diffs)})")
