"""Compare the two SO(2) latent actions, ``resample`` and ``learned``, side by side.

    python -m galib.tools.compare_actions --dataset glyphs --epochs 4 --max-train 5000 \\
        --out figures/so2_actions --run-root runs/so2_actions

Trains the paper model twice with ``group='so2'`` — once with ``latent_action='resample'``
(bilinear rotation of the latent map) and once with ``'learned'`` (:class:`LearnedSO2Action`) — on
the same data, seed and epochs (``train(cfg, run_dir=...)``, so a rerun reuses finished runs). On
held-out test images it measures, per action:

* transformed-reconstruction MSE ``‖D(z_i + Phi_g z_v) − T_g x‖²`` and equivariance error
  ``‖Phi_g z_v(x) − z_v(T_g x)‖ / ‖z_v(T_g x)‖`` on a grid of ``n_angles`` angles (not only
  multiples of 90°), via :func:`galib.evaluation.scores.evaluate_model`;
* homomorphism error ``‖Phi_g Phi_h z_v − Phi_gh z_v‖ / ‖Phi_gh z_v‖`` on real encoded ``z_v`` for
  random pairs ``(g, h)``; for ``learned`` also of its channel part ``rho`` alone (exact by
  construction: integer frequencies), which isolates the spatial-interpolation error.

Writes ``metrics.json``, ``table.md`` and ``so2_actions.png`` into ``--out``.
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import torch

from ..datasets import load_dataset
from ..evaluation.scores import evaluate_model
from ..evaluation.tables import markdown_table
from ..groups import get_group, homomorphism_error
from ..io import save_json, write_text
from ..losses import resolve_consistency
from ..notebook import figures
from ..train import TrainConfig, train

ACTIONS = ("resample", "learned")


@torch.no_grad()
def homomorphism_scores(model, images, n_pairs: int = 512, repeats: int = 4, seed: int = 0) -> dict:
    """Mean/std over ``repeats`` batches of random ``(g, h)`` of the homomorphism error on real ``z_v``
    of ``images`` (float, (N, 1, H, W)); plus the channel part's error for a learned action."""
    model.eval()
    group, gen = model.group, torch.Generator().manual_seed(seed)
    z_v = model.split(model.encode(images[:n_pairs]), hard=True)[1]
    full, chan = [], []
    channel = getattr(getattr(model, "latent_action", None), "channel_action", None)
    for _ in range(repeats):
        g, h = group.sample(len(z_v), gen), group.sample(len(z_v), gen)
        full.append(homomorphism_error(model.act, group, z_v, g, h))
        if channel is not None:
            chan.append(homomorphism_error(channel, group, z_v, g, h))
    t = lambda v: (sum(v) / len(v), float(torch.tensor(v).std()) if len(v) > 1 else 0.0)  # noqa: E731
    out = {"homomorphism_error": t(full)[0], "homomorphism_error_std": t(full)[1],
           "homomorphism_error_channel": t(chan)[0] if chan else None}
    return out


@torch.no_grad()
def measure(model, data, n_angles: int = 16, max_images: int | None = None, seed: int = 0) -> dict:
    """Per-angle recon MSE and equivariance error, means, homomorphism errors and mask stats."""
    ev = evaluate_model(model, data.test, n_eval=n_angles, max_images=max_images, seed=seed)
    names = ev["elements"]
    n = len(data.test.head(max_images))
    images = data.test.floats(torch.arange(min(n, 512)))          # occluded like training pairs
    out = {"angles_deg": [360.0 * k / n_angles for k in range(n_angles)], "angle_names": names,
           "recon_mse_per_angle": [ev[f"recon_mse/{a}"] for a in names],
           "equivariance_error_per_angle": [ev[f"equivariance_error/{a}"] for a in names],
           "recon_mse": ev["recon_mse"], "recon_psnr": ev["recon_psnr"], "recon_ssim": ev["recon_ssim"],
           "equivariance_error": ev["equivariance_error"],
           "invariance_error": ev["invariance_error"],
           "variant_fraction": ev["variant_fraction"], "n_variant": ev["n_variant"],
           "variant_channels": ev["variant_channels"], "n_test_images": ev["n_images"],
           **homomorphism_scores(model, images, seed=seed)}
    act = getattr(model, "latent_action", None)
    out["latent_energy"] = float(model.encode(images).pow(2).mean())   # mean z² (drift check)
    out["learned_frequencies"] = (act.frequencies().detach().round().int().tolist()
                                  if hasattr(act, "frequencies") else None)
    return out


TABLE_ROWS = (("recon_mse", "transformed-recon MSE (mean over angles)"),
              ("recon_mse@90", "recon MSE, multiples of 90°"),
              ("recon_mse@off90", "recon MSE, other angles"),
              ("equivariance_error", "equivariance error (mean over angles)"),
              ("equivariance_error@90", "equivariance error, multiples of 90°"),
              ("equivariance_error@off90", "equivariance error, other angles"),
              ("invariance_error", "invariance error"),
              ("homomorphism_error", "homomorphism error ‖ΦgΦh z_v − Φgh z_v‖/‖Φgh z_v‖"),
              ("homomorphism_error_channel", "homomorphism error, channel part ρ only"),
              ("recon_ssim", "recon SSIM"), ("variant_fraction", "variant fraction"),
              ("best_epoch", "best validation epoch (weights evaluated)"),
              ("val_const@best", "validation L_const, best epoch"),
              ("val_const@last", "validation L_const, last epoch (divergence check)"),
              ("latent_energy", "mean z² on test images (scale drift check)"))


def _row_value(m: dict, key: str):
    if key.startswith("val_const@"):
        per = m.get("val_const_per_epoch")
        return None if not per else per[-1 if key.endswith("last") else m["best_epoch"] - 1]
    if "@" in key:
        per = m[key.split("@")[0] + "_per_angle"]
        on90 = [v for a, v in zip(m["angles_deg"], per) if a % 90 == 0]
        off = [v for a, v in zip(m["angles_deg"], per) if a % 90 != 0]
        vals = on90 if key.endswith("@90") else off
        return sum(vals) / len(vals) if vals else None
    return m.get(key)


def table_md(results: dict) -> str:
    """One row per metric of ``TABLE_ROWS``, one column per latent action."""
    rows = [{"metric": label, **{a: _row_value(m, key) for a, m in results.items()}}
            for key, label in TABLE_ROWS]
    freqs = results.get("learned", {}).get("learned_frequencies")
    if freqs is not None:
        rows.append({"metric": "learned frequencies m_k (pairs)", "learned": ", ".join(map(str, freqs))})
    return markdown_table(rows, [("metric", "metric")] + [(a, a) for a in results])


def plot_comparison(results: dict, title: str, out_path):
    """Recon MSE and equivariance error against angle, one line per action."""
    from matplotlib.figure import Figure
    with figures.rc_style():
        fig = Figure(figsize=(11, 4.2))
        axes = fig.subplots(1, 2)
        for name, m in results.items():
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
        return figures.save(fig, out_path)


def _describe(data, n_angles: int) -> str:
    d = data.describe()
    return (f"{d.get('n_train')} train / {d.get('n_val')} val / {d.get('n_test')} held-out test "
            f"images {tuple(d.get('image_shape', ()))}; test metrics over {n_angles} angles")


def run(dataset: str = "glyphs", epochs: int = 4, max_train: int | None = 5000, max_test: int = 1000,
        out: str | Path = "figures/so2_actions", run_root: str | Path = "runs/so2_actions",
        latent_channels: int = 64, tau: float = 0.5, seed: int = 42, n_angles: int = 16,
        device: str = "auto", command: str | None = None, verbose: bool = True,
        consistency: str = "auto") -> dict:
    out, run_root = Path(out), Path(run_root)
    data = load_dataset(dataset, seed=seed, max_train=max_train, max_test=max_test, verbose=verbose)
    results, seconds = {}, {}
    for action in ACTIONS:
        cfg = TrainConfig(dataset=dataset, group="so2", latent_action=action, epochs=epochs, tau=tau,
                          latent_channels=latent_channels, seed=seed, max_train=max_train, device=device,
                          consistency=consistency)
        t0 = time.perf_counter()
        res = train(cfg, run_dir=run_root / f"{dataset}_{action}_{consistency}", data=data, progress=False,
                    verbose=verbose)
        seconds[action] = {"wall": time.perf_counter() - t0,
                           "training": sum(r["seconds"] for r in res.history)}
        results[action] = measure(res.model, data, n_angles, seed=seed)
        best = res.best
        results[action].update(best_epoch=best["epoch"], epochs_run=len(res.history),
                               val_loss_per_epoch=[r["val_loss"] for r in res.history],
                               val_const_per_epoch=[r["val_const"] for r in res.history])
    metrics = {"dataset": dataset, "group": "so2", "tau": tau, "epochs": epochs,
               "consistency": consistency,
               "max_train": max_train, "max_test": max_test, "latent_channels": latent_channels,
               "seed": seed, "n_angles": n_angles, "data": data.describe(),
               "command": command, "seconds": seconds, "actions": results,
               "summary": {f"{a}/{k}": _row_value(m, k) for a, m in results.items()
                           for k, _ in TABLE_ROWS}}
    md = table_md(results)
    metrics["table_md"] = md
    save_json(metrics, out / "metrics.json")
    write_text(out / "table.md", f"# so2: resample vs learned latent action\n\n{dataset}, τ = {tau:g}, "
                                  f"consistency {consistency}, "
                                  f"{epochs} epochs, {_describe(data, n_angles)}; {command or ''}\n\n" + md)
    ep = f"{epochs} epoch" + ("s" if epochs != 1 else "")
    plot_comparison(results, f"so2 latent actions · {dataset} · τ = {tau:g} · {ep} · "
                             f"consistency {resolve_consistency(consistency, get_group('so2'))}",
                    out / "so2_actions.png")
    return metrics


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="glyphs")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--max-train", type=int, default=5000)
    ap.add_argument("--max-test", type=int, default=1000)
    ap.add_argument("--latent-channels", type=int, default=64)
    ap.add_argument("--tau", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=42)
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
    m = run(args.dataset, args.epochs, args.max_train, args.max_test, args.out, args.run_root,
            args.latent_channels, args.tau, args.seed, args.n_angles, args.device, command,
            consistency=args.consistency)
    print(m["table_md"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
