"""Studies over several models behind notebooks 02, 03 and 05: the τ sweep, the probe table's
summaries and the confusion matrix of the best invariant feature.

* :func:`sweep_tau` trains one model per mask threshold τ (a finished run is loaded, not retrained)
  and collects what 03 plots: variant fraction, transformed-reconstruction error, share of latent
  energy in ``z_i``, protocol-b probe accuracy of ``z_i`` and of the orbit invariants of ``z_v``,
  and the final per-channel ``sigmoid(alpha)``.
* :func:`best_invariant` picks the best invariant feature under protocol b from
  :func:`galib.evaluation.baselines.run_baselines` rows; :func:`probe_confusion` refits that probe
  and returns its confusion matrix on transformed test images; :func:`describe_confusions` says
  in words which classes it mixes up (and whether 6↔9 is among them);
  :func:`invariant_confusion` does all three for notebook 05.
"""
from __future__ import annotations

import math
import time
from dataclasses import replace
from pathlib import Path

import torch

from ..datasets import DataSplits
from ..evaluation.baselines import BASELINES, baseline_config
from ..evaluation.features import compute_features, probe_model, probe_sets
from ..evaluation.probe import fit_probe
from ..evaluation.scores import SCORE_LABELS, evaluate_model
from ..evaluation.tables import markdown_table
from ..groups import get_group
from ..train import TrainConfig, train
from .context import flat_scalars

INVARIANT_FEATURES = ("z_i", "orbit")     # features meant not to change under the group
FEATURE_LABELS = {"orbit": "orbit inv. of z_v"}   # how figures name a probe feature


# ----------------------------------------------------------------------------- τ sweep
def tau_run_dir(root: str | Path, tau: float) -> Path:
    return Path(root) / f"tau_{tau:g}"


def sweep_tau(base_cfg: TrainConfig, taus, run_root: str | Path, data: DataSplits, seed: int = 0,
              probe_max_train: int | None = None, probe_iters: int = 100,
              progress: bool = False, verbose: bool = True) -> list[dict]:
    """One row per τ: ``tau``, every score of ``SCORE_LABELS`` (on ``data.test``: ``recon_mse`` of
    ``D(z_i + Phi_g z_v)`` vs ``T_g x``, ``variant_fraction``, ``energy_share_zi`` …),
    ``n_variant``, ``probe_a_zi``, ``probe_b_zi``, ``probe_b_zv_orbit`` (nan when the part is
    empty), ``mask_probs``, ``epochs``, ``train_loss_first``/``_last``, ``seconds``."""
    rows = []
    for tau in taus:
        cfg = replace(base_cfg, tau=float(tau)).validate()
        t0 = time.perf_counter()
        res = train(cfg, run_dir=tau_run_dir(run_root, tau), data=data, progress=progress,
                    verbose=verbose)
        model = res.model
        ev = evaluate_model(model, data.test, seed=seed)
        probes = probe_model(model, data, features=INVARIANT_FEATURES, seed=seed,
                             max_train=probe_max_train, fit_kwargs={"max_iter": probe_iters})
        nan = math.nan
        rows.append({
            "tau": float(tau), **{k: ev[k] for k in SCORE_LABELS}, "n_variant": ev["n_variant"],
            "probe_a_zi": probes.get("z_i", {}).get("a", nan),
            "probe_b_zi": probes.get("z_i", {}).get("b", nan),
            "probe_b_zv_orbit": probes.get("orbit", {}).get("b", nan),
            "mask_probs": ev["mask_probs"], "epochs": len(res.history),
            "train_loss_first": res.history[0]["train_loss"],
            "train_loss_last": res.history[-1]["train_loss"],
            "seconds": time.perf_counter() - t0})
        if verbose:
            r = rows[-1]
            print(f"[galib] τ = {tau:g}: variant {r['variant_fraction']:.2f}, recon MSE "
                  f"{r['recon_mse']:.4f}, E(z_i) {r['energy_share_zi']:.2f}, probe b z_i "
                  f"{r['probe_b_zi']:.3f} / orbit {r['probe_b_zv_orbit']:.3f}")
    return rows


# ----------------------------------------------------------------------------- confusion
def best_invariant(rows: list[dict], protocol: str = "b") -> tuple[str, str, float] | None:
    """``(baseline name, feature, accuracy)`` of the best invariant feature under ``protocol``
    over the rows of :func:`galib.evaluation.baselines.run_baselines`; ``None`` if no row has one."""
    best = None
    for r in rows:
        for f in INVARIANT_FEATURES:
            acc = r.get(f"probe/{f}/{protocol}")
            if acc is not None and not math.isnan(acc) and (best is None or acc > best[2]):
                best = (r["name"], f, float(acc))
    return best


def confusion_matrix(y_true: torch.Tensor, y_pred: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Counts ``(K, K)``: rows true class, columns predicted class."""
    idx = y_true.reshape(-1).long() * n_classes + y_pred.reshape(-1).long()
    return torch.bincount(idx.cpu(), minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def probe_confusion(model, data: DataSplits, feature: str, split: str = "mask", seed: int = 0,
                    max_train: int | None = None, probe_iters: int = 100) -> dict:
    """Protocol b for one feature: a probe fitted on upright training images (l2 chosen on upright
    validation images) predicts test images each transformed by a random group element (drawn
    from ``seed``). Returns ``cm`` (K, K counts), ``accuracy``, ``feature``."""
    group = get_group(model.group)
    sets = probe_sets(data, max_train)
    train_set, val_set = sets["train"], sets["val"]
    g = group.sample(len(data.test), torch.Generator().manual_seed(seed + 7919))
    feats = {k: compute_features(model, d, [feature], split=split)[feature]
             for k, d in (("train", train_set), ("val", val_set))}
    test_t = compute_features(model, data.test, [feature], g=g, split=split)[feature]
    probe = fit_probe(feats["train"], train_set.labels.to(feats["train"].device), feats["val"],
                      val_set.labels.to(feats["val"].device), max_iter=probe_iters)
    pred = probe.predict(test_t).cpu()
    cm = confusion_matrix(data.test.labels, pred, data.num_classes)
    return {"cm": cm, "accuracy": float((pred == data.test.labels).double().mean()), "feature": feature}


def top_confusions(cm: torch.Tensor, k: int = 3) -> list[tuple[int, int, float]]:
    """The ``k`` largest off-diagonal rates ``(true, predicted, share of the true class)``."""
    cm = torch.as_tensor(cm, dtype=torch.float64)
    rate = cm / cm.sum(1, keepdim=True).clamp(min=1)
    rate.fill_diagonal_(-1.0)
    vals, flat = rate.flatten().topk(min(k, rate.numel()))
    K = cm.shape[0]
    return [(int(i) // K, int(i) % K, float(v)) for v, i in zip(vals, flat) if v > 0]


def pair_confusion(cm: torch.Tensor, a: int, b: int) -> float:
    """Share of classes ``a`` and ``b`` predicted as the other one (symmetric)."""
    cm = torch.as_tensor(cm, dtype=torch.float64)
    if max(a, b) >= cm.shape[0]:
        return math.nan
    total = float(cm[a].sum() + cm[b].sum())
    return float(cm[a, b] + cm[b, a]) / total if total > 0 else math.nan


def describe_confusions(cm: torch.Tensor, class_names: list[str], digits: bool,
                        k: int = 3) -> str:
    """Plain-language summary of the largest confusions; mentions 6↔9 only if it shows up."""
    tops = top_confusions(cm, k)
    if not tops:
        return "No class is confused with another on these test images."
    parts = [f"{class_names[t]}→{class_names[p]} ({r:.0%} of {class_names[t]})" for t, p, r in tops]
    text = "Largest confusions: " + ", ".join(parts) + "."
    if digits:
        pairs = {frozenset((t, p)) for t, p, _ in tops}
        rate = pair_confusion(cm, 6, 9)
        if frozenset((6, 9)) in pairs:
            text += (f" 6↔9 is among them ({rate:.0%} of all 6s and 9s go to the other class): a "
                     "180° rotation maps one digit onto the other, so a rotation-invariant feature "
                     "cannot tell them apart.")
        else:
            text += f" 6↔9 is not among the largest confusions here ({rate:.0%} of 6s and 9s swap)."
    return text


SWEEP_COLUMNS = (("τ", "tau", "g"), ("variant frac", "variant_fraction", ".2f"),
                 ("recon MSE", "recon_mse", ".4f"), ("E(z_i) share", "energy_share_zi", ".2f"),
                 ("probe b z_i", "probe_b_zi", ".3f"), ("probe b orbit(z_v)", "probe_b_zv_orbit", ".3f"))


def sweep_table_md(rows: list[dict]) -> str:
    """Markdown table of :func:`sweep_tau` rows (one line per τ; an empty part shows ``—``)."""
    return markdown_table(rows, SWEEP_COLUMNS, nan="—", first_left=False)


def sweep_summary(rows: list[dict]) -> dict:
    """Notebook 03's headline: number of τ values, variant fraction at both ends, whether it never
    grows with τ, and the seconds the sweep took."""
    vf = [r["variant_fraction"] for r in rows]
    return {"n_taus": len(rows), "variant_fraction_at_min_tau": vf[0],
            "variant_fraction_at_max_tau": vf[-1],
            "variant_fraction_nonincreasing": all(a >= b for a, b in zip(vf, vf[1:])),
            "seconds": sum(r["seconds"] for r in rows)}


# ----------------------------------------------------------------------------- probe table
def probe_dict(rows: list[dict], features=("pixels", "z", "z_i", "z_v", "orbit"),
               protocols=("a", "b", "c")) -> dict:
    """``{model label: {feature: {protocol: accuracy}}}`` from ``run_baselines`` rows (features a
    model lacks are left out; features are named by ``FEATURE_LABELS``)."""
    out = {}
    for r in rows:
        label = r.get("label", r["name"])
        for f in features:
            accs = {p: r[f"probe/{f}/{p}"] for p in protocols if r.get(f"probe/{f}/{p}") is not None}
            if accs:
                out.setdefault(label, {})[FEATURE_LABELS.get(f, f)] = accs
    return out


def load_baseline(base_cfg: TrainConfig, name: str, run_root: str | Path, data: DataSplits):
    """The trained model of baseline ``name`` under ``run_root`` (trained if missing)."""
    cfg = baseline_config(base_cfg, name)
    if cfg is None:
        raise ValueError(f"baseline {name!r} has no model")
    return train(cfg, run_dir=Path(run_root) / name, data=data, progress=False, verbose=False).model


# ----------------------------------------------------------------------------- summaries
def training_summary(history: list[dict], test_metrics: dict) -> dict:
    """Headline numbers of a training run for ``metrics.json``'s ``summary``: first/last losses,
    final variant fraction, seconds per epoch and the scalar test metrics (per-element ones left
    out)."""
    first, last = history[0], history[-1]
    return {"epochs": len(history), "train_loss_first": first["train_loss"],
            "train_loss_last": last["train_loss"], "val_loss_first": first["val_loss"],
            "val_loss_last": last["val_loss"], "variant_fraction": last["variant_fraction"],
            "seconds_per_epoch": sum(r["seconds"] for r in history) / len(history),
            **flat_scalars(test_metrics)}


def probe_summary(rows: list[dict], confusion: dict | None = None, digits: bool = False) -> dict:
    """``"<baseline> <feature> <a|b>": accuracy`` for the headline features, plus the refitted
    best invariant accuracy and (digits only) the 6↔9 confusion rate."""
    out = {f"{r['name']} {f} {p}": r[f"probe/{f}/{p}"] for r in rows
           for f in ("pixels", "z", "z_i", "orbit") for p in ("a", "b")
           if r.get(f"probe/{f}/{p}") is not None}
    if confusion is not None:
        out["best_invariant_b"] = confusion["accuracy"]
        if digits:
            out["six_nine_confusion"] = pair_confusion(confusion["cm"], 6, 9)
    return out


def invariant_confusion(rows: list[dict], base_cfg: TrainConfig, run_root: str | Path,
                        data: DataSplits, seed: int = 0, max_train: int | None = None,
                        probe_iters: int = 100) -> dict | None:
    """The best invariant feature under protocol b (:func:`best_invariant`), its probe refitted on
    a fresh draw of group elements (:func:`probe_confusion`) and its largest confusions in words.
    Keys: ``baseline``, ``label`` (of the baseline), ``feature``, ``feature_label``,
    ``accuracy_table``, ``cm``, ``accuracy``, ``text``; ``None`` if no row has such a feature."""
    best = best_invariant(rows, "b")
    if best is None:
        return None
    name, feature, acc = best
    model = load_baseline(base_cfg, name, run_root, data)
    conf = probe_confusion(model, data, feature, split=BASELINES[name].split, seed=seed,
                           max_train=max_train, probe_iters=probe_iters)
    return {"baseline": name, "label": BASELINES[name].label, "feature": feature,
            "feature_label": FEATURE_LABELS.get(feature, feature), "accuracy_table": acc,
            "cm": conf["cm"], "accuracy": conf["accuracy"],
            "text": describe_confusions(conf["cm"], data.class_names, data.digits)}


def probe_metrics(rows: list[dict], conf: dict | None, table_md: str, data: DataSplits) -> dict:
    """What notebook 05 records besides the common fields: the rows, the probe dict, the table,
    chance, the best invariant feature and its confusion matrix, and the ``summary``."""
    best = None if conf is None else {k: conf[k] for k in ("baseline", "feature", "accuracy_table")}
    confusion = None if conf is None else {
        "feature": conf["feature"], "accuracy": conf["accuracy"], "matrix": conf["cm"],
        "classes": data.class_names, "text": conf["text"]}
    return {"rows": rows, "probes": probe_dict(rows), "table_md": table_md,
            "chance": 1 / data.num_classes, "best_invariant": best, "confusion": confusion,
            "summary": probe_summary(rows, conf, data.digits)}
