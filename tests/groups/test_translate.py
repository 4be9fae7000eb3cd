"""Known-answer tests for the translation group (galib.groups.translate)."""
import torch

from galib.groups import get_group


def _image(name, n=2):
    g = torch.Generator().manual_seed(1)
    side = (28,) * (3 if name == "o3d" else 2)
    return torch.randn(n, 1, *side, generator=g)


def test_mixed_batch_matches_per_element():
    G = get_group("translate")
    x = _image("translate", n=6)
    g = torch.tensor([0, 3, 8, 48, 3, 20])
    out = G.act_image(x, g)
    for i in range(6):
        assert torch.equal(out[i:i + 1], G.act_image(x[i:i + 1], g[i:i + 1]))
    assert torch.equal(G.act_image(x, g)[1], torch.roll(x[1], (0, 12), dims=(-2, -1)))
