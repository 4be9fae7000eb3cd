"""The τ sweep behind notebook 03: one model per (mask threshold τ, training seed).

:func:`tau_trainings` is the plan (``tau/<τ>/seed<s>`` in ``run_root/tau_<τ>[_seed<s>]``, all on
the base seed's data split); :func:`sweep_tau` loads (or trains) each run and collects what 03
plots: variant fraction, transformed-reconstruction error, share of latent energy in ``z_i``,
protocol-b probe accuracy of ``z_i`` and of the orbit invariants of ``z_v``, the final
per-channel ``sigmoid(alpha)`` and the mask dynamics (does a channel end on the side of τ it
started on?).
"""
from __future__ import annotations

import functools
import math
from dataclasses import replace
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from ..datasets import DataSplits
from ..evaluation.features import probe_model
from ..evaluation.metrics import mask_side_agreement
from ..evaluation.scores import SCORE_LABELS, evaluate_model
from ..evaluation.spread import aggregate, format_spread, mean_sd
from ..evaluation.tables import markdown_table
from ..experiments.plan import DataRequest, Scoring, Training, plan_inputs, run_folder, train_or_load
from ..experiments.scoring import EvalSettings, scored_row
from ..train import TrainConfig, initial_mask_probs
from .plotting import rc_style, save
from .wording import WORSE, num, pm, text_of


INVARIANT_FEATURES = ("z_i", "orbit")     # features meant not to change under the group


def tau_run_dir(root: str | Path, tau: float, seed: int | None = None, base_seed: int | None = None) -> Path:
    """``root/tau_<τ>`` (the base seed), or ``root/tau_<τ>_seed<seed>``."""
    return run_folder(root, f"tau_{tau:g}", seed, base_seed)


def tau_trainings(base_cfg: TrainConfig, taus, run_root: str | Path, seeds=None,
                  data: DataRequest | None = None, negated_taus=()) -> list[Training]:
    """The plan of the sweep: one training per (seed, τ), seeds outermost; for each τ in
    ``negated_taus`` also its twin with the initial logits negated (same weights: the
    initialisation test, :func:`init_test`), in ``tau_<τ>[_seed<s>]_negated``."""
    base_cfg, seeds, data = plan_inputs(base_cfg, seeds, data)
    out = []
    for s in seeds:
        for tau in taus:
            cfg = replace(base_cfg, tau=float(tau), seed=s).validate()
            out.append(Training(f"tau/{float(tau):g}/seed{s}", cfg,
                                str(tau_run_dir(run_root, tau, s, base_cfg.seed)), data))
        for tau in negated_taus:
            cfg = replace(base_cfg, tau=float(tau), seed=s, mask_init="negated").validate()
            folder = tau_run_dir(run_root, tau, s, base_cfg.seed)
            out.append(Training(f"tau/{float(tau):g}/seed{s}/negated", cfg,
                                str(folder.with_name(folder.name + "_negated")), data))
    return out


def init_test(base_cfg: TrainConfig, taus, run_root: str | Path, data: DataSplits, seeds=None,
              progress: bool = False, verbose: bool = True) -> list[dict]:
    """Does the split follow the initial logits or the weights? Per (τ, seed): the run with the
    paper's initial logits (A) and its twin with the same network weights and the logits negated
    (B, starting on the opposite sides). ``kappa_follows_logits``: Cohen's κ of B's final sides
    with B's initial sides; ``kappa_follows_weights``: κ of B's final sides with A's final sides.
    Logits decide: the first near 1, the second near −1; what the channels encode decides: the
    second near 1."""
    plan = tau_trainings(base_cfg, taus, run_root, seeds, negated_taus=taus)
    by_key = {t.key: t for t in plan}
    rows = []
    for t in [t for t in plan if t.key.endswith("/negated")]:
        twin = by_key[t.key.rsplit("/", 1)[0]]
        a = train_or_load(twin, data, progress=progress, verbose=verbose).model
        b = train_or_load(t, data, progress=progress, verbose=verbose).model
        pa, pb = (m.mask.probs().detach().cpu().tolist() for m in (a, b))
        init_b = initial_mask_probs(t.config, data.image_shape)
        logits = mask_side_agreement(init_b, pb, t.config.tau)
        weights = mask_side_agreement(pa, pb, t.config.tau)
        rows.append({"tau": t.config.tau, "seed": t.config.seed, "n_variant": int(a.hard_mask().sum()),
                     "n_variant_negated": int(b.hard_mask().sum()),
                     "kappa_follows_logits": logits["kappa"], "agreement_logits": logits["agreement"],
                     "kappa_follows_weights": weights["kappa"], "agreement_weights": weights["agreement"]})
    return rows


def init_test_sentence(rows: list[dict]) -> str:
    """:func:`init_test` in words (means over its runs; the thresholds are the module's)."""
    if not rows:
        return "No initialisation test in this run."
    lk, lsd, n = mean_sd(r["kappa_follows_logits"] for r in rows)
    wk, wsd, _ = mean_sd(r["kappa_follows_weights"] for r in rows)
    if n == 0:
        return "The initialisation test left a trivial split (all channels on one side): it cannot tell."
    verdict = ("the final split follows the initial logits, not what the channels encode"
               if lk >= FOLLOWS_INIT and wk <= LEARNED else
               "the final split follows the weights (what the channels encode), not the initial logits"
               if wk >= FOLLOWS_INIT and lk <= LEARNED else "neither the logits nor the weights alone decide")
    return (f"Initialisation test ({n} run{'s' if n > 1 else ''}, same network weights, initial logits "
            f"negated): the final sides agree with the negated run's own initial sides at κ = "
            f"{lk:.2f} ± {lsd:.2f} and with the un-negated twin's final sides at κ = {wk:.2f} ± "
            f"{wsd:.2f}: {verdict}.")


def sweep_tau(base_cfg: TrainConfig, taus, run_root: str | Path, data: DataSplits,
              settings: EvalSettings | None = None, seeds=None, progress: bool = False,
              verbose: bool = True) -> list[dict]:
    """One row per (τ, training seed): ``tau``, ``seed``, every score of ``SCORE_LABELS`` (on
    ``data.test``: ``recon_mse`` of ``D(z_i + Phi_g z_v)`` vs ``T_g x``, ``variant_fraction``,
    ``energy_share_zi`` …), ``n_variant``, ``probe_a_zi``, ``probe_b_zi``, ``probe_b_zv_orbit``
    (nan when the part is empty), ``mask_probs`` and ``mask_probs_init`` (at initialisation),
    the mask dynamics of :func:`galib.evaluation.metrics.mask_side_agreement` (``agreement``,
    ``agreement_chance``, ``rank_correlation``), ``epochs``, ``train_loss_first``/``_last``,
    ``eval_seconds`` and ``seconds`` (training plus scoring). Rows are scored once and kept in
    the run folders (:func:`~galib.experiments.scoring.scored_row`; the sweep scores them first:
    :func:`tau_scorings`). ``seeds`` default to the config's seed; ``settings`` hold the evaluation seed
    and the probe's budget."""
    settings = settings or EvalSettings()
    rows = []
    for t in tau_trainings(base_cfg, taus, run_root, seeds):
        rows.append(_sweep_row(t, data, settings, progress, verbose))
        if verbose:
            r = rows[-1]
            print(f"[galib] τ = {r['tau']:g}, seed {r['seed']}: variant {r['variant_fraction']:.2f}, "
                  f"recon MSE {r['recon_mse']:.4f}, E(z_i) {r['energy_share_zi']:.2f}, probe b z_i "
                  f"{r['probe_b_zi']:.3f} / orbit {r['probe_b_zv_orbit']:.3f}, same side as at "
                  f"init {r['agreement']:.0%} (chance {r['agreement_chance']:.0%})")
    return rows


def _sweep_row(t: Training, data: DataSplits, settings: EvalSettings, progress: bool = False,
               verbose: bool = True) -> dict:
    """One row of :func:`sweep_tau`, scored once and cached in the run folder."""
    cfg = t.config
    res = train_or_load(t, data, progress=progress, verbose=verbose)
    init = initial_mask_probs(cfg, data.image_shape)
    base = {"tau": cfg.tau, "seed": cfg.seed, "epochs": len(res.history),
            "train_loss_first": res.history[0]["train_loss"],
            "train_loss_last": res.history[-1]["train_loss"]}

    def score() -> dict:
        ev = evaluate_model(res.model, data.test, seed=settings.seed)
        probes = probe_model(res.model, data, features=INVARIANT_FEATURES, seed=settings.seed,
                             **settings.probe_kwargs())
        nan = math.nan
        return {**{k: ev[k] for k in SCORE_LABELS}, "n_variant": ev["n_variant"],
                "probe_a_zi": probes.get("z_i", {}).get("a", nan),
                "probe_b_zi": probes.get("z_i", {}).get("b", nan),
                "probe_b_zv_orbit": probes.get("orbit", {}).get("b", nan),
                "mask_probs": ev["mask_probs"], "mask_probs_init": init,
                **mask_side_agreement(init, ev["mask_probs"], cfg.tau)}
    row = scored_row(t.run_dir, base, res.config, data, settings.cache_key(), score, t.key, verbose)
    return {**row, "seconds": sum(h["seconds"] for h in res.history) + row["eval_seconds"]}


def eval_settings(params: Mapping) -> EvalSettings:
    """How notebook 03 scores its rows, from its parameters (the sweep scores them alike)."""
    return EvalSettings(seed=int(params["seed"]), probe_max_train=params.get("probe_max_train"),
                        probe_iters=params.get("probe_iters"), probe_solver=params.get("probe_solver"))


def score_tau(training: Training, settings: EvalSettings, data: DataRequest) -> dict:
    """The row of one τ run (:func:`sweep_tau`'s, cached): the sweep's scoring task."""
    return _sweep_row(training, data.load(), settings)


def tau_scorings(base_cfg: TrainConfig, taus, run_root: str | Path, seeds, settings: EvalSettings,
                 data: DataRequest) -> list:
    """The scoring tasks of :func:`sweep_tau` with these arguments (``data``: the notebook's), one
    per (τ, seed), keys ``tau/<τ>/seed<s>/row``."""
    return [Scoring(f"{t.key}/row", t.run_dir, functools.partial(score_tau, t, settings, data),
                    needs=(t.key,), fits=2.0 * settings.probe, images=settings.max_images or 0)
            for t in tau_trainings(base_cfg, taus, run_root, seeds, data)]


def sweep_by_tau(rows: list[dict], keys=("variant_fraction", "recon_mse", "energy_share_zi",
                                          "probe_a_zi", "probe_b_zi", "probe_b_zv_orbit",
                                          "agreement", "agreement_chance", "kappa",
                                          "rank_correlation")) -> list[dict]:
    """:func:`sweep_tau` rows → one row per τ with mean, sd and per-seed values of ``keys``."""
    return aggregate(rows, keys, by="tau")


FOLLOWS_INIT = 0.6       # Cohen's κ of initial vs final sides at or above this: the split follows the init
LEARNED = 0.2            # κ at or below this: the final side is (nearly) independent of the initial one


def mask_dynamics_sentence(rows: list[dict]) -> str:
    """What decides a channel's side, per τ, in words computed from :func:`sweep_tau` rows. Only
    runs whose final split is non-trivial (some channels on each side of τ) can tell. Agreement
    of the initial and final sides is read as Cohen's κ (agreement beyond what the two sides'
    sizes give by chance), so τ values with different chance levels are comparable: κ near 1
    means the initial logits, not what the channels encode, decide which channels end variant."""
    told = [r for r in rows if 0 < r["variant_fraction"] < 1 and r.get("kappa") == r.get("kappa")]
    if not told:
        return (f"In all {len(rows)} runs every channel ended on the same side of τ, so no run tells "
                f"what decides a channel's side.")
    parts = []
    for tau in sorted({r["tau"] for r in told}):
        at = [r for r in told if r["tau"] == tau]
        kappa, kappa_sd, n = mean_sd(r["kappa"] for r in at)
        agree = mean_sd(r["agreement"] for r in at)[0]
        chance = mean_sd(r["agreement_chance"] for r in at)[0]
        rho = mean_sd(r["rank_correlation"] for r in at)[0]
        spread = f" ± {kappa_sd:.2f}" if n > 1 else ""
        parts.append(f"τ = {tau:g} ({n} run{'s' if n > 1 else ''}): {agree:.0%} on their initial side "
                     f"(chance {chance:.0%}), κ = {kappa:.2f}{spread}, rank correlation {rho:.2f}")
    kappa = mean_sd(r["kappa"] for r in told)[0]
    verdict = ("the split follows the initial logits: the channels that started highest end "
               "variant, whatever they encode" if kappa >= FOLLOWS_INIT else
               "the initial logits do not decide the split" if kappa <= LEARNED else
               "the initial logits decide the split in part")
    return ("Runs with a non-trivial final split, per τ — " + "; ".join(parts) +
            f". Over these {len(told)} of {len(rows)} runs κ averages {kappa:.2f}: {verdict} "
            f"(κ ≥ {FOLLOWS_INIT} follows, ≤ {LEARNED} independent).")


SWEEP_COLUMNS = (("τ", "tau", "g"), ("variant frac", "variant_fraction", ".2f"),
                 ("recon MSE", "recon_mse", ".4f"), ("E(z_i) share", "energy_share_zi", ".2f"),
                 ("probe b z_i", "probe_b_zi", ".3f"), ("probe b orbit(z_v)", "probe_b_zv_orbit", ".3f"))


def sweep_table_md(rows: list[dict]) -> str:
    """Markdown table of :func:`sweep_tau` rows, one line per τ (``mean ± sd`` over seeds when
    there are several; an empty part shows ``—``)."""
    by_tau = sweep_by_tau(rows)
    cols = list(SWEEP_COLUMNS) + [("same side as init", "agreement", ".2f"),
                                  ("chance", "agreement_chance", ".2f"), ("κ", "kappa", ".2f")]
    if all(r["n_seeds"] == 1 for r in by_tau):
        return markdown_table(by_tau, cols, nan="—", first_left=False)
    specs = {c[1]: c[2] for c in cols}

    def cell(row, key):
        return row[key] if key == "tau" else format_spread(row, key, specs[key])
    return markdown_table(by_tau, cols, nan="—", first_left=False, cell=cell)


def sweep_summary(rows: list[dict]) -> dict:
    """Notebook 03's headline: number of τ values and seeds, the mean variant fraction at both
    ends, whether it never grows with τ, the mask dynamics (mean over runs) and the seconds."""
    by_tau = sweep_by_tau(rows)
    vf = [r["variant_fraction"] for r in by_tau]
    return {"n_taus": len(by_tau), "n_seeds": len({r["seed"] for r in rows}),
            "variant_fraction_at_min_tau": vf[0], "variant_fraction_at_max_tau": vf[-1],
            "variant_fraction_nonincreasing": all(a >= b for a, b in zip(vf, vf[1:])),
            "side_agreement": mean_sd(r["agreement"] for r in rows)[0],
            "side_agreement_chance": mean_sd(r["agreement_chance"] for r in rows)[0],
            "init_final_rank_correlation": mean_sd(r["rank_correlation"] for r in rows)[0],
            "init_final_kappa": mean_sd(r["kappa"] for r in rows)[0],
            "seconds": sum(r["seconds"] for r in rows)}


# ----------------------------------------------------------------------------- figures
def plot_tau_sweep(rows: Sequence[Mapping], out_path=None, title: str = "",
                   chance: float | None = None) -> Figure:
    """Four panels against τ: variant fraction, transformed-reconstruction MSE, share of latent
    energy in ``z_i``, and protocol-b probe accuracy for ``z_i`` and for orbit invariants of ``z_v``.

    ``rows`` hold ``tau``, ``variant_fraction``, ``recon_mse``, ``energy_share_zi`` and
    ``probe_b_zi`` / ``probe_b_zv_orbit`` (missing keys are skipped); rows aggregated over seeds
    (``<key>_sd``, ``<key>_per_seed``) are drawn as mean ± sd with one dot per seed.
    """
    taus = [r["tau"] for r in rows]
    panels = [("variant_fraction", "variant fraction", (0, 1)),
              ("recon_mse", "transformed recon. MSE", None),
              ("energy_share_zi", "energy share of z_i", (0, 1))]
    with rc_style():
        fig = Figure(figsize=(13, 3.6), layout="constrained")
        axes = fig.subplots(1, 4)
        for ax, (key, name, lim) in zip(axes, panels):
            spread_line(ax, taus, rows, key, "-o")
            ax.set_title(name)
            ax.set_ylabel(name)
            if lim:
                ax.set_ylim(lim[0] - 0.03, lim[1] + 0.03)
        ax = axes[3]
        for key, name, m in (("probe_b_zi", "z_i", "-o"), ("probe_b_zv_orbit", "orbit inv. of z_v", "--s")):
            if any(key in r for r in rows):
                spread_line(ax, taus, rows, key, m, label=name)
        if chance is not None:
            ax.axhline(chance, color="gray", ls=":", label="chance")
        ax.set_ylim(0, 1.02)
        ax.set_title("probe accuracy, protocol b")
        ax.set_ylabel("test accuracy (transformed)")
        ax.legend(fontsize=9)
        for ax in axes:
            ax.set_xlabel("τ")
        fig.suptitle(f"Mask threshold sweep\n{title}".strip())
    return save(fig, out_path)


def spread_line(ax, xs, rows, key, style, label=None):
    """Mean line of ``rows[key]``; with ``<key>_sd`` error bars, with ``<key>_per_seed`` a dot per seed."""
    ys = [r.get(key, np.nan) for r in rows]
    ys = [np.nan if v is None else v for v in ys]
    sd = [r.get(f"{key}_sd") for r in rows]
    if any(v for v in sd if v is not None):
        line = ax.errorbar(xs, ys, yerr=[0 if v is None else v for v in sd], fmt=style, capsize=3,
                           label=label)[0]
    else:
        line = ax.plot(xs, ys, style, label=label)[0]
    for x, r in zip(xs, rows):
        vals = [v for v in r.get(f"{key}_per_seed") or [] if v is not None]
        if len(vals) > 1:
            ax.scatter([x] * len(vals), vals, s=9, color=line.get_color(), alpha=0.5, zorder=3)
    return line


def plot_final_mask_probs(taus: Sequence[float], probs: Sequence[Sequence[float]], out_path=None,
                          title: str = "") -> Figure:
    """Per-channel ``sigmoid(alpha)`` at the end of training for each τ (channels sorted by p),
    one line per τ with its threshold drawn as a dashed line of the same colour."""
    with rc_style():
        fig = Figure(figsize=(10, 4), layout="constrained")
        ax = fig.subplots()
        cmap = matplotlib.colormaps["plasma"]
        for k, (tau, p) in enumerate(zip(taus, probs)):
            c = cmap(0.85 * k / max(len(taus) - 1, 1))              # stop before pale yellow
            p = np.sort(np.asarray(p))[::-1]
            ax.plot(np.arange(len(p)), p, "-", color=c, lw=2, label=f"τ = {tau:g} ({(p > tau).mean():.0%} variant)")
            ax.axhline(tau, color=c, ls="--", lw=0.8)
        ax.set_xlabel("latent channel (sorted by p, per τ)")
        ax.set_ylabel("p = sigmoid(α) after training")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        fig.suptitle(f"Final mask probabilities (dashed: threshold τ)\n{title}".strip())
    return save(fig, out_path)


# ----------------------------------------------------------------------------- findings
def findings(m: Mapping) -> list[str]:
    rows = sorted(m.get("by_tau") or [], key=lambda r: r["tau"])
    out = []
    if rows:
        lo, hi = rows[0], rows[-1]
        seeds = max(int(r.get("n_seeds", 1)) for r in rows)
        vf = [num(r.get("variant_fraction")) for r in rows]
        if None not in vf:
            mono = all(b <= a + 1e-9 for a, b in zip(vf, vf[1:]))
            out.append(f"Over τ = {lo['tau']:g} … {hi['tau']:g} ({len(rows)} values, {seeds} seed(s) each) "
                       f"the variant fraction goes from {pm(lo, 'variant_fraction', '.2f')} to "
                       f"{pm(hi, 'variant_fraction', '.2f')}"
                       + (", never rising with τ." if mono else ", but not monotonically in τ."))
            full = [r["tau"] for r, v in zip(rows, vf) if v >= 1.0]
            empty = [r["tau"] for r, v in zip(rows, vf) if v <= 0.0]
            parts = []
            if full:
                parts.append(f"at τ = {', '.join(f'{t:g}' for t in full)} every channel is variant (z_i is empty)")
            if empty:
                parts.append(f"at τ = {', '.join(f'{t:g}' for t in empty)} none is (z_v is empty)")
            if parts:
                out.append("; ".join(parts).capitalize() + ".")
        mse = [num(r.get("recon_mse")) for r in (lo, hi)]
        if None not in mse:
            worse = mse[1] > WORSE * mse[0]
            out.append(f"The transformed-reconstruction MSE is {pm(lo, 'recon_mse')} at τ = {lo['tau']:g} "
                       f"and {pm(hi, 'recon_mse')} at τ = {hi['tau']:g}: "
                       + ("fewer variant channels leave the model less room to express the transformation."
                          if worse else f"within a factor {WORSE:g} across the sweep."))
        orbit = [(r["tau"], num(r.get("probe_b_zv_orbit"))) for r in rows]
        orbit = [(t, v) for t, v in orbit if v is not None]
        if len(orbit) >= 2:
            out.append(f"Protocol-b probe accuracy (test images each moved by a non-identity element) "
                       f"of the orbit invariants of z_v is {orbit[0][1]:.3f} at τ = {orbit[0][0]:g} and "
                       f"{orbit[-1][1]:.3f} at τ = {orbit[-1][0]:g} (the largest τ with a non-empty z_v).")
    out += text_of(m, "mask_dynamics")        # κ of initial vs final sides per τ (galib.studies.tau)
    out += text_of(m, "init_test_text")       # the same weights with the initial logits negated
    return out
