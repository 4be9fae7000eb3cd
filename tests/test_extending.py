"""A group and a dataset defined outside the package plug in through the two registries and train."""
import math

import pytest
import torch

import galib.datasets
import galib.groups
from galib.datasets import ImageSet, load_dataset, register_dataset
from galib.datasets.base import Loaded
from galib.groups import check_group_action, get_group, register_group
from galib.groups.base import FiniteGroup
from galib.train import TrainConfig, train

N_TRAIN, N_TEST = 100, 40


class Flip2(FiniteGroup):
    """The identity and the left-right flip: the smallest non-trivial group."""

    def __init__(self):
        super().__init__("flip2", ops=[lambda t: t, lambda t: t.flip(-1)], names=["e", "flip"])


def _stripes(n: int, seed: int) -> ImageSet:
    """Vertical stripes of period 2..5 at a random phase; the period is the label."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 4, (n,), generator=g)
    phase = torch.randint(0, 5, (n,), generator=g)
    cols = torch.arange(28)
    on = ((cols[None] + phase[:, None]) // (labels[:, None] + 2)) % 2 == 0          # (n, 28)
    images = (on[:, None, :].expand(n, 28, 28).to(torch.uint8) * 255).contiguous()
    return ImageSet(images, labels)


def load_stripes(req):
    return Loaded(source="generated", train=_stripes(N_TRAIN, req.seed),
                  test=_stripes(N_TEST, req.seed + 1))


@pytest.fixture
def registered():
    register_group("flip2", Flip2)
    register_dataset("stripes", load_stripes)
    yield
    galib.groups.GROUPS.pop("flip2", None)
    galib.datasets.LOADERS.pop("stripes", None)


def test_toy_group_is_a_group_action(registered):
    G = get_group("flip2")
    assert isinstance(G, Flip2) and len(G) == 2 and G.element_names() == ["e", "flip"]
    assert G.table.tolist() == [[0, 1], [1, 0]]
    z = torch.randn(3, 4, 7, 7)
    assert check_group_action(G, G.act_latent, z) == 0.0
    flipped = torch.stack([z[0], z[1].flip(-1), z[2].flip(-1)])
    assert torch.equal(G.act_image(z, torch.tensor([0, 1, 1])), flipped)
    assert "flip2" in galib.groups.available_groups()


def test_toy_dataset_loads_with_the_usual_split(registered):
    d = load_dataset("stripes", verbose=False)
    assert d.name == "stripes" and d.source == "generated"
    assert (len(d.train), len(d.val), len(d.test)) == (80, 20, N_TEST)             # 80/20 split
    assert d.image_shape == (28, 28) and d.train.images.dtype == torch.uint8
    capped = load_dataset("stripes", max_train=40, max_test=10, verbose=False)
    assert (len(capped.train), len(capped.val), len(capped.test)) == (40, 10, 10)


def test_train_one_epoch_on_the_toy_group_and_dataset(registered):
    cfg = TrainConfig(dataset="stripes", group="flip2", epochs=1, max_train=64, batch_size=32,
                      latent_channels=8, device="cpu")
    res = train(cfg, progress=False, verbose=False)
    assert len(res.history) == 1
    row = res.history[0]
    for key in ("train_loss", "val_loss", "val_recon", "val_inv", "val_const"):
        assert math.isfinite(row[key]), key
    assert res.model.group.name == "flip2"


def test_registrations_are_gone_afterwards():
    assert "flip2" not in galib.groups.GROUPS and "stripes" not in galib.datasets.LOADERS


# ----------------------------------------------------------------------------- a study (docs/extending.md)
def width_trainings(cfg, widths, run_root):
    """The worked example's plan: one training per latent size, in run_root/c<width>."""
    from dataclasses import replace

    from galib.experiments.plan import DataRequest, Training, run_folder
    return [Training(f"width/c{w}", replace(cfg, latent_channels=w).validate(),
                     str(run_folder(run_root, f"c{w}")), DataRequest.of(cfg)) for w in widths]


def variant_fractions(cfg, widths, run_root, data):
    from galib.experiments.plan import train_or_load
    return {t.config.latent_channels: float(train_or_load(t, data, verbose=False).model.hard_mask().float().mean())
            for t in width_trainings(cfg, widths, run_root)}


def findings(m):
    fr = m.get("variant_fraction", {})
    return [f"At {w} channels the mask makes {f:.0%} variant." for w, f in fr.items()]


def test_a_study_is_one_module_and_one_registry_line(monkeypatch, tmp_path):
    import sys

    from galib.studies import registry
    from galib.studies.params import default_run_dir
    width = sys.modules[__name__]                      # this file plays galib/studies/width.py
    study = registry.Study("07_width", width, reads=("variant_fraction",), folder="width",
                           plan=lambda p, cfg: width.width_trainings(cfg, p["widths"], p["run_dir"]))
    monkeypatch.setitem(registry.STUDIES, "07_width", study)
    cfg = TrainConfig(dataset="glyphs", epochs=1, max_train=64, batch_size=32, device="cpu")
    plan = registry.study_trainings("07_width", {"widths": [8, 16], "run_dir": str(tmp_path / "width")}, cfg)
    assert [t.key for t in plan] == ["07:width/c8", "07:width/c16"]
    assert [t.run_dir for t in plan] == [str(tmp_path / "width" / "c8"), str(tmp_path / "width" / "c16")]
    assert study.run_dir(tmp_path) == tmp_path / "width"                  # the pipeline's folder
    lab = default_run_dir("07_width", cfg)                                # by hand: keyed by the config
    assert lab.parent.name == "width" and lab.name.startswith("glyphs-c4-")
    assert lab != default_run_dir("07_width", TrainConfig(dataset="glyphs", epochs=2))
    fractions = width.variant_fractions(cfg, [8, 16], tmp_path / "width", load_dataset("glyphs", max_train=64))
    assert set(fractions) == {8, 16} and all(0.0 <= f <= 1.0 for f in fractions.values())
    metrics = {"notebook": "07_width", "variant_fraction": fractions}
    assert registry.missing_keys(metrics) == [] and registry.missing_keys({"notebook": "07_width"}) == ["variant_fraction"]
    assert list(registry.report(metrics)) == findings(metrics) and len(findings(metrics)) == 2
    assert (tmp_path / "width" / "c16" / "history.json").is_file()
