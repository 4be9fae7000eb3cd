"""Fast checks of galib.studies.probes and .tau: confusion helpers, probe summaries, the τ sweep table."""
from __future__ import annotations

import math

import pytest
import torch

from galib.studies import tau
from galib.studies import probes


def _cm_with(a, b, rate=0.5, n=100, k=10):
    cm = torch.eye(k, dtype=torch.long) * n
    cm[a, a] = cm[b, b] = int(n * (1 - rate))
    cm[a, b] = cm[b, a] = int(n * rate)
    return cm


def test_confusion_helpers():
    y = torch.tensor([0, 0, 1, 2])
    cm = probes.confusion_matrix(y, torch.tensor([0, 1, 1, 2]), 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]
    cm = _cm_with(6, 9)
    assert probes.top_confusions(cm, 2)[0][2] == pytest.approx(0.5)
    assert probes.pair_confusion(cm, 6, 9) == pytest.approx(0.5)
    names = [str(i) for i in range(10)]
    assert "6↔9 is among them" in probes.describe_confusions(cm, names, digits=True)
    text = probes.describe_confusions(_cm_with(3, 5), names, digits=True)
    assert "6↔9 is not among" in text and "3→5" in text
    assert "6↔9" not in probes.describe_confusions(_cm_with(3, 5), names, digits=False)
    assert probes.describe_confusions(torch.eye(3) * 5, names[:3], True).startswith("No class")


def test_best_invariant_and_probe_dict():
    rows = [{"name": "pixels", "label": "pixels", "probe/pixels/a": 0.9, "probe/pixels/b": 0.3},
            {"name": "ald", "label": "ALD", "probe/z_i/b": 0.6, "probe/orbit/b": 0.8,
             "probe/orbit/a": 0.85, "probe/z_i/val_b": 0.7, "probe/orbit/val_b": 0.5}]
    # chosen on validation accuracy (z_i), reported with its test accuracy — not the best test one
    assert probes.best_invariant(rows) == ("ald", "z_i", 0.6)
    assert probes.best_invariant(rows[:1]) is None
    d = probes.probe_dict(rows)
    assert d["pixels"]["pixels"] == {"a": 0.9, "b": 0.3}
    assert d["ALD"]["orbit inv. of z_v"] == {"b": 0.8, "a": 0.85}


def test_design_comparison_known_answers():
    """Spectrum − orbit: a steady gain of 0.1 in the rotated z_i probe is 'better'; equal values are
    'equivalent'; a lower invariance error is 'better' too (lower is better there)."""
    def rows(gains, err_gap=0.0):
        return [r for s, g in enumerate(gains) for r in (
            {"name": "ald-spectrum-norm", "seed": s, "probe/z_i/b": 0.6 + g,
             "invariance_error_centred": 0.3 - err_gap},
            {"name": "ald-orbit-norm", "seed": s, "probe/z_i/b": 0.6, "invariance_error_centred": 0.3})]
    got = {c["key"]: c for c in probes.design_comparison(rows([0.1, 0.11, 0.09], err_gap=0.1))}
    assert got["probe/z_i/b"]["verdict"] == "better" and got["invariance_error_centred"]["verdict"] == "better"
    assert set(got) == {"probe/z_i/b", "invariance_error_centred"}        # keys missing from the rows
    (c, _) = probes.design_comparison(rows([0.0, 0.0, 0.0]))
    assert c["verdict"] == "equivalent" and c["diff"] == 0.0
    assert "ald-spectrum-norm against ald-orbit-norm, paired over 3 seeds" in probes.comparison_sentence(
        [c], "ald-spectrum-norm", "ald-orbit-norm")
    assert probes.design_comparison(rows([0.1])) == []                   # one seed: no interval


def test_learned_vs_random_is_paired_with_verdicts():
    """Known answers: a constant gap of 0.1 in a probe accuracy over 4 seeds is 'better'; the same
    values on both sides (up to 1e-4) are 'equivalent'; a gap that flips sign is 'inconclusive'."""
    def rows(gaps, key="probe/z/a"):
        out = []
        for s, gap in enumerate(gaps):
            out += [{"name": "ald", "seed": s, key: 0.5 + gap},
                    {"name": "random", "seed": s, key: 0.5}, {"name": "random2", "seed": s, key: 0.5}]
        return out
    (c,) = probes.learned_vs_random(rows([0.1, 0.1001, 0.0999, 0.1]), keys=("probe/z/a",))
    assert c["verdict"] == "better" and c["low"] > 0 and c["n_draws"] == 2 and c["n_seeds"] == 4
    (c,) = probes.learned_vs_random(rows([1e-4, -1e-4, 0.0, 0.0]), keys=("probe/z/a",))
    assert c["verdict"] == "equivalent"
    (c,) = probes.learned_vs_random(rows([0.2, -0.2, 0.1, -0.1]), keys=("probe/z/a",))
    assert c["verdict"] == "inconclusive"
    text = probes.control_sentence([c])
    assert "inconclusive on probe/z/a" in text and "of the same size" in text
    assert probes.learned_vs_random([r for r in rows([0.1]) if r["name"] == "ald"]) == []
    assert "diverged" not in text
    marked = [{**r, "diverged_epoch": 8 if (r["name"], r["seed"]) in (("ald", 1), ("random2", 3)) else None}
              for r in rows([0.2, -0.2, 0.1, -0.1])]
    (c,) = probes.learned_vs_random(marked, keys=("probe/z/a",))
    assert c["diverged_seeds"] == {"learned": [1], "random": [3]}
    assert c["n_seeds"] == 2 and c["seeds"] == [0, 2] and c["excluded_seeds"] == [1, 3]
    assert c["diff"] == pytest.approx(0.15)                     # the mean of 0.2 and 0.1 only
    text = probes.control_sentence([c])
    assert "learned mask seeds [1], random masks seeds [3]" in text and "2 seed pairs left out" in text
    # a divergence on one side only drops that pair; with fewer than 2 clean pairs, no verdict
    assert probes.learned_vs_random([{**r, "diverged_epoch": 5 if r["seed"] else None}
                                       for r in rows([0.1, 0.1, 0.1])], keys=("probe/z/a",)) == []
    spectrum = [{**r, "name": {"ald": "ald-spectrum-norm", "random": "random-mask-spectrum-norm"}
                 .get(r["name"], r["name"])} for r in rows([0.1, 0.1001, 0.0999, 0.1])]
    (c,) = probes.learned_vs_random(spectrum, keys=("probe/z/a",), learned="ald-spectrum-norm")
    assert c["verdict"] == "better" and c["n_draws"] == 1       # only its own control, not random2
    assert probes.learned_vs_random(spectrum, keys=("probe/z/a",)) == []   # no ald among them
    md = tau.sweep_table_md([{"tau": 0.5, "variant_fraction": 0.5, "recon_mse": 0.1,
                                   "energy_share_zi": 0.3, "probe_b_zi": math.nan,
                                   "probe_b_zv_orbit": 0.7}])
    assert "| 0.5 | 0.50 | 0.1000 | 0.30 | — | 0.700 |" in md


def test_mask_dynamics_sentence_reads_kappa_per_tau():
    from galib.studies.tau import init_test_sentence, mask_dynamics_sentence
    row = dict(seed=0, tau=0.5, variant_fraction=0.5, agreement=1.0, agreement_chance=0.5, kappa=1.0,
               rank_correlation=0.95)
    text = mask_dynamics_sentence([row, {**row, "seed": 1}])
    assert "τ = 0.5 (2 runs): 100% on their initial side (chance 50%), κ = 1.00 ± 0.00" in text
    assert "follows the initial logits" in text
    learned = mask_dynamics_sentence([{**row, "agreement": 0.5, "kappa": 0.0, "rank_correlation": 0.05}])
    assert "do not decide" in learned
    trivial = mask_dynamics_sentence([{**row, "variant_fraction": 1.0}])
    assert "no run tells" in trivial
    follows = dict(tau=0.5, seed=0, kappa_follows_logits=1.0, kappa_follows_weights=-1.0)
    assert "follows the initial logits" in init_test_sentence([follows, {**follows, "seed": 1}])
    weights = dict(follows, kappa_follows_logits=-1.0, kappa_follows_weights=1.0)
    assert "follows the weights" in init_test_sentence([weights])
    assert init_test_sentence([]) == "No initialisation test in this run."


# ----------------------------------------------------------------------------- the matched control
def _matched_rows(orbit, control, diverged=()):
    return [{"name": "ald", "seed": s, "probe/orbit/b": o, "probe/random-orbit-zv/b": c,
             "probe/orbit/dim": 1443, "probe/random-orbit-zv/dim": 1443,
             **({"diverged_epoch": 7} if s in diverged else {})}
            for s, o, c in zip(range(42, 42 + len(orbit)), orbit, control)]


def test_orbit_against_the_matched_control_at_both_ends():
    from galib.studies.probes import against_matched_control, matched_control_sentence
    ahead = against_matched_control(_matched_rows([0.85, 0.86, 0.84, 0.85], [0.60, 0.62, 0.61, 0.60]), chance=0.1)
    assert ahead["verdict"] == "better" and ahead["same_dims"] and ahead["n_seeds"] == 4
    assert "beat" in matched_control_sentence(ahead) and "the same feature counts" in matched_control_sentence(ahead)
    same = against_matched_control(_matched_rows([0.700, 0.720, 0.690, 0.710], [0.701, 0.719, 0.691, 0.709]),
                                   chance=0.1)
    assert same["verdict"] == "equivalent"
    assert same["margin_basis"].startswith("sd of the control")
    low = against_matched_control(_matched_rows([0.11, 0.12, 0.10], [0.10, 0.11, 0.12]), chance=0.1)
    assert low["verdict"] == "at chance" and "no verdict" in matched_control_sentence(low)
    out = against_matched_control(_matched_rows([0.85, 0.86, 0.2], [0.6, 0.6, 0.6], diverged=(44,)), chance=0.1)
    assert out["n_seeds"] == 2 and out["excluded_seeds"] == [44]                  # a diverged run left out
    assert against_matched_control(_matched_rows([0.8], [0.6])) is None
