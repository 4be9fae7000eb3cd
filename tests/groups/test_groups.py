"""Known-answer tests every group must pass: the table, the axioms and the image/latent actions."""
import pytest
import torch
import torch.nn.functional as F

from galib.groups import TranslationGroup, available_groups, check_group_action, get_group

FINITE = {"c4": 4, "d4": 8, "translate": 49, "o3d": 24}


def _latent(name, n=2, c=3):
    g = torch.Generator().manual_seed(0)
    side = (5,) * 3 if name == "o3d" else ((7, 7) if name == "translate" else (5, 5))
    return torch.randn(n, c, *side, generator=g)


def _image(name, n=2):
    g = torch.Generator().manual_seed(1)
    side = (28,) * (3 if name == "o3d" else 2)
    return torch.randn(n, 1, *side, generator=g)


def _pool(x):
    return F.avg_pool3d(x, 4) if x.dim() == 5 else F.avg_pool2d(x, 4)


def test_registered():
    assert set(FINITE) | {"so2"} <= set(available_groups())


@pytest.mark.parametrize("name", list(FINITE))
def test_finite_axioms_and_inverse(name):
    G = get_group(name)
    assert len(G) == FINITE[name] == len(set(G.element_names()))
    z = _latent(name)
    assert check_group_action(G, G.act_latent, z) == 0.0
    e = G.elements()
    assert torch.equal(G.compose(e, G.inverse(e)), G.identity(len(e)))
    assert torch.equal(G.compose(G.inverse(e), e), G.identity(len(e)))


@pytest.mark.parametrize("name", list(FINITE))
def test_image_action_matches_latent_action_through_pooling(name):
    """Non-overlapping 4x(4x4) average pooling is exactly equivariant: pool(T_g x) = Phi_g pool(x)."""
    G = get_group(name)
    x = _image(name)
    for k in range(len(G)):
        g = torch.full((len(x),), k)
        assert (_pool(G.act_image(x, g)) - G.act_latent(_pool(x), g)).abs().max() < 1e-6


def test_bad_inputs():
    with pytest.raises(ValueError, match="square"):
        get_group("d4").act_image(torch.zeros(1, 1, 28, 24), torch.zeros(1, dtype=torch.long))
    with pytest.raises(ValueError, match="not divisible by 4"):
        get_group("translate").check_shape((1, 1, 30, 30), "image")
    with pytest.raises(ValueError, match="28x28"):
        get_group("translate").check_shape((1, 1, 32, 32), "image")
    TranslationGroup(cells=8).check_shape((1, 1, 32, 32), "image")  # the matching group is fine
    with pytest.raises(ValueError, match=r"\(B, C, D, H, W\)"):
        get_group("o3d").act_image(torch.zeros(1, 1, 28, 28), torch.zeros(1, dtype=torch.long))
    with pytest.raises(ValueError, match="square"):
        get_group("so2").act_image(torch.zeros(1, 1, 28, 20), torch.zeros(1))
