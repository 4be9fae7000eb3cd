"""The training loop: ``train``, one epoch (``run_epoch``), and the non-finite guard.

Per epoch it records train and validation loss (total and each term), the variant fraction and
channels of the mask, and seconds; with a run dir it saves ``last.pt``, ``best.pt`` (lowest
validation loss) and ``history.json`` and resumes from them (:mod:`galib.train.runs`). Pair
sampling uses one generator per epoch seeded from ``(seed, epoch)``, so an interrupted and
resumed run ends with the same weights as an uninterrupted one.

A non-finite loss term (in training or validation) or parameter stops training with
:class:`NonFiniteError`, naming the epoch, the step and the term; the epoch is not saved, so the
run dir keeps the last good state. Finding the step costs nothing per step: the loss terms each
step already computes are kept and searched only when an epoch's sum is non-finite.

``amp=True`` runs the training and validation steps under bf16 autocast (CUDA, or a CPU with
native bf16: ``amx_bf16`` / ``avx512_bf16``; see ``docs/performance.md``). Under ``torch.distributed``
(see :mod:`galib.distributed`) each rank computes the loss on its slice of every global batch of
``batch_size`` pairs, DDP averages the gradients, and only rank 0 prints and writes files (and
holds the run dir's lock), so the run matches a single-process run with the same ``batch_size``.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path

import torch
import torch.distributed as dist

from ..datasets import DataSplits, ImageSet, load_dataset, to_float
from ..devices import autocast, resolve_device, training_threads, wide_dtype
from ..losses import PairLoss
from ..models import GroupLatentAutoencoder
from ..pairs import iterate_pairs
from .config import TrainConfig, model_from_config
from .diagnostics import diagnostic_pairs, latent_diagnostics
from .runs import RunDir, RunError, RunState, best_epoch, history_up_to, read_state

LOSS_TERMS = ("loss", "recon", "inv", "const")


class NonFiniteError(FloatingPointError):
    """Training produced a non-finite loss term or parameter; the message names the epoch, the
    step and the term, and what was kept."""


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


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


@dataclass(frozen=True)
class EpochOptions:
    """The keyword options of :func:`run_epoch`."""
    progress: bool = False                  # show a tqdm bar
    desc: str = ""                          # the bar's label
    step: torch.nn.Module | None = None     # (x, gx, g) -> loss terms; default PairLoss(model, ...)
    epoch: int | None = None                # 1-based, named by NonFiniteError

    @classmethod
    def of(cls, opts: dict) -> EpochOptions:
        unknown = sorted(set(opts) - {f.name for f in fields(cls)})
        if unknown:
            allowed = ", ".join(f.name for f in fields(cls))
            raise TypeError(f"run_epoch() got unexpected keyword argument(s) "
                            f"{', '.join(map(repr, unknown))}; its options are: {allowed}")
        return cls(**opts)


def run_epoch(model, data: ImageSet, cfg: TrainConfig, generator: torch.Generator,
              device: torch.device, optimizer: torch.optim.Optimizer | None = None,
              **opts) -> dict[str, float]:
    """One pass over ``data``: trains when ``optimizer`` is given, else evaluates without grad.

    Keyword options (:class:`EpochOptions`; any other keyword is a ``TypeError``): ``progress``
    (a tqdm bar, labelled ``desc``), ``step`` (computes the loss terms from ``(x, gx, g)``;
    default ``PairLoss(model, ...)``; DDP passes its wrapper) and ``epoch`` (1-based, for errors).
    Under ``torch.distributed`` each rank takes its slice of every batch. Returns per-sample means
    of every loss term (over all ranks); a non-finite one raises :class:`NonFiniteError` naming
    ``epoch``, the step and the term.
    """
    options = EpochOptions.of(opts)
    step = options.step or PairLoss.from_config(model, cfg)
    rank, world = _rank_and_world()
    seen, owns = [], []                                        # (steps, terms): searched on failure
    step.train(optimizer is not None)
    batches = iterate_pairs(data, model.group, cfg.batch_size, generator,
                            shuffle=optimizer is not None, device=device,
                            pose_generator=_pose_generator(cfg, generator))
    mask, flips = model.hard_mask(), torch.zeros((), dtype=torch.long, device=device)
    bar = _progress(batches, total=math.ceil(len(data) / cfg.batch_size), desc=options.desc,
                    enabled=options.progress)
    with torch.set_grad_enabled(optimizer is not None):
        for x, gx, g, _ in bar:
            n = len(x)
            (x, gx, g), own = _shard((x, gx, g), rank, world)     # own: this rank's sample count
            with autocast(device, cfg.amp):                    # bf16 where cfg.amp (checked by validate)
                terms = step(x, gx, g)
            if optimizer is not None:
                loss = terms["loss"] if world == 1 else terms["loss"] * (world * own / n)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()                                # DDP: mean over ranks = batch mean
                optimizer.step()
                if mask is not None:                           # a model with a mask (not 'none')
                    mask, before = model.hard_mask(), mask
                    flips += (mask != before).sum()            # no sync: read once an epoch
            seen.append(torch.stack([terms[k].detach() for k in LOSS_TERMS]))
            owns.append(own)
    sums = _weighted_sums(seen, owns, device)                  # one reduction per epoch, no per-step sync
    if world > 1:
        dist.all_reduce(sums)
    means = dict(zip(LOSS_TERMS, (sums / len(data)).tolist()))
    if not all(math.isfinite(v) for v in means.values()):
        raise NonFiniteError(_nonfinite_message(seen, optimizer is not None, options.epoch))
    return means if optimizer is None else {**means, "mask_flips": int(flips)}


def _pose_generator(cfg: TrainConfig, generator: torch.Generator) -> torch.Generator | None:
    """The poses of ``cfg.pose='random'``: a generator of their own (derived from the epoch's), so
    the batch order and the ``g`` stay those of the upright run."""
    if getattr(cfg, "pose", "upright") == "upright":
        return None
    return torch.Generator().manual_seed(generator.initial_seed() + 7_919)


def _weighted_sums(seen: list[torch.Tensor], owns: list[int], device: torch.device) -> torch.Tensor:
    """``sum_steps own * terms`` in the wide dtype: (len(LOSS_TERMS),)."""
    acc = wide_dtype(device)
    if not seen:
        return torch.zeros(len(LOSS_TERMS), dtype=acc, device=device)
    weights = torch.tensor(owns, dtype=acc, device=device)    # (steps,)
    return weights @ torch.stack(seen).to(acc)                 # (steps,) @ (steps, terms)


def _nonfinite_message(seen: list[torch.Tensor], training: bool, epoch: int | None) -> str:
    what = "training" if training else "validation"
    where = f" at epoch {epoch}" if epoch is not None else ""
    bad = (~torch.isfinite(torch.stack(seen).float())).cpu() if seen else torch.zeros(0, 4, dtype=torch.bool)
    rows = bad.any(1).nonzero().flatten().tolist()
    if not rows:                                               # another rank's slice went bad
        return f"non-finite {what} loss{where} (on another rank)"
    i = rows[0]
    values = seen[i].float().cpu().tolist()
    terms = ", ".join(f"{k}={v:g}" for k, v in zip(LOSS_TERMS, values))
    names = [k for k, b in zip(LOSS_TERMS, bad[i].tolist()) if b and k != "loss"] or ["loss"]
    return (f"non-finite {what} loss{where}, step {i + 1} of {len(seen)}: "
            f"{'term' if len(names) == 1 else 'terms'} {', '.join(names)} ({terms})")


def check_parameters(model: torch.nn.Module, epoch: int) -> None:
    """Raise :class:`NonFiniteError` naming every parameter of ``model`` that holds a non-finite
    value (``epoch``, 1-based, for the message): the check after each epoch's training steps."""
    named = list(model.named_parameters())
    finite = torch.stack([torch.isfinite(p).all() for _, p in named]).tolist()
    bad = [name for (name, _), ok in zip(named, finite) if not ok]
    if bad:
        raise NonFiniteError(f"non-finite parameters after the training steps of epoch {epoch}: "
                             f"{', '.join(bad)}")


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


FUSED_ADAM_DEVICES = ("cpu", "cuda")


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam on the trainable parameters (AdamW when ``cfg.weight_decay > 0``): ``fused`` (one
    kernel for all parameters; 0.4 ms less per step than ``foreach`` on CPU, the same update to
    rounding: 6e-8 after 50 steps) where the parameters live on cpu or cuda, else ``foreach``."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = getattr(cfg, "weight_decay", 0.0)
    kind = (lambda ps, **kw: torch.optim.AdamW(ps, weight_decay=decay, **kw)) if decay > 0 else torch.optim.Adam
    if params and all(p.device.type in FUSED_ADAM_DEVICES for p in params):
        return kind(params, lr=cfg.lr, fused=True)
    return kind(params, lr=cfg.lr, foreach=True)


def _progress(it, total: int, desc: str, enabled: bool):
    if not enabled:
        return it
    from tqdm.auto import tqdm                                 # terminal and JupyterLab
    return tqdm(it, total=total, desc=desc, leave=False)


def train(cfg: TrainConfig | None = None, run_dir: str | Path | None = None,
          data: DataSplits | None = None, resume: bool = True, progress: bool = True,
          verbose: bool = True, fresh: bool = False, repair: bool = False) -> TrainResult:
    """Train per ``cfg``; with ``run_dir`` save checkpoints/history there and resume from them.

    A run dir holds one run (see :mod:`galib.train.runs`): ``repair=True`` rebuilds damaged or
    missing files where that is exact, ``fresh=True`` (or ``resume=False``) moves the old files to
    ``run_dir/previous-N/`` and starts over. Any number of processes may read one finished run
    at once (a shared lock); a run being trained or repaired by another process is a
    :class:`~galib.train.runs.RunError` naming its pid (readers do not wait for it).

    Asking a finished run for fewer epochs than it holds (say it was extended to 400 epochs and a
    notebook asks for 5) returns the best of the first ``epochs`` epochs if ``best.pt`` keeps it;
    else it returns the run as it is, with a note: the model of its best epoch, all its rows, and
    ``result.config.epochs`` set to the epochs it holds (the shorter run's weights are not kept;
    use another run dir or ``fresh=True`` to train ``epochs`` epochs).
    """
    cfg = (cfg or TrainConfig()).validate()
    device = resolve_device(cfg.device)
    rank, _ = _rank_and_world()
    if rank != 0:                                              # only rank 0 talks and writes
        progress = verbose = False
    if data is None:
        data = load_dataset(cfg.dataset, cfg.data_root, seed=cfg.seed, max_train=cfg.max_train,
                            val_fraction=cfg.val_fraction, verbose=verbose)
    data.check()
    torch.manual_seed(cfg.seed)
    model = model_from_config(cfg, data.image_shape).to(device)
    fit = _Fit(cfg, model, make_optimizer(model, cfg), data, device, None, progress, verbose)
    if run_dir is None:
        return _fit(fit, RunState())
    run, state = _open_run(Path(run_dir), cfg, data, fresh or not resume, repair, verbose)
    try:
        return _fit(replace(fit, run=run), state)
    finally:
        if run is not None:
            run.close()


def _open_run(path: Path, cfg, data, fresh: bool, repair: bool, verbose: bool):
    """``(RunDir on rank 0 else None, RunState)``: rank 0 locks, checks and repairs the run dir;
    under torch.distributed the other ranks then read its checkpoints (or raise its error)."""
    rank, world = _rank_and_world()
    run, state, error = None, None, None
    if rank == 0:
        run = RunDir(path, cfg, data, verbose)
        try:
            state = run.open(fresh=fresh, repair=repair)
        except Exception as err:                               # noqa: BLE001 (shared with all ranks)
            if world == 1:
                raise
            error = err
    if world > 1:
        shared = [None if error is None else f"{type(error).__name__}: {error}"]
        dist.broadcast_object_list(shared, src=0)
        if error is not None:
            raise error
        if shared[0] is not None:
            raise RunError(f"rank 0: {shared[0]}")
        if rank != 0:
            state = read_state(path)
    return run, state


@dataclass
class _Fit:
    """What the epoch loop carries; ``run`` is the run dir on rank 0, else None."""
    cfg: TrainConfig
    model: GroupLatentAutoencoder
    optimizer: torch.optim.Optimizer
    data: DataSplits
    device: torch.device
    run: RunDir | None
    progress: bool
    verbose: bool


def _fit(fit: _Fit, state: RunState) -> TrainResult:
    recorded = _recorded_threads(state)
    if fit.cfg.threads is None and recorded is not None:       # a loaded run reports what it ran at
        fit = replace(fit, cfg=replace(fit.cfg, threads=recorded))
    cfg, model, data, verbose = fit.cfg, fit.model, fit.data, fit.verbose
    history, start, best_val = [], 0, math.inf
    if state.last is not None:
        done = state.last["epoch"] + 1
        if cfg.epochs < done:                                  # a longer finished run
            history = history_up_to(state, cfg.epochs, state.path, verbose)
            model.load_state_dict(state.best["model"])
            return TrainResult(model.eval(), history, replace(cfg, epochs=len(history)), data,
                               state.path)
        model.load_state_dict(state.last["model"])
        fit.optimizer.load_state_dict(state.last["optimizer"])
        history, start, best_val = state.last["history"], done, state.last["best_val"]
        if verbose and start < cfg.epochs:
            print(f"[galib] resuming {state.path} at epoch {start}/{cfg.epochs}")
    if fit.run is not None and start < cfg.epochs:
        fit.run.check_writable()
    best_state = None
    if start < cfg.epochs:
        fit = _with_threads(fit, state, verbose)
        before = torch.get_num_threads()
        torch.set_num_threads(fit.cfg.threads)
        try:
            best_state = _epochs(fit, history, start, best_val)
        finally:
            torch.set_num_threads(before)                      # the caller's setting, as it was
        cfg = fit.cfg
    if best_state is not None:
        model.load_state_dict(best_state)
    elif state.best is not None:                               # resumed a finished run
        model.load_state_dict(state.best["model"])
    return TrainResult(model.eval(), history, cfg, data, state.path)


def _recorded_threads(state: RunState) -> int | None:
    """The thread count the run's ``last.pt`` records (None: a new run, or one from before)."""
    return (state.last or {}).get("config", {}).get("threads") if state.last is not None else None


def _with_threads(fit: _Fit, state: RunState, verbose: bool) -> _Fit:
    """``fit`` with ``cfg.threads`` resolved (:func:`galib.devices.training_threads`): the count
    this training runs at, saved with its checkpoints so a resume or replay runs at it too."""
    n, note = training_threads(fit.cfg.threads, _recorded_threads(state))
    if note and verbose:
        print(note)
    return replace(fit, cfg=replace(fit.cfg, threads=int(n)))


def _epochs(fit: _Fit, history: list[dict], start: int, best_val: float) -> dict | None:
    """Train epochs ``start..cfg.epochs-1`` (appending to ``history``, saving to ``fit.run``);
    the weights of the best new epoch, or None if none beat ``best_val``."""
    cfg, model, optimizer, data, device, run = (fit.cfg, fit.model, fit.optimizer, fit.data,
                                                fit.device, fit.run)
    rank, world = _rank_and_world()
    step = PairLoss.from_config(model, cfg)
    train_step = step
    if world > 1:                                              # after loading: DDP syncs from rank 0
        from torch.nn.parallel import DistributedDataParallel
        train_step = DistributedDataParallel(
            step, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=cfg.mask == "none")  # the autoencoder leaves Phi_g unused
    val_gen_seed = cfg.seed + 1                                # the same validation pairs every epoch
    diag_x, diag_g = diagnostic_pairs(data.val.images, model.group, cfg.seed + 2)
    diag_x, diag_g = to_float(diag_x).to(device), diag_g.to(device)   # without an occluder
    best_state = None
    for epoch in range(start, cfg.epochs):
        t0 = time.perf_counter()
        try:
            tr = run_epoch(model, data.train, cfg, epoch_generator(cfg.seed, epoch), device, optimizer,
                           progress=fit.progress, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                           step=train_step, epoch=epoch + 1)
            check_parameters(model, epoch + 1)
            va = run_epoch(model, data.val, cfg, torch.Generator().manual_seed(val_gen_seed), device,
                           step=step, epoch=epoch + 1)
        except NonFiniteError as err:
            raise NonFiniteError(f"{err}. {_kept(run, history)} Lower lr (now {cfg.lr:g}) or the "
                                 f"loss weights, or check the data") from None
        row = epoch_row(epoch, tr, va, model, t0)
        row.update(latent_diagnostics(model.encode, model.hard_mask(), model.group, diag_x, diag_g))
        history.append(row)
        improved = va["loss"] < best_val
        best_val = min(best_val, va["loss"])
        if improved:
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if fit.verbose:
            print(f"epoch {epoch + 1:3d}/{cfg.epochs}  train {tr['loss']:.4f}  val {va['loss']:.4f} "
                  f"(recon {va['recon']:.4f} inv {va['inv']:.4f} const {va['const']:.4f})  "
                  + ("" if model.mask is None else f"variant {row['variant_fraction']:.2f}  ")
                  + f"{row['seconds']:.1f}s" + ("  *" if improved else ""))
        if run is not None and rank == 0:
            run.save(cfg, model, optimizer, epoch, history, best_val, improved)
    return best_state


def _kept(run: RunDir | None, history: list[dict]) -> str:
    if run is None:
        return "Nothing was saved (no run dir)."
    if not history:
        return f"Nothing was saved in {run.path} (no epoch finished)."
    return f"{run.path / 'last.pt'} (epoch {history[-1]['epoch']}) is kept, unchanged."


def epoch_row(epoch: int, tr: dict, va: dict, model, t0: float) -> dict:
    """One ``history`` row: every loss term on train and validation, the mask and its flips over
    the epoch's steps, seconds since ``t0`` (``time.perf_counter``); ``epoch`` is 0-based, ``tr`` /
    ``va`` are :func:`run_epoch`'s results. The latent diagnostics are added by the caller."""
    tr = dict(tr)
    flips = tr.pop("mask_flips", 0)
    return {"epoch": epoch + 1, **{f"train_{k}": v for k, v in tr.items()},
            **{f"val_{k}": v for k, v in va.items()},
            "variant_fraction": model.variant_fraction(),
            "variant_channels": None if model.mask is None else model.hard_mask().nonzero().flatten().tolist(),
            "mask_probs": None if model.mask is None else model.mask.probs().detach().cpu().tolist(),
            "mask_flips": flips,
            "seconds": time.perf_counter() - t0}
