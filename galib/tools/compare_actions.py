"""Compare the two SO(2) latent actions, ``resample`` and ``learned``, side by side.

    python -m galib.tools.compare_actions --dataset glyphs --epochs 4 --max-train 5000 \\
        --out figures/so2_actions --run-root runs/so2_actions

The command line of the study :mod:`galib.experiments.so2_actions`: it trains (or loads the finished runs
of) the paper model with ``group='so2'`` once per latent action on the same data, seed and epochs,
scores each on held-out test images over ``--n-angles`` angles, and writes ``metrics.json`` (the
:class:`~galib.experiments.so2_actions.SO2Comparison` record, with the commit, the command and paths
relative to the repository), ``table.md`` and ``so2_actions.png`` into ``--out``, atomically.
"""
from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, fields
from pathlib import Path

import torch

from ..experiments.plan import DataRequest
from ..experiments.scoring import EvalSettings
from ..evaluation.features import with_options
from ..experiments.so2_actions import ACTIONS, SO2Comparison, SO2Study, so2_study
from ..io import save_json, write_text
from ..groups import get_group
from ..losses import resolve_consistency
from ..studies import plotting
from ..paths import relative_paths, source_commit
from ..train import TrainConfig
from ..train.cli import ShortUsageParser
from ..train.limits import seed_arg

__all__ = ["ACTIONS", "CompareSettings", "main", "plot_comparison", "run"]


@dataclass(frozen=True)
class CompareSettings:
    """The comparison's settings, one per command-line option of the same name (every default
    runs as it is)."""
    dataset: str = "glyphs"              # dataset name (galib.datasets)
    epochs: int = 4                      # training epochs of each run
    max_train: int | None = 5000         # training images (None: all)
    max_test: int = 1000                 # held-out test images loaded and scored
    latent_channels: int = 64            # latent channels of the paper model
    tau: float = 0.5                     # ALD mask threshold
    seed: int = 42                       # training seed, data split and evaluation seed
    n_angles: int = 16                   # angles of the per-angle test scores
    device: str = "auto"                 # torch device ("auto": the best available)
    consistency: str = "auto"            # L_const form (galib.losses); auto = midpoint for so2

    def train_config(self) -> TrainConfig:
        """The base config: the paper model with ``group='so2'`` (the study sets each action)."""
        return TrainConfig(dataset=self.dataset, group="so2", epochs=self.epochs, tau=self.tau,
                           latent_channels=self.latent_channels, seed=self.seed,
                           max_train=self.max_train, device=self.device,
                           consistency=self.consistency)


def plot_comparison(actions: dict, title: str, out_path):
    """Recon MSE and equivariance error against angle, one line per action."""
    from matplotlib.figure import Figure
    with plotting.rc_style():
        fig = Figure(figsize=(11, 4.2))
        axes = fig.subplots(1, 2)
        for name, m in actions.items():
            a = m["angles_deg"] + [360.0]                       # close the circle: 360° = 0°
            for ax, key in zip(axes, ("recon_mse_per_angle", "equivariance_error_per_angle")):
                ax.plot(a, m[key] + m[key][:1], marker="o", ms=4,
                        label=f"{name}: best epoch {m.get('best_epoch', '?')}/{m.get('epochs_run', '?')}, "
                              f"hom. err {m['homomorphism_error']:.3f}")
        for ax, label in zip(axes, ("transformed-recon MSE", "equivariance error (relative)")):
            ax.set_xlabel("rotation angle g (degrees)")
            ax.set_ylabel(label)
            ax.set_xticks(range(0, 361, 45))
            ax.set_ylim(bottom=0)
            for x in (90, 180, 270):
                ax.axvline(x, color="0.85", lw=0.8, zorder=0)
            ax.grid(axis="y", color="0.92")
        axes[0].legend(title="latent action (weights of the best validation epoch)", loc="best",
                       fontsize=9, title_fontsize=9)
        fig.suptitle(title)
        fig.tight_layout()
        return plotting.save(fig, out_path)


def run(settings: CompareSettings | None = None, out: str | Path = "figures/so2_actions",
        run_root: str | Path = "runs/so2_actions", command: str | None = None,
        verbose: bool = True, **overrides) -> dict:
    """Run the study and write its three files into ``out``; returns the ``metrics.json`` dict.

    ``settings`` (:class:`CompareSettings`; its fields may also be given as keywords, e.g.
    ``epochs=1``) says what is trained and scored; the runs live under ``run_root``; ``command``
    is recorded in ``metrics.json`` and ``table.md``."""
    (s,) = with_options(overrides, settings or CompareSettings())
    out = Path(out)
    dataset, tau, epochs, consistency = s.dataset, s.tau, s.epochs, s.consistency
    cfg = s.train_config()
    evaluation = EvalSettings(seed=s.seed, probe=False, max_test=s.max_test)
    data = DataRequest.of(cfg, max_test=s.max_test).load(verbose=verbose)
    rows = so2_study(cfg, SO2Study(ACTIONS, run_root, n_angles=s.n_angles), data=data,
                     settings=evaluation, verbose=verbose)
    rec = SO2Comparison.from_rows(cfg, rows, data, s.n_angles, s.max_test, command, source_commit())
    metrics = relative_paths(rec.to_json())
    save_json(metrics, out / "metrics.json")
    write_text(out / "table.md", f"# so2: resample vs learned latent action\n\n{dataset}, τ = {tau:g}, "
                                  f"consistency {consistency}, {epochs} epochs, {rec.describe_data()}; "
                                  f"commit {rec.commit}; {command or ''}\n\n" + rec.table_md)
    ep = f"{epochs} epoch" + ("s" if epochs != 1 else "")
    plot_comparison(rec.actions, f"so2 latent actions · {dataset} · τ = {tau:g} · {ep} · "
                                 f"consistency {resolve_consistency(consistency, get_group('so2'))}",
                    out / "so2_actions.png")
    return metrics


def main(argv=None) -> int:
    ap = ShortUsageParser(prog="python -m galib.tools.compare_actions", description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="glyphs")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--max-train", type=int, default=5000)
    ap.add_argument("--max-test", type=int, default=1000)
    ap.add_argument("--latent-channels", type=int, default=64)
    ap.add_argument("--tau", type=float, default=0.5)
    ap.add_argument("--seed", type=seed_arg("seed"), default=42)
    ap.add_argument("--n-angles", type=int, default=16)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--consistency", default="auto", choices=("auto", "direct", "midpoint"),
                    help="L_const form (galib.losses); auto = midpoint for so2; direct diverges")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--out", default="figures/so2_actions")
    ap.add_argument("--run-root", default="runs/so2_actions")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    words = sys.argv[1:] if argv is None else argv
    command = "python -m galib.tools.compare_actions " + " ".join(map(shlex.quote, words))
    settings = CompareSettings(**{f.name: getattr(args, f.name) for f in fields(CompareSettings)})
    m = run(settings, args.out, args.run_root, command)
    print(m["table_md"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
