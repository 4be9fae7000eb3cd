"""Entry points, every command line of galib: ``pipeline`` (run the notebooks → ``figures/``),
``sweep`` (train a profile's plan on local workers, Slurm or Ray), ``baseline_table`` (a baselines
table), ``bench`` (training speed), ``compare_actions`` (SO(2) latent actions).

The console scripts of ``pyproject.toml`` call these thin wrappers where a tool's ``main``
returns its results rather than an exit status (a console script passes ``main()``'s return
value to ``sys.exit``, which would print a dict and exit with status 1).
"""
from __future__ import annotations


def train_main(argv: list[str] | None = None) -> int:
    """``galib-train``: ``python -m galib.train`` (one-line errors, exit status 1 on failure)."""
    from ..train.cli import main, run_cli
    run_cli(main, argv, prog="galib-train")
    return 0


def bench_main(argv: list[str] | None = None) -> int:
    """``galib-bench``: :func:`galib.tools.bench.main`, exit status 0."""
    from .bench import main
    main(argv)
    return 0


def baselines_main(argv: list[str] | None = None) -> int:
    """``galib-baselines``: :func:`galib.tools.baseline_table.main`, exit status 0."""
    from .baseline_table import main
    main(argv)
    return 0
