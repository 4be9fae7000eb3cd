"""The SO(2) comparison of latent actions: ``resample`` against ``learned``, on the same data.

:func:`so2_trainings` is the plan: the paper model with ``group='so2'``, one training per
(latent action, seed) in ``run_root/<dataset>_<action>_<consistency>[_seed<s>]`` (bilinear
rotation of the latent map, or :class:`~galib.groups.so2.LearnedSO2Action`), every seed on the
base seed's data split. :func:`so2_study` loads (or trains) each run of an :class:`SO2Study` and
scores it once (the row is cached in the run folder, :func:`~galib.experiments.scoring.scored_row`),
on held-out test images:

* transformed-reconstruction MSE ``‖D(z_i + Phi_g z_v) − T_g x‖²`` and equivariance error
  ``‖Phi_g z_v(x) − z_v(T_g x)‖ / ‖z_v(T_g x)‖`` on a grid of ``n_angles`` angles (not only
  multiples of 90°), via :func:`galib.evaluation.scores.evaluate_model`;
* homomorphism error ``‖Phi_g Phi_h z_v − Phi_gh z_v‖ / ‖Phi_gh z_v‖`` on real encoded ``z_v`` for
  random pairs ``(g, h)``; for ``learned`` also of its channel part ``rho`` alone (exact by
  construction: integer frequencies), which isolates the spatial-interpolation error.

:class:`SO2Comparison` is what the comparison writes to ``metrics.json`` (:meth:`~SO2Comparison.
to_json`), with its table (:func:`table_md`) and the sentences made from it
(:func:`so2_sentences`). The command line is :mod:`galib.tools.compare_actions`.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from ..datasets import DataSplits
from ..evaluation.features import with_options
from ..evaluation.scores import evaluate_model
from ..evaluation.tables import markdown_table
from ..groups import homomorphism_error
from ..train import TrainConfig
from .plan import DataRequest, Training, run_folder, seeds_of, train_or_load
from .scoring import EvalSettings, scored_row

ACTIONS = ("resample", "learned")


# ----------------------------------------------------------------------------- plan
def so2_run_name(cfg: TrainConfig, action: str) -> str:
    """``<dataset>_<action>_<consistency>`` (``:`` made safe for file systems)."""
    return f"{cfg.dataset.replace(':', '_')}_{action}_{cfg.consistency}"


def so2_trainings(base_cfg: TrainConfig, actions=ACTIONS, run_root: str | Path = "runs/so2_actions",
                  seeds=None, data: DataRequest | None = None) -> list[Training]:
    """The plan: one training per (latent action, seed), seeds outermost, keys
    ``so2/<action>/seed<s>``; ``base_cfg`` with ``group='so2'`` and each action, all on the base
    seed's split (``data``, default that of ``base_cfg``)."""
    base_cfg = replace(base_cfg, group="so2").validate()
    seeds = seeds_of(base_cfg, seeds)
    data = data or DataRequest.of(base_cfg)
    out = []
    for s in seeds:
        for action in actions:
            cfg = replace(base_cfg, latent_action=action, seed=s).validate()
            folder = run_folder(run_root, so2_run_name(cfg, action), s, base_cfg.seed)
            out.append(Training(f"so2/{action}/seed{s}", cfg, str(folder), data))
    return out


# ----------------------------------------------------------------------------- scores
@torch.no_grad()
def homomorphism_scores(model, images, n_pairs: int = 512, repeats: int = 4, seed: int = 0) -> dict:
    """Mean/std over ``repeats`` batches of random ``(g, h)`` of the homomorphism error on real ``z_v``
    of ``images`` (float, (N, 1, H, W)); plus the channel part's error for a learned action."""
    model.eval()
    group, gen = model.group, torch.Generator().manual_seed(seed)
    z_v = model.split(model.encode(images[:n_pairs]), hard=True)[1]      # (B, C, 7, 7)
    full, chan = [], []
    channel = getattr(getattr(model, "latent_action", None), "channel_action", None)
    for _ in range(repeats):
        g, h = group.sample(len(z_v), gen), group.sample(len(z_v), gen)
        full.append(homomorphism_error(model.act, group, z_v, g, h))
        if channel is not None:
            chan.append(homomorphism_error(channel, group, z_v, g, h))
    sd = float(torch.tensor(full).std()) if len(full) > 1 else 0.0
    return {"homomorphism_error": sum(full) / len(full), "homomorphism_error_std": sd,
            "homomorphism_error_channel": sum(chan) / len(chan) if chan else None}


@torch.no_grad()
def measure(model, data: DataSplits, n_angles: int = 16, max_images: int | None = None,
            seed: int = 0) -> dict:
    """Per-angle recon MSE and equivariance error, means, homomorphism errors and mask stats."""
    ev = evaluate_model(model, data.test, n_eval=n_angles, max_images=max_images, seed=seed)
    names = ev["elements"]
    n = len(data.test.head(max_images))
    images = data.test.floats(torch.arange(min(n, 512)))          # (N, 1, 28, 28), occluded like pairs
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


@dataclass(frozen=True)
class SO2Study:
    """Which runs :func:`so2_study` loads (or trains) and how finely it scores them."""
    actions: tuple = ACTIONS                      # latent actions compared (one run each per seed)
    run_root: str | Path = "runs/so2_actions"     # folder holding the run folders
    seeds: tuple | None = None                    # training seeds (None: the config's seed only)
    n_angles: int = 16                            # angles of the per-angle test scores (measure)


def so2_study(base_cfg: TrainConfig, study: SO2Study | None = None, data: DataSplits | None = None,
              settings: EvalSettings | None = None, progress: bool = False, verbose: bool = True,
              **overrides) -> list[dict]:
    """Load (or train) every run of :func:`so2_trainings` and score it: one row per (action, seed)
    with ``key``, ``action``, ``seed``, ``run_dir``, ``best_epoch``, ``epochs_run``,
    ``val_loss_per_epoch``, ``val_const_per_epoch``, ``train_seconds``, ``wall_seconds`` (training
    or loading, and scoring, now) and every key of :func:`measure`. ``study`` (:class:`SO2Study`;
    its fields may also be given as keywords: ``actions``, ``run_root``, ``seeds``, ``n_angles``)
    names the runs and the test angles; ``data`` defaults to the data of ``base_cfg``;
    ``settings`` (default: the evaluation seed = the config's seed, no probes) holds the
    evaluation seed and the test caps."""
    (study,) = with_options(overrides, study or SO2Study())
    n_angles = study.n_angles
    base_cfg = replace(base_cfg, group="so2").validate()
    settings = settings or EvalSettings(seed=base_cfg.seed, probe=False)
    request = DataRequest.of(base_cfg, max_test=settings.max_test)
    data = data if data is not None else request.load(verbose=verbose)
    key = {**settings.cache_key(), "so2": {"n_angles": n_angles}}
    rows = []
    for t in so2_trainings(base_cfg, study.actions, study.run_root, study.seeds, request):
        t0 = time.perf_counter()
        res = train_or_load(t, data, progress=progress, verbose=verbose)
        hist = res.history
        row = {"key": t.key, "action": t.config.latent_action, "seed": t.config.seed,
               "run_dir": t.run_dir, "best_epoch": res.best["epoch"], "epochs_run": len(hist),
               "val_loss_per_epoch": [r["val_loss"] for r in hist],
               "val_const_per_epoch": [r["val_const"] for r in hist],
               "train_seconds": sum(r["seconds"] for r in hist)}
        row = scored_row(t.run_dir, row, res.config, data, key,
                         lambda: measure(res.model, data, n_angles, settings.max_images, settings.seed),
                         t.key, verbose)
        rows.append({**row, "wall_seconds": time.perf_counter() - t0})
    return rows


# ----------------------------------------------------------------------------- table
TABLE_ROWS = (("recon_mse", "transformed-recon MSE (mean over angles)"),
              ("recon_mse@90", "recon MSE, multiples of 90°"),
              ("recon_mse@off90", "recon MSE, other angles"),
              ("equivariance_error", "equivariance error (mean over angles ≠ 0°)"),
              ("equivariance_error@90", "equivariance error, 90°, 180°, 270°"),
              ("equivariance_error@off90", "equivariance error, other angles"),
              ("invariance_error", "invariance error"),
              ("homomorphism_error", "homomorphism error ‖ΦgΦh z_v − Φgh z_v‖/‖Φgh z_v‖"),
              ("homomorphism_error_channel", "homomorphism error, channel part ρ only"),
              ("recon_ssim", "recon SSIM"), ("variant_fraction", "variant fraction"),
              ("best_epoch", "best validation epoch (weights evaluated)"),
              ("val_const@best", "validation L_const, best epoch"),
              ("val_const@last", "validation L_const, last epoch (divergence check)"),
              ("latent_energy", "mean z² on test images (scale drift check)"))


ZERO_AT_IDENTITY = ("equivariance_error",)   # per-angle scores whose 0° value is 0 by construction


def row_value(m: dict, key: str):
    """The value of a ``TABLE_ROWS`` key in one action's scores ``m``: a plain key, the mean over
    the angles that are (``@90``) or are not (``@off90``) multiples of 90° (for the errors of
    ``ZERO_AT_IDENTITY`` without 0°, like their overall mean in
    :func:`~galib.evaluation.scores.evaluate_model`), or ``val_const`` at the best or the last
    epoch."""
    if key.startswith("val_const@"):
        per = m.get("val_const_per_epoch")
        return None if not per else per[-1 if key.endswith("last") else m["best_epoch"] - 1]
    if "@" in key:
        name = key.split("@")[0]
        per = m[name + "_per_angle"]
        skip = 0.0 if name in ZERO_AT_IDENTITY else None     # 0 by construction at the identity
        on90 = [v for a, v in zip(m["angles_deg"], per) if a % 90 == 0 and a != skip]
        off = [v for a, v in zip(m["angles_deg"], per) if a % 90 != 0]
        vals = on90 if key.endswith("@90") else off
        return sum(vals) / len(vals) if vals else None
    return m.get(key)


def table_md(actions: dict) -> str:
    """One row per metric of ``TABLE_ROWS``, one column per latent action."""
    rows = [{"metric": label, **{a: row_value(m, key) for a, m in actions.items()}}
            for key, label in TABLE_ROWS]
    freqs = actions.get("learned", {}).get("learned_frequencies")
    if freqs is not None:
        rows.append({"metric": "learned frequencies m_k (pairs)", "learned": ", ".join(map(str, freqs))})
    return markdown_table(rows, [("metric", "metric")] + [(a, a) for a in actions])


# ----------------------------------------------------------------------------- the record
@dataclass
class SO2Comparison:
    """What the comparison writes to ``metrics.json``: its settings, the data, where it came from
    (``command``, ``commit``), per action the scores of the base seed's run (the other seeds'
    rows in ``other_seeds``), the ``summary`` scalars of the table, the table and the sentences."""
    dataset: str
    tau: float
    epochs: int
    consistency: str
    max_train: int | None
    max_test: int | None
    latent_channels: int
    seed: int
    n_angles: int
    data: dict
    actions: dict                       # action → scores of the base seed's run (a study row)
    seconds: dict                       # action → {"wall": training/loading + scoring, "training"}
    command: str | None = None
    commit: str | None = None
    group: str = "so2"
    other_seeds: list = field(default_factory=list)   # the study rows of the other training seeds
    summary: dict = field(default_factory=dict)
    table_md: str = ""
    sentences: list = field(default_factory=list)

    @classmethod
    def from_rows(cls, cfg: TrainConfig, rows: list[dict], data: DataSplits, n_angles: int,
                  max_test: int | None, command: str | None = None,
                  commit: str | None = None) -> "SO2Comparison":
        """The record of :func:`so2_study` rows (``actions`` from the seed of ``cfg``)."""
        base = {r["action"]: r for r in rows if r["seed"] == cfg.seed}
        rec = cls(dataset=cfg.dataset, tau=cfg.tau, epochs=cfg.epochs, consistency=cfg.consistency,
                  max_train=cfg.max_train, max_test=max_test, latent_channels=cfg.latent_channels,
                  seed=cfg.seed, n_angles=n_angles, data=data.describe(), actions=base,
                  seconds={a: {"wall": r["wall_seconds"], "training": r["train_seconds"]}
                           for a, r in base.items()},
                  command=command, commit=commit,
                  other_seeds=[r for r in rows if r["seed"] != cfg.seed])
        rec.summary = {f"{a}/{k}": row_value(m, k) for a, m in base.items() for k, _ in TABLE_ROWS}
        rec.table_md = table_md(base)
        rec.sentences = so2_sentences(rec)
        return rec

    def to_json(self) -> dict:
        return asdict(self)

    def describe_data(self) -> str:
        d = self.data
        return (f"{d.get('n_train')} train / {d.get('n_val')} val / {d.get('n_test')} held-out test "
                f"images {tuple(d.get('image_shape', ()))}; test metrics over {self.n_angles} angles")


def _cmp(a: float, b: float, lower: str, higher: str, rel: float = 0.05) -> str:
    """``lower`` when ``a`` is below ``b`` by more than ``rel`` of ``b``, ``higher`` when above,
    else ``about the same as``."""
    if abs(a - b) <= rel * abs(b):
        return "about the same as"
    return lower if a < b else higher


def so2_sentences(rec: SO2Comparison) -> list[str]:
    """The comparison in words, computed from the record (one seed: no spread, no verdict beyond
    the ±5 % band of :func:`_cmp`)."""
    res, lrn = rec.actions.get("resample"), rec.actions.get("learned")
    ep = f"{rec.epochs} epoch" + ("s" if rec.epochs != 1 else "")
    others = sorted({r["seed"] for r in rec.other_seeds})
    seeds = (f"seed {rec.seed} (one training seed: no spread)" if not others else
             f"seed {rec.seed} (the numbers below; other seeds {others} in other_seeds)")
    out = [f"{rec.dataset}, {ep}, {rec.describe_data()}, {seeds}."]
    for name, m in rec.actions.items():
        out.append(f"{name}: transformed-recon MSE {m['recon_mse']:.4g} (SSIM {m['recon_ssim']:.3g}); "
                   f"equivariance error {m['equivariance_error']:.3g} ({row_value(m, 'equivariance_error@90'):.3g} "
                   f"at 90°, 180° and 270°, {row_value(m, 'equivariance_error@off90'):.3g} at other angles); "
                   f"homomorphism error {m['homomorphism_error']:.3g}; variant fraction "
                   f"{m['variant_fraction']:.3g}; best validation epoch {m['best_epoch']} of "
                   f"{m['epochs_run']}.")
    if res is None or lrn is None:
        return out
    out.append(f"The learned action reconstructs "
               f"{_cmp(lrn['recon_mse'], res['recon_mse'], 'better than', 'worse than')} resampling "
               f"(MSE {lrn['recon_mse']:.4g} against {res['recon_mse']:.4g}) and is "
               f"{_cmp(lrn['equivariance_error'], res['equivariance_error'], 'more equivariant than', 'less equivariant than')} "
               f"it (equivariance error {lrn['equivariance_error']:.3g} against "
               f"{res['equivariance_error']:.3g}).")
    chan = lrn.get("homomorphism_error_channel")
    if chan is not None:
        out.append(f"The learned action's channel part alone is a homomorphism to {chan:.2g}; the whole "
                   f"action's error, {lrn['homomorphism_error']:.3g} (resampling alone: "
                   f"{res['homomorphism_error']:.3g}), comes from the spatial interpolation.")
    return out
