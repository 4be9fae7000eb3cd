"""Every figure function returns a Figure and writes a PNG into the directory it is given."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from galib.studies import pairing, plotting, probes, tau, training, traversals
from matplotlib.figure import Figure



def _imgs(*shape):
    return torch.rand(*shape) * 2 - 1


def _history(epochs=3, channels=8):
    rows = []
    for e in range(epochs):
        p = np.clip(np.linspace(0.1, 0.9, channels) + 0.05 * e, 0, 1).tolist()
        rows.append({"epoch": e + 1, "variant_fraction": float(np.mean(np.array(p) > 0.5)),
                     "mask_probs": p, **{f"{s}_{k}": 1.0 / (e + 1) for s in ("train", "val")
                                          for k in ("loss", "recon", "inv", "const")}})
    return rows


def _check(fig, path):
    assert isinstance(fig, Figure)
    assert path.is_file() and path.stat().st_size > 1000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


CASES = {
    "pairs": lambda p: pairing.plot_pair_grid(_imgs(4, 2, 1, 28, 28), _imgs(4, 2, 1, 28, 28),
                                          ["0°", "90°", "180°", "270°"], p, "glyphs · c4"),
    "counts": lambda p: pairing.plot_counts([50] * 10, [120, 130, 125, 125], [str(i) for i in range(10)],
                                        ["0°", "90°", "180°", "270°"], p, "t"),
    "loss": lambda p: training.plot_loss_curves(_history(), p, "t"),
    "mask": lambda p: training.plot_mask_evolution(_history(), 0.5, p, "t"),
    "mask_one_epoch": lambda p: training.plot_mask_evolution(_history(1), 0.5, p, "t"),
    "recon": lambda p: training.plot_reconstructions(_imgs(4, 1, 28, 28), _imgs(4, 1, 28, 28),
                                                _imgs(4, 1, 28, 28), list("abcd"), p, "t"),
    "recon_3d": lambda p: training.plot_reconstructions(_imgs(3, 1, 8, 8, 8), _imgs(3, 1, 8, 8, 8),
                                                   _imgs(3, 1, 8, 8, 8), None, p, "t"),
    "tau_sweep": lambda p: tau.plot_tau_sweep(
        [{"tau": t, "variant_fraction": 1 - t, "recon_mse": 0.1 * t, "energy_share_zi": t,
          "probe_b_zi": 0.5 + 0.3 * t, "probe_b_zv_orbit": 0.6} for t in (0.1, 0.5, 0.9)],
        p, "t", chance=0.1),
    "final_probs": lambda p: tau.plot_final_mask_probs([0.3, 0.7], [np.random.rand(16)] * 2, p, "t"),
    "orbit": lambda p: traversals.plot_orbit(_imgs(4, 1, 28, 28), _imgs(4, 1, 28, 28), list("abcd"), p, "t"),
    "orbit_3d": lambda p: traversals.plot_orbit(_imgs(5, 1, 6, 6, 6), _imgs(5, 1, 6, 6, 6), list("abcde"), p),
    "swap": lambda p: traversals.plot_swap(*[_imgs(3, 1, 28, 28) for _ in range(4)], p, "t"),
    "traversal": lambda p: traversals.plot_traversal(_imgs(2, 5, 1, 28, 28), [0, 0.5, 1, 2, 3], [3, 7], p),
    "maps": lambda p: traversals.plot_magnitude_maps({"|z|": torch.rand(7, 7), "|z_v|": torch.rand(7, 7)}, p),
    "maps_3d": lambda p: traversals.plot_magnitude_maps({"|z|": torch.rand(4, 4, 4)}, p),
    "probe_bars": lambda p: probes.plot_probe_bars(
        {"ald": {"z_i": {"a": 0.9, "b": 0.8, "c": 0.85}}, "pixels": {"x": {"a": 0.9, "b": 0.3}}},
        p, "t", chance=0.1),
    "confusion": lambda p: probes.plot_confusion(np.eye(10) * 50 + 1, [str(i) for i in range(10)], p, "t"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_figure_written(name, tmp_path):
    path = tmp_path / "sub" / f"{name}.png"
    _check(CASES[name](path), path)


def test_no_path_means_no_file(tmp_path):
    fig = training.plot_loss_curves(_history(), None)
    assert isinstance(fig, Figure)
    assert not any(tmp_path.iterdir())


def test_middle_slice_and_images():
    vol = torch.arange(2 * 1 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 1, 3, 4, 4)
    np.testing.assert_array_equal(plotting.as_images(vol), vol[:, 0, 1].numpy())
    assert plotting.as_images(torch.zeros(5, 1, 28, 28)).shape == (5, 28, 28)
    assert plotting.middle_slice(torch.zeros(6, 7, 7)).shape == (7, 7)
    assert plotting.middle_slice(torch.zeros(7, 7)).shape == (7, 7)
    with pytest.raises(ValueError):
        plotting.as_images(torch.zeros(28, 28))


def test_tag():
    assert plotting.tag("mnist", "c4", 0.5) == "mnist · c4 · τ = 0.5"
    assert plotting.tag("glyphs") == "glyphs"
