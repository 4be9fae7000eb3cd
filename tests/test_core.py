"""Known-answer tests for the ALD mask, the losses and the model (C4 itself: tests/groups)."""
import pytest
import torch
from torch import nn

from galib.groups import get_group
from galib.losses import LossOptions, ald_losses
from galib.models import ALDMask, GroupLatentAutoencoder, ModelOptions, build_model


def equivariant_encoder(channels=8):
    """Non-overlapping 4x4 average pooling then a 1x1 conv: exactly rot90-equivariant."""
    return nn.Sequential(nn.AvgPool2d(4), nn.Conv2d(1, channels, 1))


def equivariant_decoder(channels=8):
    return nn.Sequential(nn.Upsample(scale_factor=4), nn.Conv2d(channels, 1, 1), nn.Tanh())


def test_exactly_equivariant_encoder_has_zero_consistency_loss():
    torch.manual_seed(0)
    c4 = get_group("c4")
    model = GroupLatentAutoencoder(equivariant_encoder(), equivariant_decoder(), c4, 8, tau=0.5)
    x = torch.randn(16, 1, 28, 28)
    g = c4.sample(16, torch.Generator().manual_seed(1))
    terms = ald_losses(model, x, c4.act_image(x, g), g)
    assert terms["const"].item() < 1e-12
    # the encoder commutes with the action: E(T_g x) == Phi_g E(x)
    assert torch.allclose(model.encode(c4.act_image(x, g)), c4.act_latent(model.encode(x), g), atol=1e-6)


def test_ste_forward_is_binary_and_gradient_reaches_logits():
    mask = ALDMask(32, tau=0.5)
    m = mask()
    assert set(m.detach().unique().tolist()) <= {0.0, 1.0}
    (m * torch.arange(32.0)).sum().backward()
    assert mask.logits.grad is not None and mask.logits.grad.abs().sum() > 0
    p = torch.sigmoid(mask.logits.detach())
    assert torch.allclose(mask.logits.grad, torch.arange(32.0) * p * (1 - p))


@pytest.mark.parametrize("tau", [0.2, 0.5, 0.8])
def test_tau_sets_the_hard_mask(tau):
    mask = ALDMask(6, tau=tau, init_logits=torch.tensor([-3.0, -1.0, -0.1, 0.1, 1.0, 3.0]))
    expected = (torch.sigmoid(mask.logits) > tau).float()
    assert torch.equal(mask.hard(), expected)
    assert torch.equal(mask().detach(), expected)


def test_lower_tau_makes_more_channels_variant():
    logits = torch.linspace(-3, 3, 64)
    counts = [ALDMask(64, tau, init_logits=logits).hard().sum().item() for tau in (0.1, 0.5, 0.9)]
    assert counts[0] > counts[1] > counts[2]


@pytest.mark.parametrize("tau", [0.0, 1.0, -0.1, 1.5])
def test_tau_outside_open_interval_is_rejected(tau):
    with pytest.raises(ValueError, match="tau"):
        ALDMask(4, tau=tau)


def test_split_sums_to_z_and_is_disjoint():
    model = build_model("c4", latent_channels=16)
    z = torch.randn(4, 16, 7, 7)
    z_i, z_v = model.split(z)
    assert torch.allclose(z_i + z_v, z)
    assert (z_i * z_v).abs().max() == 0


def test_stop_gradient_no_gradient_through_transformed_branch():
    torch.manual_seed(0)
    c4 = get_group("c4")
    model = build_model(c4, latent_channels=8)
    g = torch.ones(4, dtype=torch.long)
    x = torch.randn(4, 1, 28, 28)
    gx = c4.act_image(x, g).requires_grad_(True)
    terms = ald_losses(model, x, gx, g)
    (terms["inv"] + terms["const"]).backward()
    assert gx.grad is None                          # no path from the transformed image
    # the encoder still learns through the x branch
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.parameters())


def test_sg_branch_matches_detached_targets():
    """L_inv equals MSE(z_i(x), z_i(T_g x)) computed by hand with the hard mask."""
    torch.manual_seed(0)
    c4 = get_group("c4")
    model = build_model(c4, latent_channels=8)
    x = torch.randn(4, 1, 28, 28)
    g = torch.tensor([1, 2, 3, 0])
    gx = c4.act_image(x, g)
    terms = ald_losses(model, x, gx, g, LossOptions(lambda_inv=2.0, lambda_const=3.0))
    m = model.hard_mask().view(1, -1, 1, 1)
    z, zt = model.encode(x), model.encode(gx)
    inv = ((1 - m) * z - (1 - m) * zt).pow(2).mean()
    const = (c4.act_latent(m * z, g) - m * zt).pow(2).mean()
    assert torch.allclose(terms["inv"], inv, atol=1e-6)
    assert torch.allclose(terms["const"], const, atol=1e-6)
    assert torch.allclose(terms["loss"], terms["recon"] + 2 * inv + 3 * const, atol=1e-6)


def test_paper_model_shapes_and_range():
    model = build_model("c4", latent_channels=64)
    x = torch.rand(2, 1, 28, 28) * 2 - 1
    out = model(x, torch.tensor([1, 3]))
    assert out["z"].shape == (2, 64, 7, 7)
    assert out["recon"].shape == x.shape and out["recon"].abs().max() <= 1
    n_params = sum(p.numel() for p in model.parameters())
    # 2x(1*32*16 + 32) + 2x(32*64*16) + 64 + 1 + mask 64
    assert n_params == (512 + 32) + (32 * 64 * 16 + 64) + (64 * 32 * 16 + 32) + (32 * 16 + 1) + 64


def test_manual_mask_is_first_half_and_frozen():
    model = build_model("c4", latent_channels=10, options=ModelOptions(mask="manual"))
    assert model.hard_mask().tolist() == [1.0] * 5 + [0.0] * 5
    assert not model.mask.logits.requires_grad


def test_unknown_group_and_nonsquare_latent_are_clear_errors():
    with pytest.raises(ValueError, match="unknown group 'c5'"):
        get_group("c5")
    c4 = get_group("c4")
    with pytest.raises(ValueError, match="square"):
        c4.act_latent(torch.randn(1, 4, 7, 6), torch.zeros(1, dtype=torch.long))
    with pytest.raises(ValueError, match="one group element per sample"):
        c4.act_latent(torch.randn(2, 4, 7, 7), torch.zeros(3, dtype=torch.long))


def test_fixed_masks_have_exactly_the_requested_size():
    import pytest
    from galib.models import fixed_mask_channels
    for n in (0, 3, 8):
        m = build_model("c4", 8, options=ModelOptions(mask="random", mask_variant=n, mask_seed=5))
        assert int(m.hard_mask().sum()) == n and not m.mask.logits.requires_grad
    a = fixed_mask_channels("random", 64, 20, seed=1)
    assert len(set(a.tolist())) == 20 and not torch.equal(a, fixed_mask_channels("random", 64, 20, seed=2))
    assert torch.equal(a, fixed_mask_channels("random", 64, 20, seed=1))      # a draw is reproducible
    assert fixed_mask_channels("manual", 8).tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="mask_variant"):
        build_model("c4", 8, options=ModelOptions(mask="random", mask_variant=9))
    with pytest.raises(ValueError, match="unknown mask"):
        build_model("c4", 8, options=ModelOptions(mask="bogus"))
