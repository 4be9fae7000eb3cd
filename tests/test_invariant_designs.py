"""Known answers for the designs of the invariant part (models.GroupLatentAutoencoder.zi_design)."""
import pytest
import torch
from torch import nn

from galib.datasets import ImageSet
from galib.evaluation.scores import evaluate_model
from galib.models import ZI_DESIGNS, GroupLatentAutoencoder, ModelOptions, build_model


def _pointwise(invariant, group="c4"):
    """A 1x1-conv encoder is exactly equivariant under rot90 (and flips): z(T_g x) = Phi_g z(x).
    The spectrum design's map gets random weights, so its |DFT| part is exercised too."""
    torch.manual_seed(0)
    model = GroupLatentAutoencoder(nn.Conv2d(1, 6, 1), nn.Conv2d(6, 1, 1), group, 6, zi_design=invariant)
    with torch.no_grad():
        model.mask.logits.copy_(torch.tensor([5.0, 5.0, -5.0, -5.0, -5.0, 5.0]))  # 3 invariant channels
        if invariant == "spectrum":
            model.spectrum.map.weight.normal_()
    return model.eval()


def _transforms(group):
    rots = [lambda x, k=k: torch.rot90(x, k, dims=(-2, -1)) for k in range(1, 4)]
    return rots if group == "c4" else rots + [lambda x, k=k: torch.rot90(x.flip(-1), k, dims=(-2, -1))
                                              for k in range(4)]


@pytest.mark.parametrize("invariant,group", [("pooled", "c4"), ("orbit", "c4"), ("spectrum", "c4"),
                                             ("spectrum", "d4")])
def test_code_is_exactly_invariant_for_an_exactly_equivariant_encoder(invariant, group):
    model = _pointwise(invariant, group)
    x = torch.randn(3, 1, 9, 9)
    with torch.no_grad():
        ref = model.split(model.encode(x), hard=True)[0]
        for t in _transforms(group):
            zi = model.split(model.encode(t(x)), hard=True)[0]
            assert torch.allclose(zi, ref, atol=1e-5)
        assert ref.abs().sum() > 0                        # invariant, and not by being zero


def test_spectrum_uses_the_cyclic_dft_for_c4_and_moments_for_d4():
    assert _pointwise("spectrum", "c4").spectrum.kind == "fourier"
    assert _pointwise("spectrum", "d4").spectrum.kind == "moments"
    # C4: the orbit mean and |X_1|, |X_2| per channel → 3 x 6 inputs to the map
    assert _pointwise("spectrum", "c4").spectrum.map.in_features == 18


def test_spectrum_starts_as_the_orbit_mean_and_its_magnitudes_are_the_dft():
    from galib.models import OrbitSpectrum
    spec = OrbitSpectrum(2, 4)
    orbit = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 4, 1, 1, 1).expand(1, 4, 2, 1, 1)
    inv = spec.invariants(orbit)[0, :, 0, 0, 0]          # mean, |X_1|/4, |X_2|/4 of 1, 2, 3, 4
    assert torch.allclose(inv, torch.tensor([2.5, abs(complex(-2, 2)) / 4, 0.5]))
    assert torch.allclose(spec(orbit), orbit.mean(1))     # the initial map reads the mean only
    x = torch.randn(2, 1, 9, 9)
    a, b = _pointwise("orbit"), _pointwise("spectrum")
    with torch.no_grad():
        b.spectrum.map.weight.zero_()
        b.spectrum.map.weight[:, :6] = torch.eye(6)
        b.encoder.load_state_dict(a.encoder.state_dict())
        assert torch.allclose(b.split(b.encode(x), hard=True)[0], a.split(a.encode(x), hard=True)[0],
                              atol=1e-6)


def test_spectrum_kind_is_checked():
    from galib.models import OrbitSpectrum
    with pytest.raises(ValueError, match="unknown orbit spectrum kind 'sorted'"):
        OrbitSpectrum(4, 4, "sorted")


@pytest.mark.parametrize("group", ["c4", "d4"])
def test_the_paper_code_is_not_invariant_there(group):
    model = _pointwise("paper", group)
    x = torch.randn(3, 1, 9, 9)
    with torch.no_grad():
        a = model.split(model.encode(x), hard=True)[0]
        b = model.split(model.encode(torch.rot90(x, 1, dims=(-2, -1))), hard=True)[0]
    assert (a - b).abs().max() > 1e-2


@pytest.mark.parametrize("invariant", ZI_DESIGNS)
def test_invariance_error_is_zero_for_inputs_whose_orbit_is_constant(invariant):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(16, 28, 28, generator=g)
    sym = sum(torch.rot90(x, k, dims=(-2, -1)) for k in range(4)) / 4        # rot90-symmetric
    data = ImageSet((sym * 255).round().to(torch.uint8), torch.arange(16) % 4)
    torch.manual_seed(0)
    model = build_model("c4", 8, options=ModelOptions(zi_design=invariant))
    scores = evaluate_model(model, data)
    assert scores["invariance_error_centred"] == 0.0 and scores["invariance_error"] == 0.0


def test_unknown_design_is_named():
    with pytest.raises(ValueError, match="unknown zi_design 'bogus'"):
        build_model("c4", 8, options=ModelOptions(zi_design="bogus"))


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
    with pytest.raises(ValueError, match="unknown inv_form 'l1'"):
        invariance_loss(a, b, "l1")
