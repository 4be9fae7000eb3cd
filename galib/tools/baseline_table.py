"""Train (or load), evaluate and probe the baselines; write a markdown/JSON table.

    python -m galib.tools.baseline_table --dataset fashion-mnist --epochs 3 --max-train 10000 --out DIR
    galib-baselines ...                                  # the same, as a console script
"""
from __future__ import annotations

import sys
import time
from dataclasses import asdict
from pathlib import Path

from ..evaluation.features import PROBE_FIT
from ..studies.baselines import (BASELINES, DEFAULT_NAMES, format_markdown, results_table,
                                     run_baselines, write_table)
from ..experiments.scoring import EvalSettings
from ..train import config_from_args, config_parser, run_cli
from ..train.limits import seed_arg


def _parser():
    parser = config_parser(__doc__.split("\n")[0], prog="python -m galib.tools.baseline_table")
    parser.add_argument("--out", default="baselines_out", help="folder for the table files")
    parser.add_argument("--run-root", default=None, help="folder for the runs (default OUT/runs)")
    parser.add_argument("--names", nargs="+", default=list(DEFAULT_NAMES), choices=list(BASELINES),
                        help="baselines to run, in order ('random' needs 'ald' before it)")
    parser.add_argument("--seeds", nargs="+", type=seed_arg("seed"), default=None,
                        help="training seeds (default: --seed); the table reports mean ± sd")
    parser.add_argument("--no-probe", action="store_true", help="skip the linear probes")
    parser.add_argument("--eval-seed", type=seed_arg("seed"), default=0)
    parser.add_argument("--eval-max-images", type=int, default=None, help="test images for the scores")
    parser.add_argument("--probe-max-train", type=int, default=None, help="training images per probe")
    parser.add_argument("--probe-max-test", type=int, default=None, help="test images per probe")
    parser.add_argument("--probe-iters", type=int, default=PROBE_FIT["max_iter"],
                        help="L-BFGS iterations per l2")
    return parser


def main(argv=None) -> list[dict]:
    args = _parser().parse_args(argv)
    cfg = config_from_args(args)
    out = Path(args.out)
    run_root = Path(args.run_root or args.run_dir or out / "runs")
    settings = EvalSettings(seed=args.eval_seed, probe=not args.no_probe,
                            max_images=args.eval_max_images, probe_max_train=args.probe_max_train,
                            probe_max_test=args.probe_max_test, probe_iters=args.probe_iters)
    t0 = time.perf_counter()
    rows = run_baselines(cfg, args.names, run_root, settings=settings, seeds=args.seeds,
                         progress=not args.no_progress)
    wall = time.perf_counter() - t0
    paths = write_table(rows, out, meta={"config": asdict(cfg), "names": args.names,
                                         "argv": sys.argv[1:] if argv is None else list(argv),
                                         "wall_seconds": wall})
    print(format_markdown(results_table(rows)))
    print(f"[galib] wrote {paths['md']} and {paths['json']} ({wall:.0f}s)")
    return rows


if __name__ == "__main__":
    run_cli(main, prog="python -m galib.tools.baseline_table")
