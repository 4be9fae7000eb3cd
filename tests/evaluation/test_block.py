"""Known answers for the blocked experiment's measures (galib.evaluation.block)."""
import math

import pytest
import torch

from galib.datasets import DataSplits
from galib.datasets.blocked import Occluder, blocked
from galib.evaluation.block import block_scores, block_share, occluder_region
from galib.models import build_model
from tests.synthetic import synthetic_splits


def test_block_share_known_answers():
    assert block_share(0.1, 0.1, 0.9) == 1.0          # dropping z_v costs nothing: all from z_i
    assert block_share(0.1, 0.9, 0.1) == 0.0          # dropping z_i costs nothing: all from z_v
    assert block_share(0.1, 0.5, 0.5) == 0.5
    assert block_share(0.1, 0.05, 0.7) == 1.0         # dropping z_v even helps: no cost
    assert math.isnan(block_share(0.1, 0.1, 0.1))     # neither part matters


def test_occluder_region_is_the_block():
    r = Occluder(top=3, left=17, size=8).region(28, 28)
    assert r.sum() == 64 and r[3:11, 17:25].all() and not r[:3].any()
    with pytest.raises(ValueError, match="blocked"):
        occluder_region(synthetic_splits().test)


def _model(mask_variant):
    torch.manual_seed(0)
    return build_model("c4", 8, mask="manual", mask_variant=mask_variant).eval()


def test_block_scores_known_answers_on_the_parts():
    data = blocked(synthetic_splits(n_test=64))
    torch.manual_seed(0)
    # every channel invariant: z_v = 0, so decoding z_i alone is the full prediction
    s = block_scores(_model(0), data.test, n_images=64)
    assert s["block_mse_zi_only"] == pytest.approx(s["recon_mse_block"])
    assert math.isnan(s["block_share_zi"]) or s["block_share_zi"] == 1.0
    assert math.isnan(s["image_share_zi"]) or s["image_share_zi"] == 1.0
    assert s["block_channels_invariant"] in (1.0,) or math.isnan(s["block_channels_invariant"])
    # every channel variant: z_i = 0, so decoding Phi_g z_v alone is the full prediction
    s = block_scores(_model(8), data.test, n_images=64)
    assert s["block_mse_zv_only"] == pytest.approx(s["recon_mse_block"])
    assert math.isnan(s["block_share_zi"]) or s["block_share_zi"] == 0.0
    assert s["block_channels_invariant"] == 0.0 or math.isnan(s["block_channels_invariant"])
    assert len(s["block_channel_rise"]) == 8 and s["n_images"] == 64
    assert s["recon_mse_block"] >= 0 and s["recon_mse_outside"] >= 0


def test_block_scores_need_blocked_data():
    with pytest.raises(ValueError, match="blocked"):
        block_scores(_model(4), synthetic_splits().test)
    assert isinstance(blocked(synthetic_splits()), DataSplits)
