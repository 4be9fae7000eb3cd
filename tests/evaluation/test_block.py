"""Known answers for the blocked experiment's measures (galib.evaluation.block), on constructed
models whose block channel is known, at both ends (block in z_i, block in z_v)."""
import math

import pytest
import torch
from torch import nn

from galib.datasets import DataSplits
from galib.datasets.occluded import Occluder, blocked
from galib.evaluation.block import block_pictures, block_scores, block_share, occluder_region
from galib.models import ALDMask, GroupLatentAutoencoder, ModelOptions, build_model
from tests.synthetic import synthetic_splits

OCC = Occluder(top=3, left=17, size=8, value=1.0)                   # the bright block
REGION = OCC.region(28, 28)


def test_block_share_known_answers():
    # blank decode error 1, full model 0: the gain 1 is shared by z_i and z_v
    assert block_share(0.0, 0.0, 1.0, 1.0) == 1.0      # z_i alone draws it, z_v alone draws nothing
    assert block_share(0.0, 1.0, 0.0, 1.0) == 0.0      # the other way round
    assert block_share(0.0, 0.5, 0.5, 1.0) == 0.5
    assert block_share(0.0, 0.0, 1.5, 1.0) == 1.25     # z_v alone is worse than blank: signed, no clamp
    assert block_share(0.2, 0.1, 1.0, 1.0) == pytest.approx(1.0625)   # dropping z_v helps: > 1
    assert math.isnan(block_share(0.5, 0.5, 0.5, 0.5))  # no gain over a blank decode: undefined


def test_occluder_region_and_styles():
    r = Occluder(top=3, left=17, size=8).region(28, 28)
    assert r.sum() == 64 and r[3:11, 17:25].all() and not r[:3].any()
    with pytest.raises(ValueError, match="blocked"):
        occluder_region(synthetic_splits().test)
    checker = Occluder.default(28, 28, "checker").fill()
    assert checker.shape == (8, 8) and checker.mean() == 0 and set(checker.unique().tolist()) == {-1.0, 1.0}
    assert Occluder.default(28, 28, "bright").fill().eq(1.0).all()
    assert Occluder.default(28, 28) == Occluder(3, 17, 8, 0.0)          # the paper's grey
    with pytest.raises(ValueError, match="style"):
        Occluder.default(28, 28, "purple")


class BlockEncoder(nn.Module):
    """Channel 0: the mean of the image over the block region, as a constant map (rotating it
    changes nothing); channels 1..: 4x4 average pooling + 1x1 conv (exactly C4-equivariant)."""

    def __init__(self, channels):
        super().__init__()
        self.content = nn.Sequential(nn.AvgPool2d(4), nn.Conv2d(1, channels - 1, 1))
        nn.init.ones_(self.content[1].weight)                              # every channel: the pooled image
        nn.init.zeros_(self.content[1].bias)

    def forward(self, x):
        block = x[..., REGION].mean(-1).view(-1, 1, 1, 1).expand(-1, 1, 7, 7)
        return torch.cat([block, self.content(x)], 1)                      # (B, C, 7, 7)


class BlockDecoder(nn.Module):
    """Draws the content outside the block region and the (spatial mean of) channel 0 inside it:
    only channel 0 draws the block."""

    def __init__(self, channels):
        super().__init__()
        self.content = nn.Sequential(nn.Conv2d(channels - 1, 1, 1), nn.Upsample(scale_factor=4))
        nn.init.constant_(self.content[0].weight, 1.0 / (channels - 1))   # their mean, upsampled
        nn.init.zeros_(self.content[0].bias)

    def forward(self, z):
        out = self.content(z[:, 1:])                                      # (B, 1, 28, 28)
        block = z[:, :1].mean((2, 3), keepdim=True).expand_as(out)
        return torch.where(REGION.to(z.device), block, out)


def constructed(variant, channels=6):
    torch.manual_seed(0)
    logits = torch.full((channels,), -10.0)
    logits[list(variant)] = 10.0
    return GroupLatentAutoencoder(BlockEncoder(channels), BlockDecoder(channels), "c4", channels,
                                  mask=ALDMask(channels, trainable=False, init_logits=logits)).eval()


def _data(n=48, style_occluder=OCC):
    return blocked(synthetic_splits(n_test=n), occluder=style_occluder).test


def _finite(s):
    for k, v in s.items():
        for x in (v if isinstance(v, list) else [v]):
            assert isinstance(x, (int, float)) and math.isfinite(x), (k, v)


@pytest.mark.parametrize("variant,where", [((1, 2), "z_i"), ((0, 1, 2), "z_v")])
def test_block_scores_on_a_constructed_model(variant, where):
    s = block_scores(constructed(variant), _data(), n_images=48, batch_size=20)
    _finite(s)                                                            # no nan anywhere
    one = 1.0 if where == "z_i" else 0.0
    assert s["recon_mse_block"] == pytest.approx(0.0, abs=1e-10)         # the block is drawn exactly
    assert s["block_gain"] == pytest.approx(1.0) and s["block_mse_blank"] == pytest.approx(1.0)
    assert s["block_share_zi"] == pytest.approx(one, abs=1e-9)
    assert s["block_gain_zi"] == pytest.approx(one, abs=1e-9)
    assert s["block_gain_zv"] == pytest.approx(1 - one, abs=1e-9)
    assert s["block_channels_invariant"] == pytest.approx(one, abs=1e-9)
    assert s["block_channels_invariant_gain"] == pytest.approx(one, abs=1e-9)
    assert s["block_channel_rise"][0] == pytest.approx(1.0)             # only channel 0 matters
    assert all(abs(r) < 1e-9 for r in s["block_channel_rise"][1:])
    assert s["block_swap_zi"] == pytest.approx(one, abs=1e-6)            # the block moves with z_i
    assert s["block_swap_zv"] == pytest.approx(1 - one, abs=1e-6)        # ... or with z_v
    assert s["block_swap_n"] > 40 and s["n_images"] == 48


@pytest.mark.parametrize("variant,share", [((), 1.0), (tuple(range(6)), 0.0)])
def test_all_invariant_and_all_variant_models_read_the_ends(variant, share):
    s = block_scores(constructed(variant), _data(32), n_images=32)
    _finite(s)                                                            # finite at both ends
    assert s["block_share_zi"] == share and s["image_share_zi"] == share
    assert s["block_channels_invariant"] == share and s["block_swap_zi"] == share
    assert s["block_gain"] == pytest.approx(1.0)


def test_constructed_model_outside_the_block_is_shared():
    s = block_scores(constructed((1, 2)), _data(32), n_images=32)      # 3 of 5 content channels in z_i
    assert 0.2 < s["image_share_zi"] < 0.8 and s["image_gain"] > 0.05    # the content: both parts


@pytest.mark.parametrize("n_variant", [0, 8])
def test_paper_model_parts_vanish_exactly_when_a_side_is_empty(n_variant):
    torch.manual_seed(0)
    model = build_model("c4", 8, options=ModelOptions(mask="manual", mask_variant=n_variant)).eval()
    s = block_scores(model, _data(16), n_images=16)
    empty = "block_gain_zv" if n_variant == 0 else "block_gain_zi"
    assert s[empty] == pytest.approx(0.0, abs=1e-9) and math.isfinite(s["block_gain"])


def test_grey_block_is_not_told_from_a_blank_decode():
    """The reviewer's point: on the paper's grey block the constructed model's blank decode
    already draws the block exactly, so there is no gain to share (nan, with the gain saying so)."""
    s = block_scores(constructed((1, 2)), _data(16, Occluder(3, 17, 8, 0.0)), n_images=16)
    assert s["block_mse_blank"] == 0.0 and s["recon_mse_block"] == 0.0
    assert math.isnan(s["block_share_zi"]) and math.isnan(s["block_gain"])


def test_block_pictures_and_need_for_blocked_data():
    pics = block_pictures(constructed((1, 2)), _data(8), n=4)
    assert set(pics) == {"gx", "full", "zi", "zv", "blank"} and pics["full"].shape == (4, 1, 28, 28)
    assert torch.allclose(pics["full"][..., REGION], torch.ones(4, 1, 64))
    with pytest.raises(ValueError, match="blocked"):
        block_scores(constructed((1,)), synthetic_splits().test)
    assert isinstance(blocked(synthetic_splits()), DataSplits)
