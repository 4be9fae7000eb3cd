"""Known-answer tests for so2: the resampling action and the learned one (galib.groups.so2)."""
import math

import pytest
import torch

from galib.groups import LearnedSO2Action, get_group, homomorphism_error, rotate


def test_so2_algebra():
    G = get_group("so2")
    g = G.sample(64, torch.Generator().manual_seed(0))
    assert g.dtype == torch.float32 and bool(((g >= 0) & (g < 2 * math.pi)).all())
    d = G.compose(g, G.inverse(g))                                    # e = 0, up to wrap-around
    assert torch.minimum(d, 2 * math.pi - d).abs().max() < 1e-5
    a, b = torch.tensor([3.0, 6.0]), torch.tensor([4.0, 0.5])
    assert torch.allclose(G.compose(a, b), torch.tensor([7.0 - 2 * math.pi, 6.5 - 2 * math.pi]))
    assert torch.allclose(G.inverse(torch.tensor([1.0])), torch.tensor([2 * math.pi - 1.0]))
    assert torch.allclose(G.evaluation_grid(4)[0], torch.tensor([0, math.pi / 2, math.pi, 1.5 * math.pi]))
    assert G.evaluation_grid(4)[1] == ["0°", "90°", "180°", "270°"]


def test_so2_quarter_turn_matches_rot90():
    G = get_group("so2")
    x = torch.rand(2, 1, 28, 28) * 2 - 1
    q = torch.full((2,), math.pi / 2)
    assert (G.act_image(x, q) - torch.rot90(x, 1, dims=(-2, -1)))[..., 1:-1, 1:-1].abs().max() < 1e-4
    assert (G.act_image(x, G.identity(2)) - x).abs().max() < 1e-5
    # the image background (-1) fills what rotates in from outside; the latent pads with 0
    assert torch.allclose(G.act_image(-torch.ones(1, 1, 28, 28), torch.tensor([0.7])),
                          -torch.ones(1, 1, 28, 28))
    assert G.act_latent(torch.ones(1, 1, 7, 7), torch.tensor([0.7]))[0, 0, 0, 0] < 1.0


def _blob(n=2, c=4, side=7):
    r = torch.arange(side) - (side - 1) / 2
    bump = torch.exp(-(r[:, None] ** 2 + r[None] ** 2) / 4.0)                 # (side, side)
    shift = torch.exp(-((r[:, None] - 1) ** 2 + r[None] ** 2) / 3.0)
    return torch.stack([torch.stack([bump * (k + 1) + shift * (i - k) for k in range(c)])
                        for i in range(n)])                                   # (n, c, side, side)


def test_so2_resample_homomorphism_error_small_but_nonzero():
    G = get_group("so2")
    z = _blob()
    err = homomorphism_error(G.act_latent, G, z, 0.7, 1.9)
    assert 1e-4 < err < 0.15
    assert homomorphism_error(G.act_latent, G, z, math.pi / 2, math.pi) < 1e-5   # quarter turns exact


@pytest.mark.parametrize("mix", [False, True])
def test_learned_so2_is_exact_on_channels(mix):
    torch.manual_seed(0)
    G = get_group("so2")
    act = LearnedSO2Action(5, spatial=False, mix=mix)
    with torch.no_grad():
        act.freq.copy_(torch.tensor([1.2, -2.1]))                      # rounds to 1 and -2
        if mix:
            act.skew.normal_()
    z = torch.randn(3, 5, 7, 7)
    g, h = torch.tensor([5.0, 1.0, 3.0]), torch.tensor([4.0, 0.3, 6.1])   # wrap around 2π
    assert homomorphism_error(act, G, z, g, h) < 1e-5
    assert (act(z, G.identity(3)) - z).abs().max() < 1e-5
    assert act(z, g).norm().item() == pytest.approx(z.norm().item(), rel=1e-5)  # orthogonal
    spatial = LearnedSO2Action(5, spatial=True, mix=mix)
    spatial.load_state_dict(act.state_dict())
    assert homomorphism_error(spatial, G, torch.randn(3, 5, 1, 1), g, h) < 1e-5  # 1x1 map: exact
    assert homomorphism_error(spatial, G, _blob(3, 5), g, h) > 1e-4


def test_learned_so2_gradients_and_factory():
    G = get_group("so2")
    act = G.make_latent_action("learned", 6)
    assert isinstance(act, torch.nn.Module)
    assert G.make_latent_action("resample", 6) == G.act_latent
    with pytest.raises(ValueError, match="learned"):
        G.make_latent_action("bogus", 6)
    z = torch.randn(2, 6, 7, 7)
    act(z, torch.tensor([0.5, 2.0])).pow(2).mul(torch.randn(2, 6, 7, 7)).sum().backward()
    assert act.freq.grad is not None and act.skew.grad is not None
    assert act.freq.grad.abs().sum() > 0


def test_rotate_fill():
    x = torch.full((1, 1, 9, 9), 5.0)
    assert torch.allclose(rotate(x, torch.tensor([0.3]), fill=5.0), x)      # nothing enters but fill
    y = rotate(torch.zeros(1, 1, 9, 9), torch.tensor([math.pi / 4]), fill=5.0)
    assert y[0, 0, 4, 4] == 0.0 and y[0, 0, 0, 0] == pytest.approx(5.0, abs=1e-4)
