"""Does the probe's solver change what it reads? The default fit against the old protocol.

    python -m galib.tools.probe_agreement RUN_DIR [RUN_DIR ...] --out figures/evidence/probe_solver

For each trained run (its ``best.pt``), the linear probes of ``z``, ``z_i``, ``z_v`` and the orbit
invariants (:func:`galib.evaluation.features.probe_model`, protocols a, b, c and their validation
readings) fitted twice on the same features: by the old protocol (``solver="warm-path"``,
``--old-iters`` L-BFGS iterations per l2) and by galib's default (``"preconditioned"``, ``--iters``
iterations, all l2 at once), at one thread, on the run's dataset split by ``--split-seed`` (the
evidence profile's base seed 42), every image used. Writes ``probe_agreement.json`` (every
accuracy, chosen l2 and CPU seconds) and ``probe_agreement.md`` (per run the largest change of an
accuracy above chance and of one at chance, and the CPU seconds): the table of
docs/performance.md.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from ..evaluation.features import LATENT_FEATURES, PROBE_FIT, probe_model
from ..evaluation.tables import markdown_table
from ..experiments.plan import DataRequest
from ..io import save_json, write_text
from ..paths import relative_paths, source_commit
from ..train.checkpoints import load_checkpoint
from ..train.cli import ShortUsageParser, int_at_least

FEATURES = LATENT_FEATURES
READINGS = ("a", "b", "c", "val_a", "val_b", "val_c")
CHANCE_MARGIN = 0.1          # an accuracy within this of chance (1/K) counts as "at chance"


def fit_both(run_dir: str | Path, iters: int, old_iters: int, split_seed: int = 42) -> dict:
    """Both solvers' probes of one run: ``{"old": {...}, "new": {...}}`` with ``probes`` and
    ``cpu_s`` each, and the run's ``chance``."""
    model, cfg, _ = load_checkpoint(Path(run_dir) / "best.pt")
    data = DataRequest(cfg.dataset, cfg.data_root, split_seed, cfg.max_train, None, cfg.val_fraction).load()
    out = {"run": str(run_dir), "chance": 1 / data.num_classes, "n_train": len(data.train)}
    for name, fit in (("old", {"solver": "warm-path", "max_iter": old_iters}),
                      ("new", {"solver": "preconditioned", "max_iter": iters})):
        c0 = time.process_time()
        probes = probe_model(model, data, features=FEATURES, seed=split_seed, fit_kwargs=fit)
        out[name] = {"fit": fit, "cpu_s": time.process_time() - c0,
                     "probes": {f: {k: v for k, v in r.items() if not isinstance(v, list)}
                                for f, r in probes.items()}}
    return out


def largest_changes(res: dict) -> dict:
    """The largest absolute change of a reading above chance and at chance, and where."""
    out = {}
    for f, old in res["old"]["probes"].items():
        new = res["new"]["probes"][f]
        for k in READINGS:
            side = "at_chance" if abs(old[k] - res["chance"]) < CHANCE_MARGIN else "above_chance"
            change = abs(new[k] - old[k])
            if change >= out.get(side, (-1.0,))[0]:
                out[side] = (change, f"{f}/{k}", new[k], old[k])
    out["same_l2"] = all(res["new"]["probes"][f][k] == res["old"]["probes"][f][k]
                         for f in res["old"]["probes"] for k in ("l2_upright", "l2_transformed"))
    return out


def _cell(change) -> str:
    return "—" if change is None else f"{change[0]:.4f} ({change[1]}: {change[3]:.4f} → {change[2]:.4f})"


def table(results: list[dict]) -> str:
    rows = []
    for r in results:
        ch = largest_changes(r)
        rows.append({"run": Path(r["run"]).parent.name + "/" + Path(r["run"]).name,
                     "above": _cell(ch.get("above_chance")), "chance": _cell(ch.get("at_chance")),
                     "l2": ch["same_l2"], "cpu": f"{r['new']['cpu_s']:.0f} / {r['old']['cpu_s']:.0f}"})
    return markdown_table(rows, [("run", "run"), ("largest change above chance (old → new)", "above"),
                                 ("largest change at chance", "chance"), ("same l2 everywhere", "l2"),
                                 ("CPU s, new / old", "cpu")])


def _fit_one(run: str, iters: int, old_iters: int, split_seed: int) -> dict:
    torch.set_num_threads(1)
    res = fit_both(run, iters, old_iters, split_seed)
    print(f"[probe_agreement] {run}: new {res['new']['cpu_s']:.0f} CPU s, old {res['old']['cpu_s']:.0f} "
          f"CPU s", flush=True)
    return res


def _compare_all(args) -> list[dict]:
    """:func:`fit_both` of every run, in ``args.jobs`` spawned processes (one thread each)."""
    work = [(run, args.iters, args.old_iters, args.split_seed) for run in args.runs]
    if args.jobs == 1:
        return [_fit_one(*w) for w in work]
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context
    with ProcessPoolExecutor(min(args.jobs, len(work)), mp_context=get_context("spawn")) as pool:
        return list(pool.map(_fit_one, *zip(*work)))


def main(argv: list[str] | None = None) -> int:
    ap = ShortUsageParser(prog="python -m galib.tools.probe_agreement", description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", help="run folders holding best.pt")
    ap.add_argument("--out", required=True, help="folder for probe_agreement.json / .md")
    ap.add_argument("--iters", type=int_at_least(1), default=PROBE_FIT["max_iter"])
    ap.add_argument("--old-iters", type=int_at_least(1), default=100)
    ap.add_argument("--split-seed", type=int_at_least(0), default=42)
    ap.add_argument("--jobs", type=int_at_least(1), default=1,
                    help="runs compared side by side, one thread each (default 1)")
    args = ap.parse_args(argv)
    missing = [r for r in args.runs if not (Path(r) / "best.pt").is_file()]
    if missing:
        print(f"[probe_agreement] FAILED: no best.pt in {missing}", file=sys.stderr)
        return 1
    results = _compare_all(args)
    out = Path(args.out)
    text = table(results)
    command = "python -m galib.tools.probe_agreement " + " ".join(sys.argv[1:] if argv is None else argv)
    commit = source_commit()
    save_json(relative_paths({"command": command, "commit": commit, "results": results}),
              out / "probe_agreement.json")
    write_text(out / "probe_agreement.md", f"`{relative_paths(command)}` (commit {commit})\n\n{text}\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
