"""The notebooks: committed clean, parameters as the contract says, and runnable end to end.

One module-scoped fixture runs the whole smoke pipeline (``python -m galib.tools.pipeline --profile
smoke``) into ``tmp_path``; the tests then check every notebook's ``metrics.json``. A broken
notebook therefore fails ``make test``.
"""
from __future__ import annotations

import ast
import json
import re
import math
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from galib.tools import pipeline
from galib.studies import registry

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"
SHARED = {"dataset", "data_root", "group", "tau", "epochs", "batch_size", "lr", "latent_channels",
          "lambda_inv", "lambda_const", "seed", "max_train", "device", "run_dir", "fig_dir",
          "latent_action", "consistency"}
PROFILES = ("smoke", "quick", "paper", "evidence", "o3d", "designs")


def _parameters_cells(nb):
    return [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]


def _declared(nb) -> dict:
    """Names and values of the parameters cell; fails unless every statement is ``name = literal``."""
    (cell,) = _parameters_cells(nb)
    out = {}
    for stmt in ast.parse(cell.source).body:
        assert isinstance(stmt, ast.Assign) and len(stmt.targets) == 1, ast.dump(stmt)
        assert isinstance(stmt.targets[0], ast.Name), ast.dump(stmt)
        out[stmt.targets[0].id] = ast.literal_eval(stmt.value)        # flat literals only
    return out


# ----------------------------------------------------------------------------- static checks
@pytest.mark.parametrize("stem", pipeline.NOTEBOOKS)
def test_committed_notebook_is_clean(stem):
    nb = nbformat.read(NB_DIR / f"{stem}.ipynb", as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{stem}: a code cell has outputs"
            assert cell.execution_count is None, f"{stem}: a code cell has an execution count"
    assert len(_parameters_cells(nb)) == 1, f"{stem}: needs exactly one 'parameters' cell"
    params = _declared(nb)
    assert SHARED <= set(params), f"{stem}: missing shared parameters {SHARED - set(params)}"
    assert params["interactive"] is True, "notebooks default to widgets; the pipeline turns them off"
    assert nb.metadata["kernelspec"]["name"] == pipeline.KERNEL
    assert nb.cells[0].cell_type == "markdown", f"{stem}: should open with a markdown intro"
    # paths default to None: resolved against the repository and keyed by the configuration,
    # never relative to the kernel's working directory
    assert params["run_dir"] is None and params["fig_dir"] is None and params["data_root"] is None
    # a closing "What this run shows" cell, after the metrics are written, computed from them
    ids = [c.get("id") for c in nb.cells]
    assert "findings-md" in ids and "findings-code" in ids, f"{stem}: no closing findings cell"
    finish = max(i for i, c in enumerate(nb.cells) if "ctx.finish(" in c.source)
    code = nb.cells[ids.index("findings-code")]
    assert ids.index("findings-code") > finish and "report(ctx.metrics)" in code.source
    assert "What this run shows" in nb.cells[ids.index("findings-md")].source


@pytest.mark.parametrize("profile", PROFILES)
def test_profiles_only_set_declared_parameters(profile, tmp_path):
    prof = pipeline.load_profile(profile)
    for stem in pipeline.NOTEBOOKS:
        declared = _declared(nbformat.read(NB_DIR / f"{stem}.ipynb", as_version=4))
        params = pipeline.notebook_parameters(prof, stem, tmp_path / "fig", tmp_path / "runs")
        assert set(params) <= set(declared), f"{profile}/{stem}: {set(params) - set(declared)}"
        assert params["interactive"] is False


@pytest.mark.parametrize("profile", PROFILES)
def test_flat_profile_files_match_the_pipeline(profile, tmp_path):
    """``notebooks/params/<profile>/<stem>.yaml`` (for ``papermill -f``) hold exactly what the
    pipeline injects, less the paths it adds; regenerate with ``--write-params``."""
    import yaml
    prof = pipeline.load_profile(profile)
    folder = pipeline.PARAMS_DIR / profile
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{s}.yaml" for s in pipeline.NOTEBOOKS)
    for stem in pipeline.NOTEBOOKS:
        path = pipeline.flat_params_path(profile, stem)
        assert path.read_text() == pipeline.flat_params_text(prof, stem), \
            f"{path} is stale: run `python -m galib.tools.pipeline --write-params`"
        flat = yaml.safe_load(path.read_text())
        injected = pipeline.notebook_parameters(prof, stem, tmp_path / "fig", tmp_path / "runs")
        assert flat == {k: v for k, v in injected.items()
                        if k not in ("run_dir", "fig_dir", "baseline_dir")}
        declared = _declared(nbformat.read(NB_DIR / f"{stem}.ipynb", as_version=4))
        assert set(flat) <= set(declared), f"{profile}/{stem}: {set(flat) - set(declared)}"


def test_shared_run_dirs(tmp_path):
    prof = pipeline.load_profile("smoke")
    p = {s: pipeline.notebook_parameters(prof, s, tmp_path, tmp_path) for s in pipeline.NOTEBOOKS}
    assert p["02_training"]["run_dir"] == p["04_latent_traversals"]["run_dir"] == p["05_linear_probe"]["run_dir"]
    assert Path(p["05_linear_probe"]["baseline_dir"]) / "ald" == Path(p["02_training"]["run_dir"])
    assert p["03_mask_sparsity_vs_tau"]["run_dir"] != p["02_training"]["run_dir"]


def test_unknown_profile_and_parameter_are_errors(tmp_path):
    with pytest.raises(pipeline.PipelineError, match="no profile"):
        pipeline.load_profile("no-such-profile")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"common": {"epoch": 1}}))                # typo of "epochs"
    with pytest.raises(pipeline.PipelineError, match=r"common: unknown parameter\(s\) \['epoch'\] "
                                                     r"\('epoch': did you mean 'epochs'\?\)"):
        pipeline.load_profile(str(bad))                                 # refused on load (issue 27)
    with pytest.raises(pipeline.PipelineError, match="epoch"):          # and by the kernel's check
        pipeline.check_parameters(NB_DIR / "01_data_pairing.ipynb", {"epoch": 1, "interactive": False})


# ----------------------------------------------------------------------------- smoke run
def _run(args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "galib.tools.pipeline", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=1800)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("smoke")
    fig, runs = root / "figures", root / "runs"
    proc = _run(["--profile", "smoke", "--fig-dir", str(fig), "--run-root", str(runs)])
    assert proc.returncode == 0, f"smoke pipeline failed:\n{proc.stdout}\n{proc.stderr}"
    return fig, proc


@pytest.fixture(scope="module")
def smoke(smoke_run):
    return smoke_run[0]


def test_the_sweep_trains_and_scores_everything_and_the_kernels_nothing(smoke_run):
    """The pipeline sweeps the plan first, trainings and scorings; the notebooks then run under
    GALIB_EXPECT_TRAINED, so a run or a row outside the plan would have failed a cell — and no
    kernel printed an epoch line or scored a row."""
    out = smoke_run[1].stdout
    assert "[sweep] 32 trainings, 0 already finished, 32 to run; 36 scorings, 36 to score" in out
    assert "[sweep] 68 of 68 tasks done (44 epochs trained now, 36 scorings" in out
    kernel_epochs = [ln for ln in out.splitlines() if re.match(r"\s*\[\d\d_\w+\] epoch\s+\d+/", ln)]
    assert kernel_epochs == []
    kernel_scored = [ln for ln in out.splitlines() if re.match(r"\s*\[\d\d_\w+\] .*evaluated in", ln)]
    assert kernel_scored == [] and "reusing" in out
    assert "running over TCP without encryption" not in smoke_run[1].stderr


def _metrics(fig, stem) -> dict:
    path = fig / stem / "metrics.json"
    assert path.is_file(), f"{stem} wrote no metrics.json"
    return json.loads(path.read_text())


def _finite(*values):
    for v in values:
        assert isinstance(v, (int, float)) and math.isfinite(v), v


def _pngs(fig, stem, names):
    for n in names:
        p = fig / stem / n
        assert p.is_file() and p.stat().st_size > 2000, f"{stem}: missing or empty {n}"


def test_01_data_pairing(smoke):
    m = _metrics(smoke, "01_data_pairing")
    s = m["summary"]
    assert m["dataset"] == "glyphs" and s["n_train"] == 512 and s["n_classes"] == 10
    assert sum(m["class_counts"]) == s["n_train"] == sum(m["element_counts"]) == m["n_pairs"]
    assert len(m["element_counts"]) == 4 and s["element_max_rel_dev"] < 0.5
    assert s["roundtrip_error"] < 1e-6                                   # C4 acts exactly
    _pngs(smoke, "01_data_pairing", ["pairs_per_element.png", "balance.png"])


def test_02_training(smoke):
    m = _metrics(smoke, "02_training")
    s, hist = m["summary"], m["history"]
    assert len(hist) == s["epochs"] == 2
    _finite(*(r[k] for r in hist for k in ("train_loss", "val_loss", "train_recon", "val_recon")))
    assert s["train_loss_last"] < s["train_loss_first"]
    assert s["val_loss_last"] < s["val_loss_first"]
    t = m["test"]
    _finite(t["recon_mse"], t["recon_psnr"], t["recon_ssim"], t["equivariance_error"])
    assert 0 < t["recon_mse"] < 4 and -1 <= t["recon_ssim"] <= 1 and t["recon_psnr"] > 0
    assert 0 <= s["variant_fraction"] <= 1 and s["seconds_per_epoch"] > 0
    assert len(hist[-1]["mask_probs"]) == 16
    _pngs(smoke, "02_training", ["loss_curves.png", "mask_evolution.png", "reconstructions.png"])
    assert (Path(m["run_dir"]) / "best.pt").is_file()


def test_03_tau_sweep(smoke):
    m = _metrics(smoke, "03_mask_sparsity_vs_tau")
    rows = m["rows"]
    assert [(r["tau"], r["seed"]) for r in rows] == [(0.3, 42), (0.5, 42), (0.3, 43), (0.5, 43)]
    for r in rows:
        assert 0 <= r["agreement"] <= 1 and 0 <= r["agreement_chance"] <= 1
        # Cohen's κ of initial vs final sides; nan only when every channel sits on one side at both ends
        if r["agreement_chance"] < 1:
            assert r["kappa"] == pytest.approx((r["agreement"] - r["agreement_chance"])
                                               / (1 - r["agreement_chance"]))
            assert -1 - 1e-9 <= r["kappa"] <= 1 + 1e-9
        else:
            assert math.isnan(r["kappa"])
        assert len(r["mask_probs_init"]) == 16
        _finite(r["recon_mse"], r["variant_fraction"], r["energy_share_zi"])
        assert 0 <= r["variant_fraction"] <= 1 and 0 <= r["energy_share_zi"] <= 1
        for k in ("probe_b_zi", "probe_b_zv_orbit"):                   # nan when the part is empty
            assert math.isnan(r[k]) or 0 <= r[k] <= 1
        assert len(r["mask_probs"]) == 16
    by_tau = m["by_tau"]
    assert [r["tau"] for r in by_tau] == [0.3, 0.5] and all(r["n_seeds"] == 2 for r in by_tau)
    assert by_tau[0]["variant_fraction"] >= by_tau[-1]["variant_fraction"]  # higher τ, fewer variant
    assert "| τ |" in m["table_md"] and " ± " in m["table_md"] and "κ" in m["table_md"]
    told = [r for r in rows if 0 < r["variant_fraction"] < 1 and not math.isnan(r["kappa"])]
    if told:                                # the dynamics are read as κ, per τ, over the telling runs
        assert "κ = " in m["mask_dynamics"] and f"{len(told)} of {len(rows)} runs" in m["mask_dynamics"]
        assert any(v in m["mask_dynamics"] for v in ("follows the initial logits", "do not decide",
                                                      "decide the split in part"))
    else:
        assert "same side of τ" in m["mask_dynamics"]
    kappas = [r["kappa"] for r in rows if not math.isnan(r["kappa"])]
    if kappas:
        assert m["summary"]["init_final_kappa"] == pytest.approx(sum(kappas) / len(kappas))
    # the initialisation test: at τ = 0.5 per seed, the same weights with the initial logits negated
    init = m["init_test"]
    assert [(r["tau"], r["seed"]) for r in init] == [(0.5, 42), (0.5, 43)]
    for r in init:
        assert 0 <= r["n_variant"] <= 16 and 0 <= r["n_variant_negated"] <= 16
        for k in ("kappa_follows_logits", "kappa_follows_weights"):
            assert math.isnan(r[k]) or -1 - 1e-9 <= r[k] <= 1 + 1e-9
        assert 0 <= r["agreement_logits"] <= 1 and 0 <= r["agreement_weights"] <= 1
    text = m["init_test_text"]
    assert text.startswith("Initialisation test (2 runs") or "trivial split" in text
    assert any(v in text for v in ("follows the initial logits", "follows the weights", "neither",
                                   "cannot tell"))
    _pngs(smoke, "03_mask_sparsity_vs_tau", ["tau_sweep.png", "final_mask_probs.png"])


def test_04_latent_traversals(smoke):
    m = _metrics(smoke, "04_latent_traversals")
    s = m["summary"]
    assert len(m["orbit_mse"]) == 4
    _finite(*m["orbit_mse"].values(), s["energy_share_zi"])
    assert 0 <= s["energy_share_zi"] <= 1 and 0 <= s["variant_fraction"] <= 1
    names = ["orbit.png", "swap.png", "magnitude_maps.png"]
    _pngs(smoke, "04_latent_traversals", names + (["traversal.png"] if m["invariant_channels"] else []))
    assert set(m["swaps"]) == {"paper", "ald-orbit-norm"}
    for sw in m["swaps"].values():
        assert 0 <= sw["swap_content_a"] <= 1 and sw["swap_pairs"] > 0
    _pngs(smoke, "04_latent_traversals", ["design_swaps.png"])


def test_05_linear_probe(smoke):
    from galib.evaluation.stats import VERDICTS, margin_for, verdict
    m = _metrics(smoke, "05_linear_probe")
    chance = m["chance"]
    assert chance == pytest.approx(0.1)
    names = ("pixels", "pixels-orbit", "ae", "manual", "ald", "random", "random2", "ald-orbit-norm")
    assert [(r["name"], r["seed"]) for r in m["rows"]] == [(n, s) for s in (42, 43) for n in names]
    designs = {d["design"]: d for d in m["designs"]}
    assert set(designs) == {"paper", "orbit + normalised L_inv"}
    for d in designs.values():
        assert 0 <= d["swap_content_a"] <= 1 and 0 <= d["probe/z_i/b"] <= 1 and d["mse_ratio"] > 0
    assert designs["paper"]["mse_ratio"] == 1.0 and "goal" in m["designs_text"]
    rows = {(r["name"], r["seed"]): r for r in m["rows"]}
    for s in (42, 43):                      # the controls have exactly the learned mask's size
        for draw in ("random", "random2"):
            assert rows[(draw, s)]["n_variant"] == rows[("ald", s)]["n_variant"]
    for n in ("pixels", "pixels-orbit"):    # untrained: one value, the same row for every seed
        assert rows[(n, 42)]["single_valued"] is True
        assert rows[(n, 42)][f"probe/{n}/b"] == rows[(n, 43)][f"probe/{n}/b"]
    for r in m["rows"]:                     # protocol b: non-identity elements, per element beside
        for key in [k for k in r if re.fullmatch(r"probe/[^/]+/b", k)]:
            per = {k for k in r if k.startswith(key + "/")}
            assert per == {f"{key}/90°", f"{key}/180°", f"{key}/270°"}, per
    orbit_px = rows[("pixels-orbit", 42)]   # exactly invariant: moving the test images changes nothing
    assert orbit_px["probe/pixels-orbit/a"] > chance
    assert abs(orbit_px["probe/pixels-orbit/a"] - orbit_px["probe/pixels-orbit/b"]) <= 0.01
    # learned vs random: paired by seed, 95 % and 90 % t intervals, a margin with its basis, a verdict
    control = m["learned_vs_random"]
    assert {c["key"] for c in control} >= {"recon_mse", "equivariance_error_centred", "energy_share_zi_centred"}
    for c in control:
        assert c["n_seeds"] == c["n"] == 2 and c["n_draws"] == 2
        assert c["verdict"] in VERDICTS and c["margin"] == margin_for(c["key"])   # 2 seeds: no spread
        assert c["margin_basis"] == "fixed (MARGINS)"
        assert c["low"] <= c["tost_low"] <= c["diff"] <= c["tost_high"] <= c["high"]
        if c["verdict"] != "at chance":
            assert c["verdict"] == verdict(c["low"], c["high"], c["margin"], c["lower_is_better"],
                                           (c["tost_low"], c["tost_high"]), c["directed"])
        assert c["significant"] == (c["low"] > 0 or c["high"] < 0)
        a = [rows[("ald", s)][c["key"]] for s in (42, 43)]
        b = [(rows[("random", s)][c["key"]] + rows[("random2", s)][c["key"]]) / 2 for s in (42, 43)]
        assert c["learned"] == pytest.approx(sum(a) / 2) and c["random"] == pytest.approx(sum(b) / 2)
        assert c["diff"] == pytest.approx(c["learned"] - c["random"])
        assert not any(k.endswith("_sd") for k in c)                    # no sd-sum rule
        assert c["key"] in m["learned_vs_random_text"]
    text = m["learned_vs_random_text"]
    assert "of the same size" in text and "Paired over 2 seeds" in text and "2 random mask draws" in text
    assert m["probe_budget"]["max_change"] >= 0
    for label, feats in m["probes_per_seed"].items():   # untrained rows are single-valued: one value
        n = 1 if label in ("pixels", "orbit inv. of pixels") else 2
        assert all(len(v) == n for accs in feats.values() for v in accs.values()), label
    for model, feats in m["probes"].items():
        for feat, accs in feats.items():
            assert accs["a"] > chance + 0.2, f"{model}/{feat}: upright probe near chance"
            for p, acc in accs.items():
                assert 0 <= acc <= 1
    best = m["best_invariant"]              # chosen on validation accuracy, reported on test
    assert best is not None and best["accuracy_table"] > chance and best["feature"] in ("z_i", "orbit")
    val = {}
    for r in m["rows"]:
        for f in ("z_i", "orbit"):
            if isinstance(r.get(f"probe/{f}/val_b"), float) and not math.isnan(r[f"probe/{f}/val_b"]):
                val.setdefault((r["name"], f), []).append(r[f"probe/{f}/val_b"])
    means = {k: sum(v) / len(v) for k, v in val.items()}
    assert means[(best["baseline"], best["feature"])] == pytest.approx(max(means.values()))
    cm = m["confusion"]["matrix"]              # the rows' own protocol-b fits, summed over 2 seeds
    assert len(cm) == 10 and sum(map(sum, cm)) == 2 * 256
    accs = [r[f"probe/{best['feature']}/b"] for r in m["rows"] if r["name"] == best["baseline"]]
    assert m["confusion"]["accuracy"] == pytest.approx(sum(accs) / len(accs))
    assert m["confusion"]["accuracy"] > chance
    _pngs(smoke, "05_linear_probe", ["probe_bars.png", "confusion.png"])
    assert (smoke / "05_linear_probe" / "probe_table.md").is_file()


def test_06_blocked(smoke):
    from galib.evaluation.stats import VERDICTS
    m = _metrics(smoke, "06_blocked")
    names = ("ald", "all-variant", "manual", "random", "recon+inv", "recon+const", "recon")
    assert [(r["name"], r["seed"]) for r in m["rows"]] == [(n, s) for s in (42, 43) for n in names]
    rows = {(r["name"], r["seed"]): r for r in m["rows"]}
    for r in m["rows"]:
        assert r["dataset"] == "blocked:bright:glyphs"
        _finite(r["recon_mse_block"], r["recon_mse_outside"], r["block_mse_blank"], r["block_gain"],
                r["block_gain_zi"], r["block_gain_zv"])
        assert r["block_mse_blank"] > 0
        # the two parts share the gain over a blank decode D(0) exactly (Shapley values)
        assert r["block_gain_zi"] + r["block_gain_zv"] == pytest.approx(r["block_gain"], abs=1e-6)
        # signed share, no clamp; nan only when the model draws the block no better than D(0)
        if math.isnan(r["block_share_zi"]):
            assert r["block_gain"] <= 1e-9
        else:
            assert r["block_gain"] > 0
            assert r["block_share_zi"] == pytest.approx(r["block_gain_zi"] / r["block_gain"], abs=1e-6)
        for k in ("block_swap_zi", "block_swap_zv"):
            assert math.isnan(r[k]) or 0 <= r[k] <= 1
        if r["name"] == "all-variant":      # z_i is empty: nothing of the block can come from it
            assert r["variant_fraction"] == 1.0
            assert r["block_gain_zi"] == pytest.approx(0, abs=1e-9)
            assert math.isnan(r["block_share_zi"]) or abs(r["block_share_zi"]) < 1e-6
            assert math.isnan(r["block_swap_zi"]) or r["block_swap_zi"] == pytest.approx(0, abs=1e-9)
            assert math.isnan(r["block_channels_invariant"]) or r["block_channels_invariant"] == 0
    for s in (42, 43):
        assert rows[("random", s)]["n_variant"] == rows[("ald", s)]["n_variant"]
        assert rows[("recon+inv", s)]["lambda_const"] == 0 and rows[("recon+inv", s)]["lambda_inv"] > 0
        assert rows[("recon+const", s)]["lambda_inv"] == 0 and rows[("recon+const", s)]["lambda_const"] > 0
        assert rows[("recon", s)]["lambda_inv"] == rows[("recon", s)]["lambda_const"] == 0
    assert [(t["name"], t["n_seeds"]) for t in m["table"]] == [(n, 2) for n in names]
    assert len(m["answer"]) == 1
    answer = m["answer"][0]
    assert answer.startswith("On blocked:bright:glyphs (2 seeds)")
    ald_gain = [t for t in m["table"] if t["name"] == "ald"][0]["block_gain"]
    if ald_gain > 0:
        assert "of a blank decode's error in the block" in answer
    else:                                   # 1 epoch: the model may not draw the block yet
        assert "no better than a blank decode" in answer and "cannot be told" in answer
    for other, label in (("random", "random mask"), ("recon", "L_recon only")):
        paired = all(not math.isnan(rows[(n, s)][k]) for n in ("ald", other) for s in (42, 43)
                     for k in ("block_share_zi", "block_swap_zi"))
        if paired:                          # paired by seed: difference, 95 % CI, margin, verdict
            assert f"Against {label} over 2 seeds" in answer
            found = re.findall(r"(?:block share of z_i|block moving with z_i) (\w+) \(difference",
                               answer.split(f"Against {label}")[1])
            assert found[:2] and all(v in VERDICTS for v in found[:2]), found
        else:
            assert f"Against {label}" not in answer
    assert "blocked:bright:glyphs ald block_gain" in m["summary"] and m["summary"]["n_seeds"] == 2
    _pngs(smoke, "06_blocked", ["block_shares.png", "block_parts.png"])


def test_metrics_record_commit_command_and_no_checkout_path(smoke):
    for stem in pipeline.NOTEBOOKS:
        text = (smoke / stem / "metrics.json").read_text()
        m = json.loads(text)
        assert m["commit"] != "unknown" and m["command"].startswith("python -m galib.tools.pipeline")
        assert str(ROOT) not in text, f"{stem}: an absolute path of the checkout in metrics.json"
    meta = json.loads((smoke / "05_linear_probe" / "probe_table.json").read_text())["meta"]
    assert {"commit", "command", "params"} <= set(meta) and str(ROOT) not in json.dumps(meta)


def test_every_key_the_findings_read_is_written(smoke):
    assert set(registry.STUDIES) == set(pipeline.NOTEBOOKS)
    for stem in pipeline.NOTEBOOKS:
        assert registry.missing_keys(_metrics(smoke, stem)) == [], stem


def test_results_md(smoke):
    text = (smoke / "RESULTS.md").read_text()
    assert "profile **smoke**" in text and "dataset **glyphs**" in text and "git commit" in text
    for stem in pipeline.NOTEBOOKS:
        assert f"| {stem} |" in text


def test_published_notebooks(smoke):
    """The executed notebooks, with outputs, are copied to ``<fig_dir>/notebooks/`` with the
    repository's paths made relative; each ends with its findings computed from the run."""
    for stem in pipeline.NOTEBOOKS:
        path = smoke / pipeline.PUBLISH_DIR / f"{stem}.ipynb"
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(c.execution_count is not None for c in code), f"{stem}: not executed"
        assert any("image/png" in o.get("data", {})
                   for c in code for o in c.outputs), f"{stem}: no figure in the published notebook"
        last = [c for c in code if c.get("id") == "findings-code"][0]
        text = "".join(o["data"]["text/markdown"] for o in last.outputs if "text/markdown" in o.get("data", {}))
        assert text.startswith("- ") and any(ch.isdigit() for ch in text), f"{stem}: {text!r}"
        assert str(ROOT) not in path.read_text()


def test_failing_cell_is_named(tmp_path):
    proc = _run(["--profile", "smoke", "--only", "01", "--set", "dataset=no-such-dataset",
                 "--fig-dir", str(tmp_path / "fig"), "--run-root", str(tmp_path / "runs")])
    assert proc.returncode != 0
    assert "01_data_pairing" in proc.stderr and "cell" in proc.stderr
    assert "no-such-dataset" in proc.stderr
    assert not (tmp_path / "fig" / "RESULTS.md").exists()
