"""Train and report the stability study (:mod:`galib.experiments.remedies`).

    python -m galib.tools.remedies train --root ~/galib-runs/remedies [--remedies paper both-ways]
        [--cases learned_seed43 ...] [--jobs 2]
    python -m galib.tools.remedies report --root ~/galib-runs/remedies --out figures/evidence/remedies

``train`` runs the selected remedy × case trainings on local sweep workers (1 thread each; a
killed run resumes where it stopped). ``report`` reads every run folder that has a history, scores
its best-validation checkpoint once (cached in ``<run>/remedy_scores.json``, keyed by its epochs
and the image counts: the first 5,000 test images, a probe fitted on 5,000 training images)
and writes ``remedies.json`` (commit, command, one record per run), ``remedies.md`` (the table:
seed × remedy, diverged epoch, recon MSE, equivariance errors, probes of ``z``) and
``remedies.png`` (validation loss and the variant part's offset per epoch, one panel per case);
with ``--reference DIR`` (the folder of :mod:`galib.tools.reference`) also the authors' script's
runs, recorded in ``remedies.json`` and drawn beside the kit's paper objective in
``reference_vs_kit.png``.
"""
from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
from pathlib import Path

from ..experiments.plan import epochs_done, train_or_load
from ..experiments.remedies import CASES, REMEDIES, remedy_trainings
from ..studies.training import DIVERGENCE_FACTOR, divergence_epoch
from ..io import save_json, write_text
from ..paths import relative_paths, source_commit
from .executors import EngineOptions
from .sweep import sweep

PROBE_IMAGES = 5_000         # training images of the probe of z (its validation takes a quarter)
TEST_IMAGES = 5_000          # test images scored (recon, equivariance) and probed
SCORE_KEYS = ("recon_mse", "equivariance_error", "equivariance_error_centred", "probe_z_a", "probe_z_b")


def score_run(training) -> dict:
    """Scores of a finished run's best checkpoint on the test set (cached in the run folder)."""
    from ..evaluation.features import probe_model
    from ..evaluation.scores import evaluate_model
    cache = Path(training.run_dir) / "remedy_scores.json"
    done = epochs_done(training.run_dir)
    sizes = {"probe_images": PROBE_IMAGES, "test_images": TEST_IMAGES}
    if cache.exists():
        cached = json.loads(cache.read_text())
        if cached.get("epochs") == done and all(cached.get(k) == v for k, v in sizes.items()):
            return cached
    res = train_or_load(replace_epochs(training, done))
    ev = evaluate_model(res.model, res.data.test, max_images=TEST_IMAGES)
    probe = probe_model(res.model, res.data, features=("z",), max_train=PROBE_IMAGES,
                        max_test=TEST_IMAGES)["z"]
    out = {"epochs": done, "best_epoch": res.best["epoch"], **sizes,
           **{k: float(ev[k]) for k in SCORE_KEYS[:3]}, "probe_z_a": probe["a"], "probe_z_b": probe["b"]}
    save_json(out, cache)
    return out


def replace_epochs(training, epochs: int):
    from dataclasses import replace
    return replace(training, config=replace(training.config, epochs=epochs))


def _record(training, factor: float) -> dict | None:
    path = Path(training.run_dir) / "history.json"
    if not path.exists():
        return None
    hist = json.loads(path.read_text()).get("history", [])
    if not hist:
        return None
    remedy, case = training.key.split("/")
    rec = {"remedy": remedy, "case": case, "epochs": len(hist), "planned_epochs": training.config.epochs,
           "diverged_epoch": divergence_epoch(hist, factor),
           "val_loss": [h["val_loss"] for h in hist],
           "zv_offset": [h.get("zv_offset") for h in hist], "const_drive": [h.get("const_drive") for h in hist]}
    if len(hist) >= training.config.epochs:
        rec.update(score_run(training))
    return rec


def table_md(records: list[dict]) -> str:
    rows = ["| case | remedy | epochs | diverged at | best epoch | recon MSE | equiv. err | equiv. err (centred) "
            "| probe z (a) | probe z (b) |", "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    fmt = lambda v, f: "—" if v is None else format(v, f)           # noqa: E731
    for r in sorted(records, key=lambda r: (r["case"], list(REMEDIES).index(r["remedy"]))):
        done = f"{r['epochs']}" + ("" if r["epochs"] >= r["planned_epochs"] else f" of {r['planned_epochs']}")
        rows.append(f"| {r['case']} | {r['remedy']} | {done} | {r['diverged_epoch'] or '—'} | "
                    f"{fmt(r.get('best_epoch'), 'd')} | {fmt(r.get('recon_mse'), '.5f')} | "
                    f"{fmt(r.get('equivariance_error'), '.4f')} | {fmt(r.get('equivariance_error_centred'), '.4f')} | "
                    f"{fmt(r.get('probe_z_a'), '.4f')} | {fmt(r.get('probe_z_b'), '.4f')} |")
    return "\n".join(rows) + "\n"


def plot(records: list[dict], path: Path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    cases = [c.name for c in CASES if any(r["case"] == c.name for r in records)]
    fig, axes = plt.subplots(2, len(cases), figsize=(3.2 * len(cases), 5.6), squeeze=False)
    colours = dict(zip(REMEDIES, ("k", "tab:blue", "tab:orange", "tab:green", "tab:purple")))
    for j, case in enumerate(cases):
        for r in (r for r in records if r["case"] == case):
            ep = range(1, len(r["val_loss"]) + 1)
            axes[0, j].semilogy(ep, r["val_loss"], color=colours[r["remedy"]], label=r["remedy"])
            off = [math.nan if v is None else v for v in r["zv_offset"]]
            axes[1, j].semilogy(ep, off, color=colours[r["remedy"]])
            if r["diverged_epoch"]:
                axes[0, j].axvline(r["diverged_epoch"], color=colours[r["remedy"]], ls=":", lw=1)
        axes[0, j].set_title(case, fontsize=9)
        axes[1, j].set_xlabel("epoch")
    axes[0, 0].set_ylabel("validation loss")
    axes[1, 0].set_ylabel("offset of z_v (RMS)")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return fig


def reference_records(folder: Path, factor: float) -> list[dict]:
    """One record per ``seed<S>/history.json`` of :mod:`galib.tools.reference` under ``folder``."""
    from ..studies.training import stability
    out = []
    for path in sorted(Path(folder).expanduser().glob("seed*/history.json")):
        hist = json.loads(path.read_text()).get("history", [])
        if hist:
            rest = {k: v for k, v in stability(hist, factor).items() if k != "departures"}
            out.append({"run": path.parent.name, **rest, "val_loss": [h["val_loss"] for h in hist],
                        "max_ratio_to_best": max(h["val_loss"] / min(x["val_loss"] for x in hist[:i + 1])
                                                 for i, h in enumerate(hist)),
                        "zv_offset": [h.get("zv_offset") for h in hist],
                        "const_drive": [h.get("const_drive") for h in hist]})
    return out


def plot_reference(kit: list[dict], ref: list[dict], path: Path):
    """The authors' script (grey) beside the kit's paper objective (one colour per seed): validation
    loss, the offset of z_v and the drive of L_const per epoch."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for r in ref:
        for ax, key in zip(axes, ("val_loss", "zv_offset", "const_drive")):
            ax.plot(range(1, len(r[key]) + 1), r[key], color="0.6", lw=1,
                    label="authors' script" if r is ref[0] and key == "val_loss" else None)
    for r in kit:
        for ax, key in zip(axes, ("val_loss", "zv_offset", "const_drive")):
            ax.plot(range(1, len(r[key]) + 1), [math.nan if v is None else v for v in r[key]], lw=1.4,
                    label=f"galib paper {r['case']}" if key == "val_loss" else None)
    for ax, (title, scale) in zip(axes, (("validation loss", "log"), ("offset of z_v (RMS)", "log"),
                                         ("drive of L_const (r² − 1 − e)", "linear"))):
        ax.set_yscale(scale)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("epoch")
    axes[2].axhline(0, color="k", lw=0.6)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _select(args) -> list:
    plan = remedy_trainings(args.root, args.remedies or tuple(REMEDIES))
    if args.cases:
        plan = [t for t in plan if t.key.split("/")[1] in args.cases]
    return plan


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("action", choices=["train", "report"])
    ap.add_argument("--root", required=True, help="folder of the study's run folders (outside the checkout)")
    ap.add_argument("--remedies", nargs="+", choices=list(REMEDIES))
    ap.add_argument("--cases", nargs="+", choices=[c.name for c in CASES])
    ap.add_argument("--jobs", type=int, default=1, help="local workers of 1 thread each (train)")
    ap.add_argument("--out", help="folder for remedies.json, remedies.md, remedies.png (report)")
    ap.add_argument("--reference", help="(report) the --out folder of galib.tools.reference: its runs "
                    "are recorded and drawn beside the kit's paper objective (reference_vs_kit.png)")
    args = ap.parse_args(argv)
    if args.jobs < 1:
        raise SystemExit(f"remedies: --jobs must be >= 1; got {args.jobs}")
    plan = _select(args)
    if args.action == "train":
        outcomes = sweep(plan, "local", EngineOptions(jobs=args.jobs, threads=1), progress=False)
        failed = [o for o in outcomes if o.status == "failed"]
        raise SystemExit(1 if failed else 0)
    if not args.out:
        raise SystemExit("remedies: report needs --out FOLDER")
    records = [r for r in (_record(t, DIVERGENCE_FACTOR) for t in plan) if r is not None]
    if not records:
        raise SystemExit(f"remedies: no run folder with a history below {args.root}")
    out = Path(args.out)
    command = "python -m galib.tools.remedies " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    ref = reference_records(Path(args.reference), DIVERGENCE_FACTOR) if args.reference else []
    save_json(relative_paths({"commit": source_commit(), "command": command, "factor": DIVERGENCE_FACTOR,
                              "remedies": REMEDIES, "runs": records, "reference": ref}), out / "remedies.json")
    write_text(out / "remedies.md", table_md(records))
    plot(records, out / "remedies.png")
    if ref:
        plot_reference([r for r in records if r["remedy"] == "paper"], ref, out / "reference_vs_kit.png")
    print(table_md(records))


if __name__ == "__main__":
    main()
