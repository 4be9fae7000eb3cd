"""Known-answer tests for the cube rotation group o3d (galib.groups.cube)."""
import torch

from galib.groups import get_group


def test_o3d_24_distinct_rotations():
    G = get_group("o3d")
    R = G.matrices().double()                                        # (24, 3, 3)
    assert len({tuple(r.flatten().tolist()) for r in R}) == 24
    assert torch.allclose(torch.linalg.det(R), torch.ones(24, dtype=torch.float64))
    assert torch.allclose(R @ R.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(24, 3, 3))
    v = torch.randn(1, 1, 4, 4, 4)
    images = torch.stack([G.act_image(v, torch.tensor([k])) for k in range(24)]).flatten(1)
    assert torch.unique(images, dim=0).shape[0] == 24
