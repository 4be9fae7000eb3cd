"""Baselines and loss ablations, trained alike, evaluated alike, over several seeds, tabulated.

Every model shares the base ``TrainConfig`` (encoder/decoder, data, epochs) and differs only
in the fields below; ``pixels`` has no model at all.

=============== ============================================ =======================================
name            what                                         config overrides
=============== ============================================ =======================================
``pixels``      linear probes on raw pixels                  (no model)
``ae``          plain autoencoder, reconstructs ``x``        ``objective='ae'`` (evaluated with the
                                                             whole latent variant: ``split='full'``)
``manual``      fixed mask, first half of channels variant   ``mask='manual'``
``ald``         the paper: learned mask, all three losses    ``mask='learned'``
``random``      fixed random mask, as many variant channels  ``mask='random'``, ``mask_variant`` =
                as the same seed's learned mask (a control)  the ``ald`` row's ``n_variant``
``all-variant`` fixed mask, every channel variant            ``mask='manual'``, ``mask_variant=C``
``ald-pooled``  learned mask, ``z_i`` pooled over the grid      ``invariant='pooled'``
``ald-orbit``   learned mask, ``z_i`` averaged over the orbit   ``invariant='orbit'``
``ald-*-norm``  the same with the normalised ``L_inv``           ``invariance='normalised'``
``recon+inv``   ablation ``L_recon + L_inv``                 ``lambda_const=0``
``recon+const`` ablation ``L_recon + L_const``               ``lambda_inv=0``
``recon``       ablation ``L_recon`` only (not by default)   ``lambda_inv=lambda_const=0``
=============== ============================================ =======================================

:func:`run_baselines` trains each for every training seed into ``run_root/<name>`` (the base
config's seed) or ``run_root/<name>_seed<s>`` (a finished run is loaded, not retrained) and caches
its evaluated row in ``row.json`` there (reused while the run, data and evaluation settings are
unchanged). :func:`results_table` / :func:`write_table` turn rows into a markdown + JSON table,
mean ± sd over seeds. Command line::

    python -m galib.evaluation.baselines --dataset fashion-mnist --epochs 3 --max-train 10000 --out DIR
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from ..datasets import DataSplits, load_dataset
from ..io import save_json, write_text
from ..train import TrainConfig, config_from_args, config_parser, run_cli, train
from .features import FEATURES, PROBE_FIT, PROTOCOLS, probe_model
from .scores import SCORE_LABELS, evaluate_model
from .spread import aggregate
from .tables import format_pm, markdown_table


MODEL_FEATURES = tuple(f for f in FEATURES if f != "pixels")   # pixels: a row of its own
DESIGN_FEATURES = ("z_i", "orbit")   # designs of z_i: the invariant features are what they change


@dataclass(frozen=True)
class Baseline:
    label: str                       # how the table names it
    overrides: dict | None           # TrainConfig fields to change; None: no model
    split: str = "mask"              # "mask" (its ALD mask) or "full" (whole latent variant)
    features: tuple = MODEL_FEATURES  # probe features that mean something for it


_GROUP = {"objective": "group"}
BASELINES: dict[str, Baseline] = {
    "pixels": Baseline("pixels", None, features=("pixels",)),
    "ae": Baseline("AE", {"objective": "ae"}, split="full", features=("z", "orbit")),
    "manual": Baseline("manual mask", {**_GROUP, "mask": "manual"}),
    "ald": Baseline("ALD (all three)", {**_GROUP, "mask": "learned"}),
    "random": Baseline("random mask", {**_GROUP, "mask": "random"}),
    "all-variant": Baseline("all variant", {**_GROUP, "mask": "manual"}),
    "ald-pooled": Baseline("ALD, pooled z_i", {**_GROUP, "mask": "learned", "invariant": "pooled"},
                           features=DESIGN_FEATURES),
    "ald-orbit": Baseline("ALD, orbit-mean z_i", {**_GROUP, "mask": "learned", "invariant": "orbit"},
                           features=DESIGN_FEATURES),
    "ald-orbit-norm": Baseline("ALD, orbit-mean z_i, normalised L_inv",
                               {**_GROUP, "mask": "learned", "invariant": "orbit", "invariance": "normalised"},
                               features=DESIGN_FEATURES),
    "ald-pooled-norm": Baseline("ALD, pooled z_i, normalised L_inv",
                                {**_GROUP, "mask": "learned", "invariant": "pooled", "invariance": "normalised"},
                                features=DESIGN_FEATURES),
    "recon+inv": Baseline("L_recon + L_inv", {**_GROUP, "mask": "learned", "lambda_const": 0.0}),
    "recon+const": Baseline("L_recon + L_const", {**_GROUP, "mask": "learned", "lambda_inv": 0.0}),
    "recon": Baseline("L_recon only", {**_GROUP, "mask": "learned", "lambda_inv": 0.0,
                                       "lambda_const": 0.0}),
}
DEFAULT_NAMES = ("pixels", "ae", "manual", "ald", "recon+inv", "recon+const")
ROW_VERSION = 1                  # bump when the scores change meaning: cached rows are recomputed


def baseline_config(base_cfg: TrainConfig, name: str, n_variant: int | None = None) -> TrainConfig | None:
    """The ``TrainConfig`` of baseline ``name`` (``None`` for ``pixels``). ``random`` needs
    ``n_variant`` (the learned mask's count) and draws its mask from the config's seed."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; choose from {list(BASELINES)}")
    over = BASELINES[name].overrides
    if over is None:
        return None
    if name == "random":
        if n_variant is None:
            raise ValueError("baseline 'random' takes as many variant channels as the learned mask: "
                             "list 'ald' before 'random'")
        over = {**over, "mask_variant": int(n_variant), "mask_seed": base_cfg.seed}
    if name == "all-variant":
        over = {**over, "mask_variant": base_cfg.latent_channels}
    return replace(base_cfg, **over)


def run_dir_of(run_root: str | Path, name: str, seed: int, base_seed: int) -> Path:
    """Where baseline ``name`` trains for ``seed``: ``run_root/name`` for the base seed (so the
    ALD run of notebook 02 is reused), else ``run_root/name_seed<seed>``."""
    return Path(run_root) / (name if seed == base_seed else f"{name}_seed{seed}")


def _flat_scores(scores: dict) -> dict:
    """An :func:`evaluate_model` dict less the keys a row already has."""
    return {k: v for k, v in scores.items() if k not in ("group", "split")}


def run_baselines(base_cfg: TrainConfig, names=DEFAULT_NAMES, run_root: str | Path = "runs/baselines",
                  data: DataSplits | None = None, probe: bool = True, seed: int = 0,
                  eval_kwargs: dict | None = None, probe_kwargs: dict | None = None,
                  progress: bool = False, verbose: bool = True, seeds=None,
                  extra_scores=None) -> list[dict]:
    """Train (or load), evaluate and probe each baseline for each training seed; one flat dict per
    (baseline, seed).

    Row keys: ``name``, ``label``, ``seed``, ``dataset``, ``group``, ``split``; for trained models
    ``objective``, ``mask``, ``lambda_inv``, ``lambda_const``, ``epochs``, ``best_epoch``,
    ``best_val_loss``, ``train_seconds`` and every :func:`galib.evaluation.scores.evaluate_model`
    key (on ``data.test``); with ``probe``, ``probe/<feature>/<a|b|c>`` and ``probe/<feature>/dim``;
    and ``eval_seconds``. ``seeds`` (default: the config's seed) are training seeds; ``seed`` is
    the evaluation seed (the same for all). ``extra_scores(model, data) -> dict`` (a function or a
    ``functools.partial``) adds scores of each trained model whose latent is split (not ``ae``). ``eval_kwargs`` / ``probe_kwargs`` go to
    ``evaluate_model`` / ``probe_model`` (e.g. ``max_images``; ``max_train``, ``max_test``,
    ``fit_kwargs``).
    """
    base_cfg = base_cfg.validate()
    seeds = [base_cfg.seed] if seeds is None else [int(s) for s in seeds]
    eval_kwargs, probe_kwargs = dict(eval_kwargs or {}), dict(probe_kwargs or {})
    if data is None:
        data = load_dataset(base_cfg.dataset, base_cfg.data_root, seed=base_cfg.seed,
                            max_train=base_cfg.max_train, val_fraction=base_cfg.val_fraction,
                            verbose=verbose)
    settings = {"probe": probe, "seed": seed, "eval": eval_kwargs, "probe_kw": probe_kwargs,
                "extra": _describe(extra_scores)}
    rows, untrained = [], {}
    for s in seeds:
        learned = None                                           # this seed's ALD row
        for name in names:
            if name in untrained:                                # no model: the same for every seed
                rows.append({**untrained[name], "seed": s})
                continue
            cfg = baseline_config(replace(base_cfg, seed=s), name,
                                  None if learned is None else learned.get("n_variant"))
            row = _baseline_row(name, cfg, data, run_dir_of(run_root, name, s, base_cfg.seed),
                                base_cfg.group, s, settings, progress, verbose, extra_scores)
            learned = row if name == "ald" else learned
            untrained.update({name: row} if cfg is None else {})
            rows.append(row)
    return rows


def _describe(fn) -> str | None:
    """A stable text for a scoring function (and a partial's arguments), for the row cache."""
    if fn is None:
        return None
    base = getattr(fn, "func", fn)
    args = (getattr(fn, "args", ()), getattr(fn, "keywords", {}))
    return f"{base.__module__}.{base.__qualname__}{args!r}"


def _baseline_row(name: str, cfg: TrainConfig | None, data: DataSplits, run_dir: Path, group: str,
                  seed: int, settings: dict, progress: bool, verbose: bool, extra_scores=None) -> dict:
    """Train (or load) one baseline for one seed, and score it (or reuse its ``row.json``)."""
    spec = BASELINES[name]
    row = {"name": name, "label": spec.label, "seed": seed, "dataset": data.name, "group": group,
           "split": spec.split}
    model = None
    if cfg is not None:
        res = train(cfg, run_dir=run_dir, data=data, progress=progress, verbose=verbose)
        model, best = res.model, res.best
        row.update(objective=cfg.objective, mask=cfg.mask, lambda_inv=cfg.lambda_inv,
                   lambda_const=cfg.lambda_const, epochs=len(res.history),
                   best_epoch=best["epoch"], best_val_loss=best["val_loss"],
                   train_seconds=sum(h["seconds"] for h in res.history))
    key = json.dumps({"row": {k: v for k, v in row.items() if k != "train_seconds"},
                      "config": None if cfg is None else asdict(cfg), "data": data.describe(),
                      **settings, "version": ROW_VERSION}, sort_keys=True, default=str)
    cached = _load_row(run_dir / "row.json", key)
    if cached is not None:
        if verbose:
            print(f"[galib] {name} (seed {seed}): reusing {run_dir / 'row.json'}")
        return cached
    t0 = time.perf_counter()
    row.update(_score(model, data, spec, group, settings["probe"], settings["seed"],
                      settings["eval"], settings["probe_kw"]))
    if extra_scores is not None and model is not None and spec.split == "mask":
        row.update(extra_scores(model, data))
    row["eval_seconds"] = time.perf_counter() - t0
    save_json({"key": key, "row": row}, run_dir / "row.json")
    if verbose:
        print(f"[galib] {name} (seed {seed}): evaluated in {row['eval_seconds']:.1f}s")
    return row


def _score(model, data: DataSplits, spec: Baseline, group: str, probe: bool, seed: int,
           eval_kwargs: dict, probe_kwargs: dict) -> dict:
    """Every :func:`evaluate_model` score (trained models) and, with ``probe``, every
    ``probe/<feature>/<a|b|c|dim>`` of :func:`probe_model`."""
    row = {}
    if model is not None:
        row.update(_flat_scores(evaluate_model(model, data.test, seed=seed, split=spec.split,
                                               **eval_kwargs)))
    if probe:
        found = probe_model(model, data, features=spec.features, seed=seed, group=group,
                            split=spec.split, **probe_kwargs)
        for feat, res in found.items():
            row.update({f"probe/{feat}/{p}": res[p] for p in PROTOCOLS})
            row.update({f"probe/{feat}/{k}": res[k] for k in ("dim", "iters", "grad_norm")})
    return row


def _load_row(path: Path, key: str) -> dict | None:
    if not path.is_file():
        return None
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return saved["row"] if saved.get("key") == key else None


# ----------------------------------------------------------------------------- tables
def table_columns(rows: list[dict]) -> list[tuple[str, str]]:
    """``(column, row key)``: every score of ``SCORE_LABELS`` and ``<feature> <a|b|c>`` for every
    probe feature any row has."""
    feats = [f for f in FEATURES if any(f"probe/{f}/a" in r for r in rows)]
    cols = [(label, key) for key, label in SCORE_LABELS.items()]
    return cols + [(f"{f} {p}", f"probe/{f}/{p}") for f in feats for p in PROTOCOLS]


def results_table(rows: list[dict]) -> list[dict]:
    """One dict per model: ``model`` plus every column of :func:`table_columns` (``None`` where a
    model has no such score), the mean over its seeds; with several seeds also ``seeds`` and
    ``<column> sd``."""
    cols = table_columns(rows)
    agg = aggregate(rows, [k for _, k in cols])
    several = any(r["n_seeds"] > 1 for r in agg)
    out = []
    for r in agg:
        line = {"model": r["label"], **{c: r.get(k) for c, k in cols}}
        if several:
            line.update({"seeds": r["n_seeds"], **{f"{c} sd": r.get(f"{k}_sd") for c, k in cols}})
        out.append(line)
    return out


def format_markdown(table: list[dict]) -> str:
    """A GitHub-flavoured markdown table of :func:`results_table` output (``mean ± sd`` cells when
    it holds several seeds)."""
    if not table:
        return ""
    cols = [c for c in table[0] if not c.endswith(" sd") and c != "seeds"]

    def cell(row, col):
        v, sd = row.get(col), row.get(f"{col} sd")
        if sd is None or v is None:
            return v
        return format_pm(v, sd, "sig3")
    return markdown_table(table, [(c, c) for c in cols], spec="sig3", cell=cell)


def write_table(rows: list[dict], out_dir: str | Path, stem: str = "baselines",
                meta: dict | None = None) -> dict[str, Path]:
    """Write ``{stem}.md`` (the table) and ``{stem}.json`` (``table``, full ``rows``, ``meta``)
    atomically into ``out_dir``; returns ``{"md": path, "json": path}``."""
    out_dir = Path(out_dir)
    table = results_table(rows)
    md, js = out_dir / f"{stem}.md", out_dir / f"{stem}.json"
    text = format_markdown(table)
    write_text(md, text)
    save_json({"meta": meta or {}, "table": table, "rows": rows}, js)
    return {"md": md, "json": js}


# ----------------------------------------------------------------------------- command line
def main(argv=None) -> list[dict]:
    parser = config_parser("Train, evaluate and probe the baselines; write a markdown/JSON table.",
                           prog="python -m galib.evaluation.baselines")
    parser.add_argument("--out", default="baselines_out", help="folder for the table files")
    parser.add_argument("--run-root", default=None, help="folder for the runs (default OUT/runs)")
    parser.add_argument("--names", nargs="+", default=list(DEFAULT_NAMES), choices=list(BASELINES),
                        help="baselines to run, in order ('random' needs 'ald' before it)")
    parser.add_argument("--seeds", nargs="+", type=int, default=None,
                        help="training seeds (default: --seed); the table reports mean ± sd")
    parser.add_argument("--no-probe", action="store_true", help="skip the linear probes")
    parser.add_argument("--eval-seed", type=int, default=0)
    parser.add_argument("--eval-max-images", type=int, default=None, help="test images for the scores")
    parser.add_argument("--probe-max-train", type=int, default=None, help="training images per probe")
    parser.add_argument("--probe-max-test", type=int, default=None, help="test images per probe")
    parser.add_argument("--probe-iters", type=int, default=PROBE_FIT["max_iter"],
                        help="L-BFGS iterations per l2")
    args = parser.parse_args(argv)
    cfg = config_from_args(args)
    out = Path(args.out)
    run_root = Path(args.run_root or args.run_dir or out / "runs")
    t0 = time.perf_counter()
    rows = run_baselines(cfg, args.names, run_root, probe=not args.no_probe, seed=args.eval_seed,
                         eval_kwargs={"max_images": args.eval_max_images},
                         probe_kwargs={"max_train": args.probe_max_train,
                                       "max_test": args.probe_max_test,
                                       "fit_kwargs": {"max_iter": args.probe_iters}},
                         progress=not args.no_progress, seeds=args.seeds)
    wall = time.perf_counter() - t0
    paths = write_table(rows, out, meta={"config": asdict(cfg), "names": args.names,
                                         "argv": sys.argv[1:] if argv is None else list(argv),
                                         "wall_seconds": wall})
    print(format_markdown(results_table(rows)))
    print(f"[galib] wrote {paths['md']} and {paths['json']} ({wall:.0f}s)")
    return rows


if __name__ == "__main__":
    run_cli(main, prog="python -m galib.evaluation.baselines")
