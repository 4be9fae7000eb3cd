"""Fast checks of what the notebooks call: explore, analysis, notebook_utils and the pipeline's
bookkeeping, on synthetic data and an untrained model."""
from __future__ import annotations

import json
import math

import pytest
import torch
from matplotlib.figure import Figure

from galib import analysis, explore as ex, notebook_utils as nbu, pipeline, viz
from galib.data import ImageSet
from galib.models import build_model


@pytest.fixture(scope="module")
def images():
    gen = torch.Generator().manual_seed(0)
    return ImageSet(torch.randint(0, 256, (40, 28, 28), generator=gen, dtype=torch.uint8),
                    torch.arange(40) % 10)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model("c4", latent_channels=8).eval()


# ----------------------------------------------------------------------------- explore
def test_display_elements():
    els, names = ex.display_elements("c4")
    assert els.tolist() == [0, 1, 2, 3] and names == ["0°", "90°", "180°", "270°"]
    els, names = ex.display_elements("translate", max_finite=12)      # 49 elements, thinned
    assert len(els) == len(names) == 12 and els[0] == 0 and els[-1] == 48
    els, names = ex.display_elements("so2", n=6)
    assert els.dtype.is_floating_point and len(names) == 6


def test_pairs_and_counts(images):
    p = ex.pair_examples(images, "c4", per_element=2, seed=1)
    assert p["x"].shape == p["gx"].shape == (4, 2, 1, 28, 28)
    torch.testing.assert_close(p["gx"][1, 0], torch.rot90(p["x"][1, 0], 1, dims=(-2, -1)))
    c = ex.pairing_counts(images, "c4", batch_size=16, seed=0)
    assert sum(c["class_counts"]) == sum(c["element_counts"]) == c["n_pairs"] == 40
    s = ex.pairing_summary(c)
    assert s["class_imbalance"] == 1.0 and s["element_max_rel_dev"] >= 0
    assert ex.roundtrip_error(images, "c4") == 0.0


def test_latent_views(images, model):
    els, _ = ex.display_elements("c4")
    r = ex.transformed_reconstructions(model, images, torch.arange(4), els)
    assert r["x"].shape == r["gx"].shape == r["recon"].shape == (4, 1, 28, 28)
    o = ex.orbit(model, images, 3, els)
    torch.testing.assert_close(o["truth"][2], torch.rot90(o["truth"][0], 2, dims=(-2, -1)))
    xa, xb = ex.swap_examples(images, "c4", n=3)
    s = ex.latent_swap(model, xa, xb)
    assert s["ab"].shape == s["ba"].shape == (3, 1, 28, 28)
    x = ex.images_of(images, slice(0, 8))
    inv = ex.invariant_channels(model, x)
    assert set(inv) == set((model.hard_mask() == 0).nonzero().flatten().tolist())
    t = ex.channel_traversal(model, x[:1], inv[:2], [0.0, 1.0, 2.0])
    assert t.shape == (len(inv[:2]), 3, 1, 28, 28)
    maps = ex.magnitude_maps(model, x, torch.ones(8, dtype=torch.long))
    assert set(maps) == {"|z|", "|z_v|", "|z_i|", "|Φ_g z_v|"}
    assert all(m.shape == (7, 7) for m in maps.values())
    # |z|^2 = |z_v|^2 + |z_i|^2 location-wise, so the mean norms obey the triangle inequality
    assert bool((maps["|z|"] <= maps["|z_v|"] + maps["|z_i|"] + 1e-5).all())
    errs = ex.orbit_errors(model, images, torch.arange(4), els, ["a", "b", "c", "d"])
    assert list(errs) == ["a", "b", "c", "d"] and all(math.isfinite(v) for v in errs.values())
    assert 0.0 <= ex.latent_energy_share(model, x) <= 1.0


# ----------------------------------------------------------------------------- analysis
def _cm_with(a, b, rate=0.5, n=100, k=10):
    cm = torch.eye(k, dtype=torch.long) * n
    cm[a, a] = cm[b, b] = int(n * (1 - rate))
    cm[a, b] = cm[b, a] = int(n * rate)
    return cm


def test_confusion_helpers():
    y = torch.tensor([0, 0, 1, 2])
    cm = analysis.confusion_matrix(y, torch.tensor([0, 1, 1, 2]), 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]
    cm = _cm_with(6, 9)
    assert analysis.top_confusions(cm, 2)[0][2] == pytest.approx(0.5)
    assert analysis.pair_confusion(cm, 6, 9) == pytest.approx(0.5)
    names = [str(i) for i in range(10)]
    assert "6↔9 is among them" in analysis.describe_confusions(cm, names, digits=True)
    text = analysis.describe_confusions(_cm_with(3, 5), names, digits=True)
    assert "6↔9 is not among" in text and "3→5" in text
    assert "6↔9" not in analysis.describe_confusions(_cm_with(3, 5), names, digits=False)
    assert analysis.describe_confusions(torch.eye(3) * 5, names[:3], True).startswith("No class")


def test_best_invariant_and_probe_dict():
    rows = [{"name": "pixels", "label": "pixels", "probe/pixels/a": 0.9, "probe/pixels/b": 0.3},
            {"name": "ald", "label": "ALD", "probe/z_i/b": 0.6, "probe/orbit/b": 0.8,
             "probe/orbit/a": 0.85}]
    assert analysis.best_invariant(rows) == ("ald", "orbit", 0.8)
    assert analysis.best_invariant(rows[:1]) is None
    d = analysis.probe_dict(rows)
    assert d["pixels"]["pixels"] == {"a": 0.9, "b": 0.3}
    assert d["ALD"]["orbit inv. of z_v"] == {"b": 0.8, "a": 0.85}
    md = analysis.sweep_table_md([{"tau": 0.5, "variant_fraction": 0.5, "recon_mse": 0.1,
                                   "energy_share_zi": 0.3, "probe_b_zi": math.nan,
                                   "probe_b_zv_orbit": 0.7}])
    assert "| 0.5 | 0.50 | 0.1000 | 0.30 | — | 0.700 |" in md


# ----------------------------------------------------------------------------- notebook_utils
def test_collect_params_and_config():
    before = {"x"}
    ns = {"x": 1, "tau": 0.3, "epochs": 2, "_hidden": 1, "fn": print, "max_train": None}
    params = nbu.collect_params(ns, before)
    assert params == {"tau": 0.3, "epochs": 2, "max_train": None}
    cfg = nbu.train_config({**params, "fig_dir": "f", "interactive": False})
    assert cfg.tau == 0.3 and cfg.epochs == 2
    with pytest.raises(ValueError):
        nbu.train_config({"tau": 1.5})


def test_metrics_file(tmp_path):
    m = {"a": torch.tensor([1.0, 2.0]), "b": float("nan"), "c": (1, 2), "p": tmp_path}
    path = nbu.write_metrics(m, tmp_path, "stem")
    back = json.loads(path.read_text())
    assert back["a"] == [1.0, 2.0] and math.isnan(back["b"]) and back["c"] == [1, 2]
    assert [p.name for p in path.parent.iterdir()] == ["metrics.json"]   # no temporary left
    flat = nbu.flat_scalars({"recon_mse": 0.1, "recon_mse/90°": 0.2, "n": 3, "names": ["a"],
                             "sub": {"x": 1.5}, "per_element": {"0": 1.0}})
    assert flat == {"recon_mse": 0.1, "n": 3, "sub.x": 1.5}


def test_explore_static_fallback(tmp_path):
    calls = []

    def draw(index=0, name=None):
        calls.append((index, name))
        return viz.plot_magnitude_maps({"|z|": torch.rand(7, 7)})

    fig = nbu.explore(draw, False, tmp_path / "x.png", index=(0, 9, 3),
                      name=[("first", "a"), ("second", "b")])
    assert isinstance(fig, Figure) and (tmp_path / "x.png").is_file()
    assert calls == [(3, "a")]                                   # drawn once, from the defaults
    # outside a live kernel, interactive=True falls back to the same static figure
    assert isinstance(nbu.explore(draw, True, None, index=(0, 9, 1)), Figure)
    assert nbu.default_values({"a": (0.0, 1.0, 0.1, 0.5), "b": ["x", "y"]}) == {"a": 0.5, "b": "x"}


# ----------------------------------------------------------------------------- pipeline bookkeeping
def test_write_results(tmp_path):
    for stem, summ in (("01_data_pairing", {"n_train": 5}), ("02_training", {"recon_mse": 0.0123456})):
        nbu.write_metrics({"dataset": "glyphs", "summary": summ}, tmp_path, stem)
    out = pipeline.write_results(tmp_path, "smoke", {"01_data_pairing": 1.0, "02_training": 2.5}, "abc")
    text = out.read_text()
    assert "profile **smoke**" in text and "dataset **glyphs**" in text and "`abc`" in text
    assert "| 02_training | recon_mse | 0.01235 |" in text and "| total | 4 |" in text


def test_parse_set():
    assert pipeline._parse_set(["epochs=3", "dataset=mnist", "taus=[0.1, 0.2]", "max_train=None"]) == \
        {"epochs": 3, "dataset": "mnist", "taus": [0.1, 0.2], "max_train": None}
    with pytest.raises(pipeline.PipelineError):
        pipeline._parse_set(["epochs"])
