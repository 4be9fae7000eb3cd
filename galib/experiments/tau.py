"""The τ sweep behind notebook 03: one model per (mask threshold τ, training seed).

:func:`tau_trainings` is the plan (``tau/<τ>/seed<s>`` in ``run_root/tau_<τ>[_seed<s>]``, all on
the base seed's data split); :func:`sweep_tau` loads (or trains) each run and collects what 03
plots: variant fraction, transformed-reconstruction error, share of latent energy in ``z_i``,
protocol-b probe accuracy of ``z_i`` and of the orbit invariants of ``z_v``, the final
per-channel ``sigmoid(alpha)`` and the mask dynamics (does a channel end on the side of τ it
started on?).
"""
from __future__ import annotations

import math
import time
from dataclasses import replace
from pathlib import Path

from ..datasets import DataSplits
from ..evaluation.features import probe_model
from ..evaluation.metrics import mask_side_agreement
from ..evaluation.scores import SCORE_LABELS, evaluate_model
from ..evaluation.spread import aggregate, format_spread, mean_sd
from ..evaluation.tables import markdown_table
from ..train import TrainConfig, initial_mask_probs
from .plan import DataRequest, Training, run_folder, train_or_load
from .rows import EvalSettings

INVARIANT_FEATURES = ("z_i", "orbit")     # features meant not to change under the group


def tau_run_dir(root: str | Path, tau: float, seed: int | None = None, base_seed: int | None = None) -> Path:
    """``root/tau_<τ>`` (the base seed), or ``root/tau_<τ>_seed<seed>``."""
    return run_folder(root, f"tau_{tau:g}", seed, base_seed)


def tau_trainings(base_cfg: TrainConfig, taus, run_root: str | Path, seeds=None,
                  data: DataRequest | None = None) -> list[Training]:
    """The plan of the sweep: one training per (seed, τ), seeds outermost."""
    base_cfg = base_cfg.validate()
    seeds = [base_cfg.seed] if seeds is None else [int(s) for s in seeds]
    data = data or DataRequest.of(base_cfg)
    out = []
    for s in seeds:
        for tau in taus:
            cfg = replace(base_cfg, tau=float(tau), seed=s).validate()
            out.append(Training(f"tau/{float(tau):g}/seed{s}", cfg,
                                str(tau_run_dir(run_root, tau, s, base_cfg.seed)), data))
    return out


def sweep_tau(base_cfg: TrainConfig, taus, run_root: str | Path, data: DataSplits,
              settings: EvalSettings | None = None, seeds=None, progress: bool = False,
              verbose: bool = True) -> list[dict]:
    """One row per (τ, training seed): ``tau``, ``seed``, every score of ``SCORE_LABELS`` (on
    ``data.test``: ``recon_mse`` of ``D(z_i + Phi_g z_v)`` vs ``T_g x``, ``variant_fraction``,
    ``energy_share_zi`` …), ``n_variant``, ``probe_a_zi``, ``probe_b_zi``, ``probe_b_zv_orbit``
    (nan when the part is empty), ``mask_probs`` and ``mask_probs_init`` (at initialisation),
    the mask dynamics of :func:`galib.evaluation.metrics.mask_side_agreement` (``agreement``,
    ``agreement_chance``, ``rank_correlation``), ``epochs``, ``train_loss_first``/``_last``,
    ``seconds``. ``seeds`` default to the config's seed; ``settings`` hold the evaluation seed
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


def _sweep_row(t: Training, data: DataSplits, settings: EvalSettings, progress: bool,
               verbose: bool) -> dict:
    t0 = time.perf_counter()
    cfg = t.config
    res = train_or_load(t, data, progress=progress, verbose=verbose)
    ev = evaluate_model(res.model, data.test, seed=settings.seed)
    probes = probe_model(res.model, data, features=INVARIANT_FEATURES, seed=settings.seed,
                         **settings.probe_kwargs())
    init = initial_mask_probs(cfg, data.image_shape)
    nan = math.nan
    return {"tau": cfg.tau, "seed": cfg.seed, **{k: ev[k] for k in SCORE_LABELS},
            "n_variant": ev["n_variant"],
            "probe_a_zi": probes.get("z_i", {}).get("a", nan),
            "probe_b_zi": probes.get("z_i", {}).get("b", nan),
            "probe_b_zv_orbit": probes.get("orbit", {}).get("b", nan),
            "mask_probs": ev["mask_probs"], "mask_probs_init": init,
            **mask_side_agreement(init, ev["mask_probs"], cfg.tau), "epochs": len(res.history),
            "train_loss_first": res.history[0]["train_loss"],
            "train_loss_last": res.history[-1]["train_loss"], "seconds": time.perf_counter() - t0}


def sweep_by_tau(rows: list[dict], keys=("variant_fraction", "recon_mse", "energy_share_zi",
                                          "probe_a_zi", "probe_b_zi", "probe_b_zv_orbit",
                                          "agreement", "agreement_chance", "rank_correlation")) -> list[dict]:
    """:func:`sweep_tau` rows → one row per τ with mean, sd and per-seed values of ``keys``."""
    return aggregate(rows, keys, by="tau")


def mask_dynamics_sentence(rows: list[dict]) -> str:
    """What decides a channel's side, in words computed from :func:`sweep_tau` rows. Only runs whose
    final split is non-trivial (some channels on each side of τ) can tell: there, a final order
    of ``p`` that follows the initial order (rank correlation near 1) means the initial logits,
    not what the channels encode, decide which channels end variant."""
    told = [r for r in rows if 0 < r["variant_fraction"] < 1]
    n_seeds = len({r["seed"] for r in rows})
    if not told:
        return (f"In all {len(rows)} runs every channel ended on the same side of τ, so no run tells "
                f"what decides a channel's side.")
    agree = mean_sd(r["agreement"] for r in told)
    chance = mean_sd(r["agreement_chance"] for r in told)
    rho = mean_sd(r["rank_correlation"] for r in told)
    taus = ", ".join(f"{t:g}" for t in sorted({r["tau"] for r in told}))
    text = (f"In the {len(told)} of {len(rows)} runs ({n_seeds} seed{'s' if n_seeds > 1 else ''}) whose "
            f"final split is non-trivial (τ = {taus}), {agree[0]:.0%} ± {agree[1]:.0%} of the channels "
            f"end on the side of τ they started on, against {chance[0]:.0%} ± {chance[1]:.0%} if the "
            f"final side were independent of the initial one, and the rank correlation of initial "
            f"and final p is {rho[0]:.2f} ± {rho[1]:.2f}. ")
    if rho[0] >= 0.8:
        return text + ("The split follows the initial logits: the channels that started highest end "
                       "variant, whatever they encode.")
    if rho[0] <= 0.3 and abs(agree[0] - chance[0]) <= agree[1] + chance[1]:
        return text + "The initial logits do not decide the split: it is learned from the data."
    return text + "The initial logits decide the split in part."


SWEEP_COLUMNS = (("τ", "tau", "g"), ("variant frac", "variant_fraction", ".2f"),
                 ("recon MSE", "recon_mse", ".4f"), ("E(z_i) share", "energy_share_zi", ".2f"),
                 ("probe b z_i", "probe_b_zi", ".3f"), ("probe b orbit(z_v)", "probe_b_zv_orbit", ".3f"))


def sweep_table_md(rows: list[dict]) -> str:
    """Markdown table of :func:`sweep_tau` rows, one line per τ (``mean ± sd`` over seeds when
    there are several; an empty part shows ``—``)."""
    by_tau = sweep_by_tau(rows)
    cols = list(SWEEP_COLUMNS) + [("same side as init", "agreement", ".2f"),
                                  ("chance", "agreement_chance", ".2f")]
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
            "seconds": sum(r["seconds"] for r in rows)}


