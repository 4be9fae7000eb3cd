"""The stability remedies as TrainConfig options, the study's plan, and the reference runner."""
import math

import pytest
import torch

from galib.experiments.remedies import CASES, REMEDIES, remedy_trainings
from galib.groups import get_group
from galib.losses import LossOptions, ald_losses
from galib.models import build_model
from galib.pairs import iterate_pairs
from galib.train import TrainConfig, make_optimizer, train
from galib.tools.reference import PATCHES, patched_source

C4 = get_group("c4")


def test_random_pose_keeps_order_and_elements_and_poses_both_images(tiny):
    data = tiny.train.head(40)
    plain = list(iterate_pairs(data, C4, 16, torch.Generator().manual_seed(5)))
    posed = list(iterate_pairs(data, C4, 16, torch.Generator().manual_seed(5),
                               pose_generator=torch.Generator().manual_seed(9)))
    for (x0, gx0, g0, y0), (x1, gx1, g1, y1) in zip(plain, posed):
        assert torch.equal(g0, g1) and torch.equal(y0, y1)
        assert torch.equal(gx1, C4.act_image(x1, g1))                      # the pair is (T_h x, T_g T_h x)
        rots = torch.stack([C4.act_image(x0, torch.full_like(g0, k)) for k in range(4)])  # (4, B, ...)
        match = (rots == x1.unsqueeze(0)).flatten(2).all(2)                # which pose each image took
        assert match.any(0).all() and not match[0].all()                   # each a rotation; not all upright


def test_both_ways_has_the_paper_value_and_trains_both_sides():
    torch.manual_seed(0)
    model = build_model("c4", 8)
    x = torch.rand(6, 1, 28, 28) * 2 - 1
    g = torch.tensor([1, 2, 3, 1, 2, 3])
    gx = C4.act_image(x, g)
    paper = ald_losses(model, x, gx, g)
    both = ald_losses(model, x, gx, g, LossOptions(targets="both-ways"))
    for k in ("loss", "recon", "inv", "const"):
        assert torch.allclose(paper[k], both[k])
    grads = []
    for terms in (paper, both):
        model.zero_grad()
        terms["const"].backward()
        grads.append(model.encoder[0].weight.grad.clone())
    assert not torch.allclose(grads[0], grads[1])                          # the target side is trained too
    with pytest.raises(ValueError, match="unknown targets 'sideways'"):
        ald_losses(model, x, gx, g, LossOptions(targets="sideways"))


def test_scale_free_targets_are_blind_to_offset_and_scale():
    from galib.losses import _standardised
    z = torch.randn(4, 3, 7, 7)
    assert torch.allclose(_standardised(z), _standardised(3 * z + 5), atol=1e-5)
    torch.manual_seed(0)
    model = build_model("c4", 8)
    x = torch.rand(6, 1, 28, 28) * 2 - 1
    g = torch.tensor([1, 2, 3, 1, 2, 3])
    terms = ald_losses(model, x, C4.act_image(x, g), g, LossOptions(targets="scale-free"))
    with torch.no_grad():                                                  # scale the encoder's output
        model.encoder[2].weight.mul_(3.0)
        model.encoder[2].bias.mul_(3.0)
    again = ald_losses(model, x, C4.act_image(x, g), g, LossOptions(targets="scale-free"))
    for k in ("inv", "const"):                                             # LeakyReLU is homogeneous
        assert torch.allclose(terms[k], again[k], rtol=1e-4), k


def test_weight_decay_is_decoupled_and_checked():
    model = build_model("c4", 8)
    assert type(make_optimizer(model, TrainConfig())) is torch.optim.Adam
    opt = make_optimizer(model, TrainConfig(weight_decay=0.01))
    assert isinstance(opt, torch.optim.AdamW) and opt.defaults["weight_decay"] == 0.01
    for bad in (-0.1, float("nan")):
        with pytest.raises(ValueError, match="weight_decay must be >= 0"):
            TrainConfig(weight_decay=bad).validate()
    for key in ("pose", "targets"):
        with pytest.raises(ValueError, match=f"{key} must be one of"):
            TrainConfig(**{key: "nope"}).validate()


def test_remedies_train(tiny):
    for remedy, fields in REMEDIES.items():
        res = train(TrainConfig(dataset="glyphs", epochs=1, seed=0, device="cpu", **fields), data=tiny,
                    progress=False, verbose=False)
        assert res.history[0]["val_recon"] < 1.0 and math.isfinite(res.history[0]["val_loss"]), remedy


def test_the_study_plan_reproduces_the_evidence_runs(tmp_path):
    plan = {t.key: t for t in remedy_trainings(tmp_path)}
    assert len(plan) == len(REMEDIES) * len(CASES)
    r42 = plan["paper/random_seed42"].config
    assert (r42.mask, r42.mask_variant, r42.mask_seed, r42.seed, r42.epochs) == ("random", 43, 42, 42, 43)
    both = plan["both-ways/learned_seed43"]
    assert both.config.targets == "both-ways" and both.config.epochs == 18 and both.data.seed == 42
    assert both.run_dir == str(tmp_path.resolve() / "both-ways" / "learned_seed43")
    assert all(t.config.dataset == "fashion-mnist" and t.data.max_train is None for t in plan.values())


def test_reference_patches_are_exact():
    text = "header\n" + "\n".join(old for old, _ in PATCHES) + "\n"
    out = patched_source(text)
    assert all(new in out for _, new in PATCHES if new)
    assert "torchvision.datasets.MNIST" not in out and "_galib.record(" in out
    with pytest.raises(ValueError, match="exactly one 'epochs = 50'"):
        patched_source(text.replace("epochs = 50\n", "epochs = 10\n"))
