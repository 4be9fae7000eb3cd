"""Known answers for the designs of the invariant part (models.GroupLatentAutoencoder.invariant)."""
import pytest
import torch
from torch import nn

from galib.datasets import ImageSet
from galib.evaluation.scores import evaluate_model
from galib.models import INVARIANTS, GroupLatentAutoencoder, build_model


def _pointwise(invariant):
    """A 1x1-conv encoder is exactly equivariant under rot90: z(T_g x) = Phi_g z(x)."""
    torch.manual_seed(0)
    model = GroupLatentAutoencoder(nn.Conv2d(1, 6, 1), nn.Conv2d(6, 1, 1), "c4", 6, invariant=invariant)
    with torch.no_grad():
        model.mask.logits.copy_(torch.tensor([5.0, 5.0, -5.0, -5.0, -5.0, 5.0]))  # 3 invariant channels
    return model.eval()


@pytest.mark.parametrize("invariant", ["pooled", "orbit"])
def test_code_is_exactly_invariant_for_an_exactly_equivariant_encoder(invariant):
    model = _pointwise(invariant)
    x = torch.randn(3, 1, 9, 9)
    with torch.no_grad():
        ref = model.split(model.encode(x), hard=True)[0]
        for k in range(1, 4):
            zi = model.split(model.encode(torch.rot90(x, k, dims=(-2, -1))), hard=True)[0]
            assert torch.allclose(zi, ref, atol=1e-6)
        assert ref.abs().sum() > 0                        # invariant, and not by being zero


def test_the_paper_code_is_not_invariant_there():
    model = _pointwise("paper")
    x = torch.randn(3, 1, 9, 9)
    with torch.no_grad():
        a = model.split(model.encode(x), hard=True)[0]
        b = model.split(model.encode(torch.rot90(x, 1, dims=(-2, -1))), hard=True)[0]
    assert (a - b).abs().max() > 1e-2


@pytest.mark.parametrize("invariant", INVARIANTS)
def test_invariance_error_is_zero_for_inputs_whose_orbit_is_constant(invariant):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(16, 28, 28, generator=g)
    sym = sum(torch.rot90(x, k, dims=(-2, -1)) for k in range(4)) / 4        # rot90-symmetric
    data = ImageSet((sym * 255).round().to(torch.uint8), torch.arange(16) % 4)
    torch.manual_seed(0)
    model = build_model("c4", 8, invariant=invariant)
    scores = evaluate_model(model, data)
    assert scores["invariance_error_centred"] == 0.0 and scores["invariance_error"] == 0.0


def test_unknown_design_is_named():
    with pytest.raises(ValueError, match="unknown invariant design 'bogus'"):
        build_model("c4", 8, invariant="bogus")


def test_normalised_invariance_loss_cannot_be_met_by_shrinking():
    from galib.losses import invariance_loss
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(16, 4, 3, 3, generator=g), torch.randn(16, 4, 3, 3, generator=g)
    base = invariance_loss(a, b, "normalised")
    assert torch.allclose(invariance_loss(1e-3 * a, 1e-3 * b, "normalised"), base, rtol=1e-4)
    assert invariance_loss(1e-3 * a, 1e-3 * b, "mse") < 1e-5 * invariance_loss(a, b, "mse")
    offset = b + 5.0                                      # a constant offset is not invariance either
    assert invariance_loss(b, offset, "normalised") > 1.0
    assert invariance_loss(a, a, "normalised") == 0.0
    with pytest.raises(ValueError, match="unknown invariance loss 'l1'"):
        invariance_loss(a, b, "l1")
