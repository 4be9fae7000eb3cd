"""How the runs under a folder trained: best epoch, divergence, and the loss term that blew up first.

    python -m galib.tools.stability runs/evidence/fashion-mnist --out figures/evidence/stability

Reads the ``history.json`` of every run folder directly below ``ROOT`` and writes into ``--out``
``stability.json`` (the commit, the command and one record per run from
:func:`galib.studies.training.stability`: where it diverged — a validation loss above
``--factor`` × its best so far, or not finite — and which loss term or latent diagnostic left its
own early trend first), ``stability.md`` (a table), ``val_loss.png`` (the validation loss of
every run on a log axis) and, when the histories carry the latent diagnostics,
``diagnostics.png`` (offsets and varying parts of ``z_v``/``z_i``, the drive of ``L_const`` and
the mask flips per epoch). Bad input is one line naming the file or value.
"""
from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
from pathlib import Path


from ..io import save_json, write_text
from ..studies import training
from ..paths import relative_paths, source_commit


def read_history(path: Path) -> list[dict]:
    """The rows of one ``history.json``; a ``SystemExit`` naming the file and what is wrong with it
    (unreadable JSON, not a ``{"history": [...]}`` object, a row without a numeric ``epoch`` and
    ``val_loss``)."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise SystemExit(f"stability: {path} is not readable JSON ({type(err).__name__}: {err})") from None
    hist = doc.get("history") if isinstance(doc, dict) else None
    if not isinstance(hist, list):
        raise SystemExit(f"stability: {path} must hold an object with a 'history' list; got "
                         f"{type(doc).__name__}")
    for i, row in enumerate(hist):
        ok = isinstance(row, dict) and all(isinstance(row.get(k), (int, float)) and not isinstance(row.get(k), bool)
                                           for k in ("epoch", "val_loss"))
        if not ok:
            raise SystemExit(f"stability: {path}: row {i + 1} needs numeric 'epoch' and 'val_loss'; got "
                             f"{row!r:.120}")
    return hist


def histories(root: Path) -> dict[str, list[dict]]:
    """``{run folder name: its history}`` for the run folders directly below ``root``, sorted."""
    if not Path(root).is_dir():
        raise SystemExit(f"stability: {root} is not a folder")
    out = {}
    for path in sorted(Path(root).glob("*/history.json")):
        hist = read_history(path)
        if hist:
            out[path.parent.name] = hist
    if not out:
        raise SystemExit(f"stability: no run folder with a history.json below {root}")
    return out


def table_md(records: dict[str, dict]) -> str:
    rows = ["| run | epochs | best epoch | best val loss | last val loss | max val loss | diverged at | "
            "first term | first signal (epoch) |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"]
    for name, r in records.items():
        signal = f"{r['first_signal']} ({r['first_signal_epoch']})" if r.get("first_signal") else "—"
        rows.append(f"| {name} | {r['epochs']} | {r['best_epoch']} | {r['best_val_loss']:.5f} | "
                    f"{r['last_val_loss']:.4g} | {r['max_val_loss']:.4g} | {r['diverged_epoch'] or '—'} | "
                    f"{r['first_term'] or '—'} | {signal} |")
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("root", help="folder holding the run folders (each with history.json)")
    ap.add_argument("--out", required=True, help="folder for stability.json, stability.md, val_loss.png")
    ap.add_argument("--factor", type=float, default=training.DIVERGENCE_FACTOR,
                    help="a run diverged at the first epoch whose validation loss exceeds this "
                         "multiple of its best so far")
    args = ap.parse_args(argv)
    if not math.isfinite(args.factor) or args.factor <= 1:
        raise SystemExit(f"stability: --factor must be a finite number above 1; got {args.factor}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise SystemExit(f"stability: --out {out} is a file; give a folder")
    hist = histories(Path(args.root))
    records = {name: training.stability(h, args.factor) for name, h in hist.items()}
    n_div = sum(r["diverged_epoch"] is not None for r in records.values())
    command = "python -m galib.tools.stability " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    meta = relative_paths({"commit": source_commit(), "command": command, "root": str(Path(args.root).resolve()),
                           "factor": args.factor, "n_runs": len(records), "n_diverged": n_div,
                           "runs": records})
    save_json(meta, out / "stability.json")
    write_text(out / "stability.md", table_md(records))
    training.plot_val_curves(hist, {n: r["diverged_epoch"] for n, r in records.items()},
                            out / "val_loss.png", str(args.root))
    if any("zv_offset" in h[0] for h in hist.values()):
        training.plot_diagnostics(hist, out / "diagnostics.png", str(args.root))
    print(table_md(records))
    print(f"[stability] {n_div} of {len(records)} runs diverged (validation loss above "
          f"{args.factor:g}× its best so far); wrote {out}/stability.json, stability.md, val_loss.png")
    return meta


if __name__ == "__main__":
    main()
