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
from typing import Mapping

from ..datasets import DataSplits
from ..evaluation.features import probe_model
from ..evaluation.metrics import mask_side_agreement
from ..evaluation.scores import SCORE_LABELS, evaluate_model
from ..evaluation.spread import aggregate, format_spread, mean_sd
from ..evaluation.tables import markdown_table
from ..train import TrainConfig, initial_mask_probs
from .plan import DataRequest, Scoring, Training, run_folder, train_or_load
from .rows import EvalSettings, scored_row

INVARIANT_FEATURES = ("z_i", "orbit")     # features meant not to change under the group


def tau_run_dir(root: str | Path, tau: float, seed: int | None = None, base_seed: int | None = None) -> Path:
    """``root/tau_<τ>`` (the base seed), or ``root/tau_<τ>_seed<seed>``."""
    return run_folder(root, f"tau_{tau:g}", seed, base_seed)


def tau_trainings(base_cfg: TrainConfig, taus, run_root: str | Path, seeds=None,
                  data: DataRequest | None = None, negated_taus=()) -> list[Training]:
    """The plan of the sweep: one training per (seed, τ), seeds outermost; for each τ in
    ``negated_taus`` also its twin with the initial logits negated (same weights: the
    initialisation test, :func:`init_test`), in ``tau_<τ>[_seed<s>]_negated``."""
    base_cfg = base_cfg.validate()
    seeds = [base_cfg.seed] if seeds is None else [int(s) for s in seeds]
    data = data or DataRequest.of(base_cfg)
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
    the run folders (:func:`~galib.experiments.rows.scored_row`; the sweep scores them first:
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


