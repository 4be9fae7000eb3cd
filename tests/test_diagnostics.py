"""Known answers for the latent diagnostics (galib.train.diagnostics) and their place in a history."""
import math

import torch

from galib.groups import get_group
from galib.train import TrainConfig, train
from galib.train.diagnostics import KEYS, diagnostic_pairs, latent_diagnostics

C4 = get_group("c4")


def _images(n=64, side=8, seed=0):
    return torch.rand(n, 1, side, side, generator=torch.Generator().manual_seed(seed))


def test_exact_equivariant_encoder_has_zero_error_and_no_drive():
    x = _images()
    _, g = diagnostic_pairs(x, C4, seed=1)
    d = latent_diagnostics(lambda t: t, torch.ones(1), C4, x, g)          # z = x: Phi_g = T_g exactly
    assert d["const_rel_err"] < 1e-12 and abs(d["const_r2"] - 1) < 1e-6 and abs(d["const_drive"]) < 1e-6
    assert d["zi_offset"] == d["zi_varying"] == 0.0                        # no invariant channel


def test_offsets_and_their_symmetric_share():
    x = _images()
    g = C4.sample(len(x), torch.Generator().manual_seed(2))
    sym = torch.ones(1, 1, 8, 8) * 3.0                                     # a constant map: symmetric
    d = latent_diagnostics(lambda t: sym.expand(len(t), -1, -1, -1), torch.ones(1), C4, x, g)
    assert abs(d["zv_offset"] - 3.0) < 1e-6 and abs(d["zv_offset_sym"] - 1.0) < 1e-6
    assert d["zv_varying"] < 1e-6
    corner = torch.zeros(1, 1, 8, 8)
    corner[..., 0, 0] = 1.0                                                # one cell: its orbit has 4
    d = latent_diagnostics(lambda t: corner.expand(len(t), -1, -1, -1), torch.ones(1), C4, x, g)
    assert abs(d["zv_offset_sym"] - 0.25) < 1e-6                           # 4 · (1/4)² of 1


def test_a_target_larger_than_the_prediction_drives_growth():
    """z(x) = x upright, 2·x once the marker pixel has moved: every moved pair has r² = 4 and
    e = ‖T x − 2 T x‖² / ‖x‖² = 1, so the drive is 4 − 1 − 1 = 2 (> 0: L_const grows z_v)."""
    x = _images()
    x[..., 0, 0] = 5.0                                                     # the marker, upright
    g = torch.randint(1, 4, (len(x),), generator=torch.Generator().manual_seed(3))   # never identity

    def encode(t):
        return t * torch.where(t[:, :, 0, 0] == 5.0, 1.0, 2.0).view(-1, 1, 1, 1)
    d = latent_diagnostics(encode, torch.ones(1), C4, x, g)
    assert abs(d["const_r2"] - 4) < 1e-5 and abs(d["const_rel_err"] - 1) < 1e-5
    assert abs(d["const_drive"] - 2) < 1e-5


def test_parts_follow_the_mask():
    x = _images()
    g = C4.sample(len(x), torch.Generator().manual_seed(4))
    two = lambda t: torch.cat([t, 0 * t + 1.0], 1)                         # noqa: E731 channel 1 constant
    d = latent_diagnostics(two, torch.tensor([1.0, 0.0]), C4, x, g)
    assert abs(d["zi_offset"] - 1.0) < 1e-6 and d["zi_varying"] < 1e-6 and d["zv_varying"] > 0.1
    none = latent_diagnostics(two, torch.zeros(2), C4, x, g)               # no variant channel
    assert none["zv_offset"] == 0.0 and none["const_drive"] == 0.0


def test_every_history_row_carries_the_diagnostics(tiny):
    res = train(TrainConfig(dataset="glyphs", epochs=2, seed=0, device="cpu"), data=tiny,
                progress=False, verbose=False)
    for row in res.history:
        assert set(KEYS) <= set(row) and all(math.isfinite(row[k]) for k in KEYS)
        assert isinstance(row["mask_flips"], int) and row["mask_flips"] >= 0
    fixed = train(TrainConfig(dataset="glyphs", epochs=1, seed=0, device="cpu", mask="random"),
                  data=tiny, progress=False, verbose=False)
    assert fixed.history[0]["mask_flips"] == 0                             # a fixed mask never flips
