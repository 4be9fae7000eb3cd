"""The small figure fixes: log-scale loss plots whose tick labels never overlap, and error maps on
a data-driven colour scale (the 99th percentile of the errors) that the figure states."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from galib.studies import plotting, training, traversals
from matplotlib.backends.backend_agg import FigureCanvasAgg



def _history(lo, hi, n=6):
    return [{"epoch": e + 1, "variant_fraction": 0.5, "mask_probs": [0.5],
             **{f"{s}_{k}": float(v * (1.1 if s == "val" else 1.0)) for s in ("train", "val")
                for k in ("loss", "recon", "inv", "const")}}
            for e, v in enumerate(np.geomspace(hi, lo, n))]


@pytest.mark.parametrize("lo, hi", [(0.021, 0.029), (0.0069, 0.0178), (0.01, 0.035), (0.02, 0.2),
                                    (1e-4, 1.0), (1e-7, 10.0)])
def test_log_tick_labels_do_not_overlap(lo, hi):
    fig = training.plot_loss_curves(_history(lo, hi))
    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        assert ax.get_yscale() == "log"
        y0, y1 = ax.get_ylim()
        labels = [t for t in ax.yaxis.get_ticklabels(which="both")
                  if t.get_visible() and t.get_text() and y0 <= t.get_position()[1] <= y1]
        assert len(labels) >= 2, [t.get_text() for t in labels]
        assert len({t.get_text() for t in labels}) == len(labels)          # no repeated label
        boxes = [t.get_window_extent(renderer) for t in labels]
        assert not any(a.overlaps(b) for a, b in itertools.combinations(boxes, 2)), \
            [t.get_text() for t in labels]


def test_error_maps_use_the_99th_percentile():
    torch.manual_seed(0)
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    pred = (x + 0.05 * torch.randn_like(x)).clamp(-1, 1)
    fig = training.plot_reconstructions(x, x, pred, list("abcd"))
    err = (pred - x).abs().numpy()
    expected = float(np.percentile(err, 99))
    images = [im for ax in fig.axes for im in ax.get_images() if im.get_cmap().name == plotting.ERR_CMAP]
    assert images and all(im.norm.vmax == pytest.approx(expected) for im in images)
    assert expected < 0.5                                       # not the old fixed 0–2 scale
    notes = [ax.get_title(loc="left") for ax in fig.axes]
    assert any("99th" in n and f"{expected:.2g}" in n for n in notes)
    assert plotting.error_scale(np.zeros(5)) == 1.0                  # all exact: a unit scale
    assert plotting.error_scale([0.0] * 200 + [3.0]) == 3.0         # p99 is 0: the maximum
    orbit = traversals.plot_orbit(x, pred, list("abcd"))
    assert any("99th" in ax.get_title(loc="left") for ax in orbit.axes)
