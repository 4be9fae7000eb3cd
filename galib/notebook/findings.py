"""What a run shows, in sentences computed from its ``metrics.json`` (the closing cell of each notebook).

Every number in a sentence comes from the metrics dict; every verdict ("is invariant", "keeps its
accuracy") compares a number with a threshold named below, so the text changes with the run and
is never hand-written. :func:`report` dispatches on ``metrics["notebook"]``; each builder is a pure
function ``metrics -> list[str]`` that skips a sentence whose numbers are missing or nan.

    findings.report(ctx.metrics)        # a Findings: shows as a bullet list, prints as text
"""
from __future__ import annotations

import math
from typing import Callable, Mapping

UNIFORM_SDS = 3.0        # an element count within this many expected sds of uniform is "uniform"
EXACT = 1e-5             # a round-trip error below this is "exact" (float error)
INVARIANT = 0.5          # centred invariance error below this: z_i is "largely invariant"
NOT_INVARIANT = 1.0      # ... at or above this: "not invariant" (√2 ≈ 1.41 = pairing random images)
KEEP_POINTS = 5.0        # a probe feature "keeps" its accuracy if protocol b loses at most this many points
UNSETTLED_SHARE = 0.25   # more than this share of channels within 0.05 of τ: the split is "unsettled"
WORSE = 1.5              # a ratio above this counts as "worse"


class Findings(list):
    """Sentences; a notebook cell ending in one shows a bullet list (markdown), ``print`` gives text."""

    def _repr_markdown_(self) -> str:
        return "\n".join("- " + s.replace("_", r"\_").replace("*", r"\*") for s in self)

    def __str__(self) -> str:
        return "\n".join(f"• {s}" for s in self)

    __repr__ = __str__


def _num(x) -> float | None:
    """``x`` as a float, or ``None`` if missing, not a number or nan."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return None if math.isnan(x) else float(x)


def _nums(d: Mapping, *keys) -> list[float] | None:
    vals = [_num(d.get(k)) for k in keys]
    return None if any(v is None for v in vals) else vals


def _pm(row: Mapping, key: str, fmt: str = ".4f") -> str:
    """``row[key]``, with ``± row[key_sd]`` when several seeds give a spread."""
    v, sd = _num(row.get(key)), _num(row.get(f"{key}_sd"))
    if v is None:
        return "—"
    return f"{v:{fmt}}" + (f" ± {sd:{fmt}}" if sd is not None and row.get("n_seeds", 1) > 1 else "")


def _seeds(metrics: Mapping) -> int:
    seeds = (metrics.get("params") or {}).get("seeds")
    return len(seeds) if isinstance(seeds, list) and seeds else 1


# ----------------------------------------------------------------------------- 01
def data_pairing(m: Mapping) -> list[str]:
    s, out = m.get("summary", {}), []
    n = _nums(s, "n_train", "n_val", "n_test", "n_classes")
    if n:
        out.append(f"The training split holds {n[0]:.0f} images of {n[3]:.0f} classes "
                   f"({n[1]:.0f} validation, {n[2]:.0f} test images).")
    imb = _num(s.get("class_imbalance"))
    if imb is not None:
        out.append(f"The largest class has {imb:.2f}× as many training images as the smallest.")
    dev, sd = _num(s.get("element_max_rel_dev")), _num(s.get("element_rel_sd_expected"))
    k = len(m.get("element_counts") or [])
    if dev is not None and sd is not None and k:
        ok = dev <= UNIFORM_SDS * sd
        out.append(f"In one epoch of pairs every one of the {k} group elements (or bins) was drawn "
                   f"within {dev:.1%} of its uniform share, against about {sd:.1%} expected from "
                   f"sampling noise alone: " + ("consistent with uniform sampling." if ok else
                   f"more than {UNIFORM_SDS:g} times that, so the sampler is not uniform."))
    rt = _num(s.get("roundtrip_error"))
    if rt is not None:
        out.append("Undoing each transform, T_(g⁻¹)(T_g x), gives back x "
                   + (f"up to {rt:.1e}: the " if rt > 0 else "exactly (bit for bit): the ")
                   + ("image action is exact." if rt < EXACT else
                      "image action is not exact (it interpolates and loses the corners)."))
    return out


# ----------------------------------------------------------------------------- 02
def training(m: Mapping) -> list[str]:
    s, out = m.get("summary", {}), []
    hist = m.get("history") or []
    channels = len(hist[-1].get("mask_probs") or []) if hist else 0
    v = _nums(s, "epochs", "val_loss_first", "val_loss_last")
    if v:
        change = (f"down by a factor {v[1] / v[2]:.1f}" if v[2] < v[1] else "it did not fall") if v[2] > 0 else ""
        out.append(f"In {v[0]:.0f} epochs the validation loss went from {v[1]:.4f} to {v[2]:.4f}"
                   + (f" ({change})." if change else "."))
    nv, tau = _num(s.get("n_variant")), _num(s.get("tau"))
    if nv is not None and tau is not None and channels:
        text = (f"The learned mask made {nv:.0f} of {channels} channels variant at τ = {tau:g} "
                f"({nv / channels:.0%} of the latent is z_v).")
        uns = _num(s.get("n_unsettled"))
        if uns is not None:
            text += (f" {uns:.0f} channels end within 0.05 of τ, so "
                     + ("the split is not settled yet: more epochs may move channels across τ."
                        if uns > UNSETTLED_SHARE * channels else "the split looks settled."))
        out.append(text)
    r = _nums(s, "n_images", "recon_mse", "recon_psnr", "recon_ssim")
    if r:
        out.append(f"On {r[0]:.0f} test images, the prediction D(z_i + Φ_g z_v) from the untransformed x "
                   f"matches T_g x with MSE {r[1]:.4f} (PSNR {r[2]:.1f} dB, SSIM {r[3]:.2f}).")
    eq, inv = _num(s.get("equivariance_error")), _num(s.get("invariance_error_centred"))
    if eq is not None:
        out.append(f"z_v is equivariant up to a relative error of {eq:.3f} "
                   f"(‖Φ_g z_v(x) − z_v(T_g x)‖ / ‖z_v(T_g x)‖, mean over test pairs).")
    if inv is not None:
        verdict = ("z_i is largely invariant" if inv < INVARIANT else
                   "z_i is only partly invariant" if inv < NOT_INVARIANT else
                   "z_i is not invariant: under the group it changes about as much as it differs "
                   "between images")
        out.append(f"The centred invariance error of z_i is {inv:.2f} (0 is exact, about 1.41 is no "
                   f"better than pairing random images), so {verdict}.")
    e = _num(s.get("energy_share_zi"))
    if e is not None:
        out.append(f"z_i carries {e:.0%} of the latent energy.")
    return out


# ----------------------------------------------------------------------------- 03
def tau_sweep(m: Mapping) -> list[str]:
    rows = sorted(m.get("by_tau") or [], key=lambda r: r["tau"])
    if not rows:
        return []
    out, lo, hi = [], rows[0], rows[-1]
    seeds = max(int(r.get("n_seeds", 1)) for r in rows)
    vf = [_num(r.get("variant_fraction")) for r in rows]
    if None not in vf:
        mono = all(b <= a + 1e-9 for a, b in zip(vf, vf[1:]))
        out.append(f"Over τ = {lo['tau']:g} … {hi['tau']:g} ({len(rows)} values, {seeds} seed(s) each) "
                   f"the variant fraction goes from {_pm(lo, 'variant_fraction', '.2f')} to "
                   f"{_pm(hi, 'variant_fraction', '.2f')}"
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
    mse = [_num(r.get("recon_mse")) for r in (lo, hi)]
    if None not in mse:
        worse = mse[1] > WORSE * mse[0]
        out.append(f"The transformed-reconstruction MSE is {_pm(lo, 'recon_mse')} at τ = {lo['tau']:g} "
                   f"and {_pm(hi, 'recon_mse')} at τ = {hi['tau']:g}: "
                   + ("fewer variant channels leave the model less room to express the transformation."
                      if worse else f"within a factor {WORSE:g} across the sweep."))
    orbit = [(r["tau"], _num(r.get("probe_b_zv_orbit"))) for r in rows]
    orbit = [(t, v) for t, v in orbit if v is not None]
    if len(orbit) >= 2:
        out.append(f"Protocol-b probe accuracy of the orbit invariants of z_v is {orbit[0][1]:.3f} at "
                   f"τ = {orbit[0][0]:g} and {orbit[-1][1]:.3f} at τ = {orbit[-1][0]:g} (the largest τ "
                   f"with a non-empty z_v).")
    if isinstance(m.get("mask_dynamics"), str) and m["mask_dynamics"]:
        out.append(m["mask_dynamics"])
    return out


# ----------------------------------------------------------------------------- 04
def latent_traversals(m: Mapping) -> list[str]:
    s, out = m.get("summary", {}), []
    orbit = {k: _num(v) for k, v in (m.get("orbit_mse") or {}).items()}
    orbit = {k: v for k, v in orbit.items() if v is not None}
    if orbit:
        worst = max(orbit, key=orbit.get)
        best = min(orbit, key=orbit.get)
        mean = sum(orbit.values()) / len(orbit)
        even = orbit[worst] <= WORSE * max(orbit[best], 1e-12)
        out.append(f"Decoding the latent orbit D(z_i + Φ_g z_v) of an untransformed test image reproduces "
                   f"T_g x with MSE {mean:.4f} on average over {len(orbit)} group elements (best g = {best}: "
                   f"{orbit[best]:.4f}, worst g = {worst}: {orbit[worst]:.4f}); "
                   + ("the latent action serves every element about equally well." if even else
                      f"some elements are reproduced more than {WORSE:g}× worse than others."))
    n_inv = _num(s.get("n_invariant_channels"))
    channels = _num((m.get("params") or {}).get("latent_channels"))
    e = _num(s.get("energy_share_zi"))
    if n_inv is not None and channels:
        if n_inv == 0:
            out.append(f"Every one of the {channels:.0f} channels is variant: there is no invariant "
                       f"channel to traverse.")
        else:
            out.append(f"{n_inv:.0f} of {channels:.0f} latent channels are invariant"
                       + (f"; together they carry {e:.0%} of the latent energy." if e is not None else "."))
    return out


# ----------------------------------------------------------------------------- 05
def _drop(s: Mapping, name: str, feature: str) -> tuple[float, float, float] | None:
    v = _nums(s, f"{name} {feature} a", f"{name} {feature} b")
    return None if v is None else (v[0], v[1], 100 * (v[0] - v[1]))


FEATURE_WORDS = {"pixels": "pixels", "z": "the whole latent z", "z_i": "z_i",
                 "orbit": "the orbit invariants of z_v"}


def linear_probe(m: Mapping) -> list[str]:
    s, out = m.get("summary", {}), []
    n = _seeds(m)
    px = _drop(s, "pixels", "pixels")
    if px:
        out.append(f"A linear probe on pixels trained on upright images scores {px[0]:.3f} on upright test "
                   f"images (protocol a) and {px[1]:.3f} on transformed ones (protocol b), "
                   f"{px[2]:.0f} points lower" + (f" (means over {n} seeds)." if n > 1 else "."))
    drops = {f: _drop(s, "ald", f) for f in ("z", "z_i", "orbit")}
    drops = {f: d for f, d in drops.items() if d}
    if drops:
        parts = [f"{FEATURE_WORDS[f]} from {a:.3f} to {b:.3f} "
                 + (f"({d:.0f} points lower)" if d > 0.5 else "(no loss)")
                 for f, (a, b, d) in drops.items()]
        out.append("With the learned mask (ALD), protocol b takes "
                   + (", ".join(parts[:-1]) + " and " if len(parts) > 1 else "") + parts[-1] + ".")
        keep = [FEATURE_WORDS[f] for f, (_, _, d) in drops.items() if d <= KEEP_POINTS]
        lose = [FEATURE_WORDS[f] for f, (_, _, d) in drops.items() if d > KEEP_POINTS]
        text = (f"Invariant in this sense (losing at most {KEEP_POINTS:g} points): "
                f"{', '.join(keep) if keep else 'none of them'}")
        if lose:
            text += f"; not invariant: {', '.join(lose)}"
        out.append(text + ".")
    best, chance = m.get("best_invariant"), _num(m.get("chance"))
    if isinstance(best, Mapping) and _num(best.get("accuracy_table")) is not None:
        out.append(f"The best invariant feature under protocol b is {FEATURE_WORDS.get(best['feature'], best['feature'])} "
                   f"of the {best['baseline']} model, at {best['accuracy_table']:.3f}"
                   + (f" (chance {chance:.2f})." if chance is not None else "."))
    if isinstance(m.get("learned_vs_random_text"), str) and m["learned_vs_random_text"]:
        out.append(m["learned_vs_random_text"])
    return out


# ----------------------------------------------------------------------------- 06
def blocked(m: Mapping) -> list[str]:
    answer = m.get("answer") or []
    return [a for a in answer if isinstance(a, str)]


BUILDERS: dict[str, Callable[[Mapping], list[str]]] = {
    "01_data_pairing": data_pairing,
    "02_training": training,
    "03_mask_sparsity_vs_tau": tau_sweep,
    "04_latent_traversals": latent_traversals,
    "05_linear_probe": linear_probe,
    "06_blocked": blocked,
}


def report(metrics: Mapping | None) -> Findings:
    """The sentences for ``metrics`` (what ``Context.finish`` wrote), by its ``notebook`` entry."""
    if not metrics:
        return Findings(["No metrics: run the notebook's last cell (ctx.finish) first."])
    build = BUILDERS.get(str(metrics.get("notebook")))
    if build is None:
        return Findings([f"No findings are defined for notebook {metrics.get('notebook')!r}."])
    return Findings(build(metrics))
