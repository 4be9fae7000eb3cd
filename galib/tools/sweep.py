"""Train every run a profile's notebooks will open, and score every row they will read, outside
the notebook kernels.

    python -m galib.tools.sweep --profile quick                      # local workers (default)
    python -m galib.tools.sweep --profile paper --dry-run            # how many, and the CPU time
    python -m galib.tools.sweep --profile paper --executor slurm --slurm-partition gpu --gpus 1
    python -m galib.tools.sweep --profile paper --executor ray --ray-address auto
    galib-sweep ...                                                  # the same, as a console script

The plan is what the notebooks' own study functions open (:mod:`galib.studies.registry`),
with the parameters the pipeline injects, in the same run folders (``--run-root``, as the
pipeline's), and the scoring tasks (:class:`~galib.experiments.plan.Scoring`): each row, test
score, swap score and probe-budget check a notebook reads, computed by the same study function
with the same settings and cached in the run folders, on the same executors once the trainings it
needs have finished. Afterwards ``python -m galib.tools.pipeline --profile NAME --run-root R``
finds every run finished and every row scored, and only reads and draws. A killed sweep, run again, resumes each run where it
stopped (bit-identical to an uninterrupted run); a failing training is reported with its key and
log, the trainings that need it are skipped, the rest go on, and the exit status is 1. A run
counts as finished only when its files verify as the trainer checks them on load
(:func:`galib.experiments.plan.run_status`): a damaged one is reported and handed to its training,
which completes it or says how to repair it. A local worker that dies (``kill -9``, out of memory)
costs its trainings one more try on a new pool.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

from ..experiments.plan import Scoring, Training, epochs_done, merge, run_status
from ..studies.registry import study_scorings, study_trainings
from ..experiments.scoring import is_scored
from ..paths import DATA_ENV, home
from ..studies.params import notebook_config
from ..train.cli import ShortUsageParser, int_at_least
from .executors import ENGINES, EngineError, EngineOptions, make_engine, run_plan
from .profiles import PipelineError, check_profile, load_profile, notebook_parameters, select_notebooks


def profile_plan(profile: str | dict, run_root: str | Path, fig_dir: str | Path = "figures",
                 dataset: str | None = None, only=None, overrides: dict | None = None,
                 scoring: bool = True) -> list[Training | Scoring]:
    """Every training the profile's notebooks (``only``: those selected) open, one per run folder,
    dependencies first, then (``scoring``) every scoring task of what they read."""
    prof = load_profile(profile) if isinstance(profile, str) else profile
    overrides = {**(overrides or {}), **({"dataset": dataset} if dataset else {})}
    stems = select_notebooks(only if only is not None else prof.get("only"))
    check_profile(prof, stems, overrides)
    os.environ.setdefault(DATA_ENV, str(home() / "data"))
    out, scorings = [], []
    for stem in stems:
        injected = notebook_parameters(prof, stem, Path(fig_dir).resolve(), Path(run_root).resolve(),
                                       overrides)
        try:
            params, cfg = notebook_config(stem, injected)
            out += study_trainings(stem, params, cfg)
            scorings += study_scorings(stem, params, cfg) if scoring else []
        except (ValueError, TypeError) as err:           # a bad value: one line naming it
            raise PipelineError(f"{stem}: {' '.join(str(err).split())}") from None
    return merge(out, scorings)


def task_status(plan: list[Training | Scoring]) -> dict[str, tuple[str, str]]:
    """``{key: (status, why)}``: a training's :func:`~galib.experiments.plan.run_status`; a
    scoring's ``("finished", "")`` when its trainings are finished and every score it computes is
    cached, else ``("to score", why)``."""
    status = {t.key: run_status(t) for t in plan if isinstance(t, Training)}
    for s in [s for s in plan if isinstance(s, Scoring)]:
        waiting = [n for n in s.needs if status.get(n, ("finished",))[0] != "finished"]
        status[s.key] = (("to score", f"waits for {waiting}") if waiting else
                         ("finished", "") if is_scored(s) else ("to score", "not cached"))
    return status


# ----------------------------------------------------------------------------- estimate
def step_seconds(t: Training, batches: int = 6) -> float:
    """Measured seconds of one training batch of ``t``'s model on its data, on this machine."""
    import torch

    from ..train import make_optimizer, model_from_config, run_epoch
    data = t.data.load()
    cfg = replace(t.config, mask_variant=t.config.mask_variant or (t.config.latent_channels // 2))
    model = model_from_config(cfg, data.image_shape)
    opt = make_optimizer(model, cfg)
    dev = torch.device("cpu")
    warm = data.train.head(cfg.batch_size * 2)
    run_epoch(model, warm, cfg, torch.Generator().manual_seed(0), dev, opt)
    part = data.train.head(cfg.batch_size * batches)
    t0 = time.perf_counter()
    run_epoch(model, part, cfg, torch.Generator().manual_seed(1), dev, opt)
    return (time.perf_counter() - t0) / batches


def probe_seconds(n: int, f: int, iters: int, lk: int = 40) -> float:
    """Rough seconds of one probe fit on ``n`` rows of ``f`` features (every l2 of the grid at
    once, ``lk`` rows per product): one loss evaluation measured on random features, times the
    evaluations ``iters`` L-BFGS iterations take (about 1.3 each)."""
    import torch

    from ..evaluation import probe
    g = torch.Generator().manual_seed(0)
    design = probe.Design(torch.randn(n, f, generator=g), lk)
    W, b, y = torch.zeros(lk, f), torch.zeros(lk), torch.randint(0, 10, (n,), generator=g)
    probe.loss_and_grad(design, W.view(lk // 10, 10, f), b.view(lk // 10, 10), y, (1e-3,) * (lk // 10))
    t0 = time.perf_counter()
    probe.loss_and_grad(design, W.view(lk // 10, 10, f), b.view(lk // 10, 10), y, (1e-3,) * (lk // 10))
    return (time.perf_counter() - t0) * 1.3 * iters


def scoring_seconds(s: Scoring, fit: float, per_image: float) -> float:
    """Rough seconds of one scoring task: its probe fits (two protocols each, the size of ``z``:
    ``fit`` seconds) and its encoded images."""
    return 2 * s.fits * fit + s.images * per_image


def estimate(plan: list[Training | Scoring], threads: int, status: dict | None = None) -> dict:
    """CPU seconds of the plan's unfinished epochs, from one measured batch per kind of model and
    data (validation batches counted at a third of a training batch: no backward pass), and of
    its unfinished scorings (:func:`scoring_seconds`, one loss evaluation measured per size)."""
    import torch
    torch.set_num_threads(threads)
    status = status or task_status(plan)
    trainings = [t for t in plan if isinstance(t, Training)]
    measured, total, todo = {}, 0.0, 0
    for t in trainings:
        if status[t.key][0] == "finished":                # as sweep() decides
            continue
        done = min(epochs_done(t.run_dir), t.config.epochs - 1)
        todo += 1
        kind = (t.data, t.config.batch_size, t.config.latent_channels, t.config.group, t.config.zi_design)
        if kind not in measured:
            measured[kind] = step_seconds(t)
        data = t.data.load()
        batches = len(data.train) / t.config.batch_size + len(data.val) / t.config.batch_size / 3
        total += measured[kind] * batches * (t.config.epochs - done) * threads
    scorings = [s for s in plan if isinstance(s, Scoring) and status[s.key][0] != "finished"]
    score_total = _scoring_estimate(scorings, trainings, measured) * threads
    return {"trainings": len(trainings), "to_train": todo, "cpu_seconds": total,
            "scorings": len(plan) - len(trainings), "to_score": len(scorings),
            "score_cpu_seconds": score_total}


def _scoring_estimate(scorings: list[Scoring], trainings: list[Training], measured: dict) -> float:
    """Seconds of ``scorings``: per task the size of its first training's data and latent."""
    by_key = {t.key: t for t in trainings}
    total, fits = 0.0, {}
    for s in scorings:
        t = next((by_key[n] for n in s.needs if n in by_key), trainings[0] if trainings else None)
        if t is None:
            continue
        data = t.data.load()
        side = data.image_shape[-1] // 4                       # the paper encoder: two stride-2 layers
        f = t.config.latent_channels * side ** (len(data.image_shape) - 1)
        size = (len(data.train), f, t.config.max_train)
        if size not in fits:
            fits[size] = probe_seconds(len(data.train), f, 50)
        kind = (t.data, t.config.batch_size, t.config.latent_channels, t.config.group, t.config.zi_design)
        if kind not in measured:                                # measured once per kind, as for trainings
            measured[kind] = step_seconds(t)
        per_image = measured[kind] / t.config.batch_size / 3 * 9   # 8 elements + x
        total += scoring_seconds(s, fits[size], per_image) + len(data.test) * per_image
    return total


def _hm(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


# ----------------------------------------------------------------------------- run
def sweep(plan: list[Training | Scoring], executor: str = "local", options: EngineOptions | None = None,
          progress: bool = True) -> list:
    """Run the plan's unfinished trainings, then its scorings, on ``executor`` (a scoring starts
    once the trainings it needs have finished); returns the outcomes."""
    options = options or EngineOptions()
    status = task_status(plan)                          # checkpoints verified, rows looked up
    todo = [t for t in plan if status[t.key][0] != "finished"]
    finished = [t for t in plan if t not in todo]
    for t in todo:
        if status[t.key][0] == "damaged":                  # its training says what to do
            print(f"[sweep] {t.key}: not counted as finished, its run folder does not verify: "
                  f"{status[t.key][1][:160]}…", flush=True)
    n_train = sum(isinstance(t, Training) for t in plan)
    n_train_todo = sum(isinstance(t, Training) for t in todo)
    print(f"[sweep] {n_train} trainings, {n_train - n_train_todo} already finished, {n_train_todo} to "
          f"run; {len(plan) - n_train} scorings, {len(todo) - n_train_todo} to score; on {executor} "
          f"({_layout(executor, options)})", flush=True)
    if not todo:
        return []
    bar = _bar(len(todo), progress)
    engine = make_engine(executor, options)
    try:
        return run_plan(todo, engine, options.threads, progress=lambda o: _tick(bar, o),
                        finished=finished)
    finally:
        engine.close()
        bar.close()


def _layout(executor: str, o: EngineOptions) -> str:
    if executor == "local":
        return f"{o.jobs} worker{'s' if o.jobs > 1 else ''} × {o.threads} thread{'s' if o.threads > 1 else ''}"
    return f"{o.cpus or o.threads} CPU(s), {o.gpus} GPU(s), {o.threads} thread(s) per training"


def _bar(total: int, progress: bool):
    """One bar of trainings done / total with tqdm's ETA (a widget in JupyterLab); without a bar
    (a log file), :func:`_tick` prints a line per training instead."""
    from tqdm.auto import tqdm
    bar = tqdm(total=total, desc="tasks", unit="task", disable=not progress, file=sys.stdout,
               dynamic_ncols=True)
    bar.galib_start, bar.galib_done = time.perf_counter(), 0     # tqdm counts nothing when disabled
    return bar


def _tick(bar, outcome) -> None:
    bar.update(1)
    bar.galib_done += 1
    if outcome.status != "done":
        bar.write(f"[sweep] {outcome.status}: {outcome.key}: {outcome.error} (log: {outcome.log})")
    elif bar.disable:
        done, total = bar.galib_done, bar.total
        elapsed = time.perf_counter() - bar.galib_start
        eta = elapsed / done * (total - done)
        print(f"[sweep] {done}/{total} done: {outcome.key} ({(outcome.info or {}).get('seconds', 0):.0f} s); "
              f"{_hm(elapsed)} so far, about {_hm(eta)} to go", flush=True)


def summary(outcomes: list) -> tuple[str, int]:
    """A summary line per failed/skipped task, and the exit status (1 if any)."""
    bad = [o for o in outcomes if o.status != "done"]
    trained = sum((o.info or {}).get("trained", 0) for o in outcomes)
    scored = [o for o in outcomes if o.status == "done" and (o.info or {}).get("scored")]
    lines = [f"[sweep] {len(outcomes) - len(bad)} of {len(outcomes)} tasks done "
             f"({trained} epochs trained now, {len(scored)} scorings, "
             f"{sum((o.info or {}).get('seconds', 0) for o in scored):.0f} s of scoring)"]
    lines += [f"[sweep]   {o.status}: {o.key} — {o.error} (log: {o.log})" for o in bad]
    return "\n".join(lines), int(bool(bad))


# ----------------------------------------------------------------------------- worker layouts
LAYOUTS = {"1 worker × 2 threads": (1, 2), "2 workers × 1 thread": (2, 1)}


def measure_layouts(profile: str, only=None, repeats: int = 2, layouts=LAYOUTS) -> dict:
    """Trainings per hour of the profile's plan (``only``: those notebooks) under each local
    worker layout, run alternately (A, B, A, B, …) in fresh temporary run folders, so that both
    see the same machine. Returns per layout the wall seconds of each repeat and the trainings
    per hour of the median repeat, and the ratio of the first layout to the second."""
    import statistics
    import tempfile
    out = {name: [] for name in layouts}
    n = None
    for r in range(repeats):
        for name, (jobs, threads) in layouts.items():
            with tempfile.TemporaryDirectory(prefix="galib-layout-") as tmp:
                plan = profile_plan(profile, tmp, only=only, scoring=False)
                n = len(plan)
                t0 = time.perf_counter()
                outcomes = sweep(plan, "local", EngineOptions(jobs=jobs, threads=threads), progress=False)
                out[name].append(time.perf_counter() - t0)
                if summary(outcomes)[1]:
                    raise RuntimeError(f"layout {name}: a training failed: {summary(outcomes)[0]}")
            print(f"[sweep] layout {name}, repeat {r + 1}: {n} trainings in {out[name][-1]:.0f} s", flush=True)
    res = {name: {"seconds": secs, "trainings": n,
                  "trainings_per_hour": 3600 * n / statistics.median(secs)} for name, secs in out.items()}
    a, b = (res[k]["trainings_per_hour"] for k in list(layouts)[:2])
    res["ratio_first_to_second"] = a / b
    return res


# ----------------------------------------------------------------------------- command line
def _parser() -> argparse.ArgumentParser:
    ap = ShortUsageParser(prog="python -m galib.tools.sweep", description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="quick", help="smoke | quick | paper | …, or a path to a .json")
    ap.add_argument("--dataset", default=None, help="override the profile's dataset")
    ap.add_argument("--run-root", default=str(home() / "runs"), help="as the pipeline's --run-root")
    ap.add_argument("--only", default=None, help="comma-separated notebook prefixes, e.g. 03,05")
    ap.add_argument("--executor", default="local", choices=ENGINES,
                    help="local worker processes | slurm (submitit) | submitit-local | ray")
    ap.add_argument("--jobs", type=int, default=None, help="local: worker processes (default: cores / threads)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per training (default 1)")
    ap.add_argument("--dry-run", action="store_true", help="print the plan and the estimate; train nothing")
    ap.add_argument("--list", action="store_true", help="with --dry-run: one line per training")
    ap.add_argument("--log-folder", default=None, help="submitit: job logs (default RUN_ROOT/sweep-logs)")
    ap.add_argument("--slurm-partition", default=None)
    ap.add_argument("--slurm-time", type=int_at_least(1), default=240, help="minutes per training")
    ap.add_argument("--cpus", type=int_at_least(1), default=None,
                    help="slurm/ray: CPUs per training (default: --threads)")
    ap.add_argument("--gpus", type=int_at_least(0), default=0, help="slurm/ray: GPUs per training")
    ap.add_argument("--ray-address", default=None, help="ray: address of a running cluster (default: local)")
    ap.add_argument("--no-progress", action="store_true",
                    help="no bar on a terminal (a log file gets a line per training anyway)")
    ap.add_argument("--measure-layouts", type=int_at_least(0), metavar="REPEATS", default=0,
                    help="time the plan under 1 worker × 2 threads and 2 workers × 1 thread, "
                         "alternating, REPEATS times each (fresh temporary run folders); train nothing else")
    return ap


def options_from_args(args) -> EngineOptions:
    """The engine options of the command line; a local layout never uses more threads than cores."""
    cores = os.cpu_count() or 1
    if args.threads < 1:
        raise PipelineError(f"--threads must be at least 1; got {args.threads}")
    jobs = args.jobs if args.jobs is not None else max(1, cores // args.threads)
    if jobs < 1:
        raise PipelineError(f"--jobs must be at least 1; got {jobs}")
    if args.executor == "local" and jobs * args.threads > cores:
        raise PipelineError(f"--jobs {jobs} × --threads {args.threads} = {jobs * args.threads} threads "
                            f"on {cores} cores: lower one of them")
    return EngineOptions(jobs=jobs, threads=args.threads,
                         folder=args.log_folder or str(Path(args.run_root) / "sweep-logs"),
                         partition=args.slurm_partition, time_min=args.slurm_time, cpus=args.cpus,
                         gpus=args.gpus, ray_address=args.ray_address)


def _dry_run(plan: list, args, options: EngineOptions) -> None:
    status = task_status(plan)
    est = estimate(plan, options.threads, status)
    for t in plan if args.list else []:
        what = f"{t.config.epochs:>3} epochs" if isinstance(t, Training) else "   scoring"
        print(f"  {t.key:<44} {what}  {status[t.key][0]:<9} {t.run_dir}")
    jobs = options.jobs if args.executor == "local" else 1
    cpu = est["cpu_seconds"] + est["score_cpu_seconds"]
    wall = cpu / max(1, jobs * options.threads)
    print(f"[sweep] profile {args.profile}: {est['trainings']} trainings, {est['to_train']} to train "
          f"(estimated {est['cpu_seconds'] / 3600:.2f} CPU hours, from one measured batch per kind of "
          f"model); {est['scorings']} scorings, {est['to_score']} to score (roughly "
          f"{est['score_cpu_seconds'] / 3600:.2f} CPU hours, from one measured probe evaluation per "
          f"size); ≈ {_hm(wall)} wall on {jobs} worker(s) × {options.threads} thread(s) here")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        options = options_from_args(args)
        plan = profile_plan(args.profile, args.run_root, dataset=args.dataset,
                            only=args.only.split(",") if args.only else None)
        if args.measure_layouts:
            res = measure_layouts(args.profile, args.only.split(",") if args.only else None,
                                  args.measure_layouts)
            for name in LAYOUTS:
                r = res[name]
                print(f"[sweep] {name}: {r['trainings_per_hour']:.0f} trainings per hour "
                      f"(repeats {', '.join(f'{s:.0f}' for s in r['seconds'])} s for {r['trainings']})")
            print(f"[sweep] ratio {' / '.join(LAYOUTS)}: {res['ratio_first_to_second']:.2f}")
            return 0
        if args.dry_run:
            _dry_run(plan, args, options)
            return 0
        bar = not args.no_progress and sys.stdout.isatty()        # a log file gets a line per training
        text, status = summary(sweep(plan, args.executor, options, progress=bar))
        print(text)
        return status
    except (PipelineError, EngineError, ValueError, KeyError, OSError) as err:   # profile, plan, data, engine
        print(f"[sweep] FAILED: {type(err).__name__}: {err}"
              if not isinstance(err, (PipelineError, EngineError)) else f"[sweep] FAILED: {err}",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("[sweep] interrupted: run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
