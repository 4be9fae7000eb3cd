"""Re-read a scored comparison with its diverged runs left out: the learned mask against random masks
on the seed pairs whose trainings held.

    python -m galib.tools.clean_pairs figures/evidence/05_linear_probe/metrics.json \\
        figures/evidence/stability/stability.json --out figures/evidence/clean_pairs

Reads notebook 05's ``metrics.json`` (its scored rows) and the ``stability.json`` of
:mod:`galib.tools.stability` over the same run folders (``<name>`` for the base seed,
``<name>_seed<S>`` otherwise: :func:`galib.experiments.plan.run_folder`), marks every row whose
run diverged with its ``diverged_epoch``, and recomputes
:func:`galib.studies.probes.learned_vs_random` — which leaves those seed pairs out of every
interval and counts them. Writes ``clean_pairs.json`` (commit, command, the inputs, the
comparisons and the sentence) and ``clean_pairs.md`` (a table). Nothing is rescored: the rows are
the committed ones.
"""
from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
from pathlib import Path

from ..studies.probes import control_sentence, learned_vs_random
from ..io import save_json, write_text
from ..paths import relative_paths, source_commit


def _read(path: Path, what: str) -> dict:
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise SystemExit(f"clean_pairs: cannot read {what} {path} ({type(err).__name__}: {err})") from None
    if not isinstance(doc, dict):
        raise SystemExit(f"clean_pairs: {what} {path} must hold a JSON object")
    return doc


def mark_diverged(rows: list[dict], runs: dict, base_seed: int) -> list[dict]:
    """``rows`` with ``diverged_epoch`` set from ``runs`` (``{run folder name: stability record}``)."""
    where = {}
    for folder, rec in runs.items():
        m = re.fullmatch(r"(.+)_seed(\d+)", folder)
        name, seed = (m.group(1), int(m.group(2))) if m else (folder, base_seed)
        where[(name, seed)] = rec.get("diverged_epoch")
    return [{**r, "diverged_epoch": where.get((r.get("name"), r.get("seed")), r.get("diverged_epoch"))}
            for r in rows]


def table_md(comparisons: list[dict]) -> str:
    rows = ["| score | seeds | learned | random | difference [95 % CI] | margin | verdict |",
            "| --- | --- | ---: | ---: | --- | ---: | --- |"]
    for c in comparisons:
        rows.append(f"| {c['key']} | {', '.join(map(str, c['seeds']))} | {c['a_mean']:.4g} | {c['b_mean']:.4g} | "
                    f"{c['diff']:+.4g} [{c['low']:+.4g}, {c['high']:+.4g}] | {c['margin']:g} | {c['verdict']} |")
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("metrics", help="notebook 05's metrics.json (its scored rows)")
    ap.add_argument("stability", help="stability.json of galib.tools.stability over the same runs")
    ap.add_argument("--out", required=True, help="folder for clean_pairs.json and clean_pairs.md")
    args = ap.parse_args(argv)
    metrics, stab = _read(args.metrics, "metrics"), _read(args.stability, "stability")
    if not isinstance(metrics.get("rows"), list) or not isinstance(stab.get("runs"), dict):
        raise SystemExit("clean_pairs: the metrics need a 'rows' list and the stability file a 'runs' object")
    base = int((metrics.get("params") or {}).get("seed", 42))
    rows = mark_diverged(metrics["rows"], stab["runs"], base)
    comparisons = learned_vs_random(rows, chance=metrics.get("chance"))
    sentence = control_sentence(comparisons)
    command = "python -m galib.tools.clean_pairs " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    out = Path(args.out)
    doc = relative_paths({"commit": source_commit(), "command": command, "metrics": str(Path(args.metrics).resolve()),
                          "stability": str(Path(args.stability).resolve()), "base_seed": base,
                          "comparisons": comparisons, "text": sentence})
    save_json(doc, out / "clean_pairs.json")
    write_text(out / "clean_pairs.md", table_md(comparisons) + "\n" + sentence + "\n")
    print(table_md(comparisons) + "\n" + sentence)
    return doc


if __name__ == "__main__":
    main()
