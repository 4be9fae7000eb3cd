"""Training loop: ``TrainConfig`` (the paper's defaults), ``train`` and checkpoint loading.

Per epoch it records train and validation loss (total and each term), the variant fraction and
channels of the mask, and seconds; keeps ``best.pt`` (lowest validation loss) and ``last.pt``; and
resumes from ``last.pt``. Pair sampling uses one generator per epoch seeded from ``(seed, epoch)``,
so an interrupted and resumed run ends with the same weights as an uninterrupted one.
Checkpoints are plain dicts of tensors and literals (``torch.load(..., weights_only=True)``),
written to a temporary file and renamed, so a crash never leaves a half-written file.

``amp=True`` runs the training step under bf16 autocast (CUDA only). Under ``torch.distributed``
(see :mod:`galib.distributed`) each rank computes the loss on its slice of every global batch of
``batch_size`` pairs, DDP averages the gradients, and only rank 0 prints and writes files, so the
run matches a single-process run with the same ``batch_size``.
"""
from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.distributed as dist

from .datasets import DataSplits, ImageSet, load_dataset
from .devices import resolve_device, wide_dtype
from .groups import get_group
from .io import atomic_write, save_json
from .losses import OBJECTIVES, PairLoss, resolve_consistency
from .models import INVARIANTS, MASKS, GroupLatentAutoencoder, build_model, fixed_mask_channels
from .pairs import iterate_pairs

LOSS_TERMS = ("loss", "recon", "inv", "const")
# Fields that define the model's weights: a checkpoint only loads into a config that agrees on them.
MODEL_FIELDS = ("group", "latent_channels", "mask", "objective", "latent_action", "mask_variant",
                "mask_seed", "invariant")
# Fields that may differ when resuming (everything else must match the checkpoint).
RESUME_FREE = ("epochs", "device", "data_root", "amp")


@dataclass
class TrainConfig:
    dataset: str = "auto"          # see galib.datasets.available_datasets(); NAME:SPEC for npz, blocked, shapes3d
    data_root: str | None = None
    group: str = "c4"              # see galib.groups.available_groups()
    tau: float = 0.5               # mask threshold, in (0, 1)
    epochs: int = 50
    batch_size: int = 64
    lr: float = 1e-3
    latent_channels: int = 64
    lambda_inv: float = 1.0
    lambda_const: float = 1.0
    seed: int = 42
    max_train: int | None = None   # cap on training images; None = all
    device: str = "auto"           # auto (cuda, mps, cpu) | cpu | cuda | mps
    val_fraction: float = 0.2
    mask: str = "learned"          # learned (ALD) | manual (first channels variant) | random (fixed draw)
    mask_variant: int | None = None  # variant channels of a manual/random mask; None = half
    mask_seed: int = 0             # which random mask (mask='random')
    invariant: str = "paper"       # the invariant part: paper (masked map) | pooled (grid mean) | orbit (orbit mean)
    objective: str = "group"       # group (the paper's losses) | ae (plain autoencoder baseline)
    latent_action: str = "exact"   # exact (the group's own Phi_g) | a learned kind the group offers
    amp: bool = False              # bf16 autocast of the training step (CUDA only)
    consistency: str = "auto"      # L_const form: auto | direct (paper) | midpoint (see galib.losses)

    def validate(self) -> "TrainConfig":
        if not (isinstance(self.tau, (int, float)) and 0.0 < self.tau < 1.0):
            raise ValueError(f"tau must lie in the open interval (0, 1); got {self.tau!r}")
        for key in ("epochs", "batch_size", "latent_channels"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{key} must be a positive integer; got {value!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive; got {self.lr!r}")
        for key in ("lambda_inv", "lambda_const"):
            if getattr(self, key) < 0:
                raise ValueError(f"{key} must be >= 0; got {getattr(self, key)!r}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {self.objective!r}; choose one of {sorted(OBJECTIVES)}")
        resolve_consistency(self.consistency, get_group(self.group))  # raises on unknown names
        if self.invariant not in INVARIANTS:
            raise ValueError(f"unknown invariant {self.invariant!r}; choose one of {list(INVARIANTS)}")
        if self.mask not in MASKS:
            raise ValueError(f"unknown mask {self.mask!r}; choose one of {list(MASKS)}")
        fixed_mask_channels("manual", self.latent_channels, self.mask_variant)  # checks the count
        device = resolve_device(self.device)
        if self.amp and device.type != "cuda":
            raise ValueError(f"amp=True (bf16 autocast) needs a CUDA device; device {self.device!r} "
                             f"resolves to {device.type!r}: set amp=False")
        return self

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown TrainConfig fields {unknown}; allowed: {sorted(known)}")
        return cls(**d)


def model_from_config(cfg: TrainConfig, image_shape: tuple[int, ...]) -> GroupLatentAutoencoder:
    """Build the paper model for ``cfg`` and check the group can act on its images and latents."""
    group = get_group(cfg.group)
    group.check_shape((1, 1, *image_shape), "image")
    action = None if cfg.latent_action == "exact" else group.make_latent_action(
        cfg.latent_action, cfg.latent_channels)
    model = build_model(group, cfg.latent_channels, cfg.tau, mask=cfg.mask, latent_action=action,
                        mask_variant=cfg.mask_variant, mask_seed=cfg.mask_seed,
                        invariant=cfg.invariant)
    with torch.no_grad():
        z = model.encode(torch.zeros(1, 1, *image_shape))
    group.check_shape(z.shape, "latent")
    return model


def initial_mask_probs(cfg: TrainConfig, image_shape: tuple[int, ...]) -> list[float]:
    """``sigmoid(alpha)`` per channel as :func:`train` initialises it for ``cfg`` (same seeding)."""
    torch.manual_seed(cfg.seed)
    return model_from_config(cfg, image_shape).mask.probs().detach().tolist()


# ----------------------------------------------------------------------------- checkpoints
# Fields added after checkpoints were first written, with the behaviour the code had before them.
LEGACY = {"consistency": "direct", "mask_variant": None, "mask_seed": 0, "invariant": "paper"}


def _effective(config: dict | TrainConfig, key: str):
    """A config value as it acts: legacy defaults filled in, ``consistency`` resolved per group."""
    get = config.get if isinstance(config, dict) else lambda k, d=None: getattr(config, k, d)
    value = get(key, LEGACY.get(key))
    if key == "consistency":
        value = resolve_consistency(value, get_group(get("group", "c4")))
    return value


def _check_compatible(saved: dict, cfg: TrainConfig, keys, path) -> None:
    diffs = {k: (saved.get(k), getattr(cfg, k)) for k in keys
             if _effective(saved, k) != _effective(cfg, k)}
    if diffs:
        desc = ", ".join(f"{k}: checkpoint {a!r} vs config {b!r}" for k, (a, b) in diffs.items())
        raise ValueError(f"checkpoint {path} is incompatible with the config ({desc})")


def load_checkpoint(path: str | Path, cfg: TrainConfig | None = None,
                    map_location: str | torch.device = "cpu"):
    """``(model, config, checkpoint dict)``; with ``cfg`` the model-defining fields must agree."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    ckpt = torch.load(path, map_location=map_location, weights_only=True)
    saved = TrainConfig.from_dict({**LEGACY, **ckpt["config"]})
    if cfg is not None:
        _check_compatible(ckpt["config"], cfg, MODEL_FIELDS, path)
    model = model_from_config(saved, tuple(ckpt["image_shape"]))
    model.load_state_dict(ckpt["model"])
    return model.eval(), saved, ckpt


# ----------------------------------------------------------------------------- training
@dataclass
class TrainResult:
    model: GroupLatentAutoencoder   # weights of the best validation epoch
    history: list[dict]
    config: TrainConfig
    data: DataSplits
    run_dir: Path | None

    @property
    def best(self) -> dict:
        """The history row of the epoch whose weights ``model`` holds."""
        return best_epoch(self.history)


def best_epoch(history: list[dict]) -> dict:
    """The row of the epoch with the lowest validation loss (the first one on ties)."""
    return min(history, key=lambda h: h["val_loss"])


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def run_epoch(model, data: ImageSet, cfg: TrainConfig, generator: torch.Generator,
              device: torch.device, optimizer: torch.optim.Optimizer | None = None,
              progress: bool = False, desc: str = "", step: torch.nn.Module | None = None,
              ) -> dict[str, float]:
    """One pass over ``data``: trains when ``optimizer`` is given, else evaluates without grad.

    ``step`` computes the loss terms from ``(x, gx, g)`` (default ``PairLoss(model, ...)``; DDP
    passes its wrapper). Under ``torch.distributed`` each rank takes its slice of every batch.
    Returns per-sample means of every loss term (over all ranks).
    """
    step = step or PairLoss.from_config(model, cfg)
    rank, world = _rank_and_world()
    acc = wide_dtype(device)
    sums = torch.zeros(len(LOSS_TERMS), dtype=acc, device=device)
    step.train(optimizer is not None)
    batches = iterate_pairs(data, model.group, cfg.batch_size, generator,
                            shuffle=optimizer is not None, device=device)
    bar = _progress(batches, total=math.ceil(len(data) / cfg.batch_size), desc=desc, enabled=progress)
    with torch.set_grad_enabled(optimizer is not None):
        for x, gx, g, _ in bar:
            n = len(x)
            (x, gx, g), own = _shard((x, gx, g), rank, world)     # own: this rank's sample count
            with torch.autocast("cuda", torch.bfloat16) if cfg.amp else contextlib.nullcontext():
                terms = step(x, gx, g)
            if optimizer is not None:
                loss = terms["loss"] if world == 1 else terms["loss"] * (world * own / n)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()                                # DDP: mean over ranks = batch mean
                optimizer.step()
            sums += torch.stack([terms[k].detach() for k in LOSS_TERMS]).to(acc) * own
    if world > 1:
        dist.all_reduce(sums)
    return dict(zip(LOSS_TERMS, (sums / len(data)).tolist()))


def _rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _shard(batch: tuple[torch.Tensor, ...], rank: int, world: int):
    """This rank's slice of a global batch and how many samples it owns.

    Its loss is weighted by ``world·own/len(batch)``, so DDP's mean over ranks is the global
    batch's mean loss, also when the last batch does not split evenly. A rank whose slice would
    be empty runs one sample with weight 0: every rank must join each gradient all-reduce.
    """
    if world == 1:
        return batch, len(batch[0])
    part = tuple(t.tensor_split(world)[rank] for t in batch)
    if len(part[0]) == 0:
        return tuple(t[:1] for t in batch), 0
    return part, len(part[0])


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam on the trainable parameters; ``foreach`` batches its per-parameter ops (the same
    values as the default per-parameter loop, which CPU would otherwise get)."""
    return torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.lr,
                            foreach=True)


def _progress(it, total: int, desc: str, enabled: bool):
    if not enabled:
        return it
    from tqdm.auto import tqdm                                 # terminal and JupyterLab
    return tqdm(it, total=total, desc=desc, leave=False)


def train(cfg: TrainConfig | None = None, run_dir: str | Path | None = None,
          data: DataSplits | None = None, resume: bool = True, progress: bool = True,
          verbose: bool = True) -> TrainResult:
    """Train per ``cfg``; with ``run_dir`` save checkpoints/history there and resume from them."""
    cfg = (cfg or TrainConfig()).validate()
    device = resolve_device(cfg.device)
    rank, world = _rank_and_world()
    if rank != 0:                                              # only rank 0 talks and writes
        progress = verbose = False
    if data is None:
        data = load_dataset(cfg.dataset, cfg.data_root, seed=cfg.seed, max_train=cfg.max_train,
                            val_fraction=cfg.val_fraction, verbose=verbose)
    torch.manual_seed(cfg.seed)
    model = model_from_config(cfg, data.image_shape).to(device)
    optimizer = make_optimizer(model, cfg)
    run_dir = Path(run_dir) if run_dir is not None else None
    history, start, best_val = [], 0, math.inf
    if run_dir is not None and resume and (run_dir / "last.pt").exists():
        history, start, best_val = _resume(run_dir / "last.pt", cfg, model, optimizer, device, verbose)
    step = PairLoss.from_config(model, cfg)
    train_step = step
    if world > 1:                                              # after loading: DDP syncs from rank 0
        from torch.nn.parallel import DistributedDataParallel
        train_step = DistributedDataParallel(
            step, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=cfg.objective != "group")  # 'ae' leaves the mask logits unused
    val_gen_seed = cfg.seed + 1                                # the same validation pairs every epoch
    best_state = None
    for epoch in range(start, cfg.epochs):
        t0 = time.perf_counter()
        tr = run_epoch(model, data.train, cfg, epoch_generator(cfg.seed, epoch), device, optimizer,
                       progress, desc=f"epoch {epoch + 1}/{cfg.epochs}", step=train_step)
        va = run_epoch(model, data.val, cfg, torch.Generator().manual_seed(val_gen_seed), device,
                       step=step)
        row = _epoch_row(epoch, tr, va, model, t0)
        history.append(row)
        improved = va["loss"] < best_val
        best_val = min(best_val, va["loss"])
        if improved:
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if verbose:
            print(f"epoch {epoch + 1:3d}/{cfg.epochs}  train {tr['loss']:.4f}  val {va['loss']:.4f} "
                  f"(recon {va['recon']:.4f} inv {va['inv']:.4f} const {va['const']:.4f})  "
                  f"variant {row['variant_fraction']:.2f}  {row['seconds']:.1f}s" + ("  *" if improved else ""))
        if run_dir is not None and rank == 0:
            _save_epoch(run_dir, cfg, model, optimizer, epoch, history, best_val, improved, data)
    if best_state is not None:
        model.load_state_dict(best_state)
    elif run_dir is not None and (run_dir / "best.pt").exists():   # resumed a finished run
        model.load_state_dict(torch.load(run_dir / "best.pt", map_location=device,
                                         weights_only=True)["model"])
    return TrainResult(model.eval(), history, cfg, data, run_dir)


def _resume(last: Path, cfg: TrainConfig, model, optimizer, device, verbose: bool):
    """Load ``last.pt`` into ``model`` and ``optimizer``; ``(history, next epoch, best val loss)``.
    Every config field but those in ``RESUME_FREE`` must match the checkpoint's."""
    ckpt = torch.load(last, map_location=device, weights_only=True)
    keys = [f.name for f in fields(TrainConfig) if f.name not in RESUME_FREE]
    _check_compatible(ckpt["config"], cfg, keys, last)
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    start = ckpt["epoch"] + 1
    if verbose and start < cfg.epochs:
        print(f"[galib] resuming {last.parent} at epoch {start}/{cfg.epochs}")
    return ckpt["history"], start, ckpt["best_val"]


def _epoch_row(epoch: int, tr: dict, va: dict, model, t0: float) -> dict:
    """One ``history`` row: every loss term on train and validation, the mask, seconds."""
    return {"epoch": epoch + 1, **{f"train_{k}": v for k, v in tr.items()},
            **{f"val_{k}": v for k, v in va.items()},
            "variant_fraction": model.variant_fraction(),
            "variant_channels": model.hard_mask().nonzero().flatten().tolist(),
            "mask_probs": model.mask.probs().detach().cpu().tolist(),
            "seconds": time.perf_counter() - t0}


def _save_epoch(run_dir: Path, cfg, model, optimizer, epoch, history, best_val, improved, data):
    state = {"config": asdict(cfg), "model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "epoch": epoch, "history": history, "best_val": best_val,
             "image_shape": list(data.image_shape), "data": data.describe()}
    if improved:
        atomic_write(run_dir / "best.pt", lambda p: torch.save(state, p))
    atomic_write(run_dir / "last.pt", lambda p: torch.save(state, p))
    save_json({"config": asdict(cfg), "data": data.describe(), "history": history},
              run_dir / "history.json")


# ----------------------------------------------------------------------------- command line
def config_parser(description: str = "Train the ALD model.") -> "argparse.ArgumentParser":
    """An argparse parser with one ``--flag`` per ``TrainConfig`` field plus ``--run-dir``."""
    import argparse
    parser = argparse.ArgumentParser(description=description)
    for f in fields(TrainConfig):
        default = getattr(TrainConfig, f.name)
        flag = "--" + f.name.replace("_", "-")
        if isinstance(default, bool):                          # --amp / --no-amp
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction,
                                default=default, help=f"default: {default}")
            continue
        kind = {"max_train": _optional_int, "mask_variant": _optional_int,
                "data_root": str}.get(f.name, type(default))
        parser.add_argument(flag, dest=f.name, type=kind, default=default, help=f"default: {default}")
    parser.add_argument("--run-dir", default=None, help="folder for checkpoints and history.json")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _optional_int(text: str) -> int | None:
    return None if text.lower() == "none" else int(text)


def config_from_args(args) -> TrainConfig:
    return TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})


def main(argv=None) -> None:
    args = config_parser().parse_args(argv)
    result = train(config_from_args(args), args.run_dir, progress=not args.no_progress)
    best = result.best
    print(json.dumps({"data": result.data.describe(), "best_epoch": best["epoch"],
                      "best_val_loss": best["val_loss"], "variant_fraction": best["variant_fraction"],
                      "variant_channels": best["variant_channels"],
                      "seconds_per_epoch": sum(h["seconds"] for h in result.history) / len(result.history)},
                     indent=2))


if __name__ == "__main__":
    main()
