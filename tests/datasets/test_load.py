"""load_dataset itself (galib.datasets): name errors, caps, generated sources, float conversion."""
import pytest
import torch

from galib.datasets import load_dataset, to_float


def test_missing_data_root_and_unknown_names(tmp_path):
    with pytest.raises(FileNotFoundError, match="does-not-exist"):
        load_dataset("mnist", data_root=tmp_path / "does-not-exist")
    with pytest.raises(ValueError, match="unknown dataset 'cifar'"):
        load_dataset("cifar")
    with pytest.raises(ValueError, match="max_train"):
        load_dataset("glyphs", max_train=0)


def test_glyphs_dataset_is_deterministic():
    a = load_dataset("glyphs", seed=3, glyphs_sizes=(600, 100))
    b = load_dataset("glyphs", seed=3, glyphs_sizes=(600, 100))
    assert (len(a.train), len(a.val), len(a.test)) == (480, 120, 100)
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.test.labels, b.test.labels)
    assert a.num_classes == 10


def test_to_float_range_and_shape():
    u8 = torch.tensor([[[0, 255], [128, 64]]], dtype=torch.uint8)
    x = to_float(u8)
    assert x.shape == (1, 1, 2, 2) and x.dtype == torch.float32
    assert x.min() == -1 and x.max() == 1
