"""Known-answer tests for the rotation/flip groups c4 and d4 (galib.groups.dihedral)."""
import torch

from galib.groups import CyclicRotations, check_group_action, get_group


def test_c4_is_a_group_action_on_latents_and_images():
    c4 = get_group("c4")
    z = torch.randn(3, 5, 7, 7)
    assert check_group_action(c4, c4.act_latent, z) == 0.0
    assert check_group_action(c4, c4.act_image, torch.randn(2, 1, 28, 28)) == 0.0
    g = torch.arange(4)
    assert torch.equal(c4.compose(g, c4.inverse(g)), c4.identity(4))
    assert c4.table.tolist() == [[(a + b) % 4 for b in range(4)] for a in range(4)]


def test_c4_image_action_is_rot90_per_sample():
    c4 = CyclicRotations()
    x = torch.randn(8, 1, 28, 28)
    g = torch.tensor([0, 1, 2, 3, 3, 2, 1, 0])
    out = c4.act_image(x, g)
    for i in range(8):
        assert torch.equal(out[i], torch.rot90(x[i], int(g[i]), dims=(-2, -1)))


def test_c4_sampling_is_uniform_and_seeded():
    c4 = CyclicRotations()
    a = c4.sample(40_000, torch.Generator().manual_seed(0))
    b = c4.sample(40_000, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.dtype == torch.long
    freq = torch.bincount(a, minlength=4).float() / len(a)
    assert torch.allclose(freq, torch.full((4,), 0.25), atol=0.01)
