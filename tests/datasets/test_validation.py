"""Data validated at load time (issue 14, cases 8 and 9): counts, shapes, label ranges, finite
values, partial folders and corrupt files are errors that name the file, never silent."""
import gzip
import hashlib

import numpy as np
import pytest
import torch

from galib.datasets import DataError, DataSplits, ImageSet, load_dataset
from tests.datasets.test_idx import fake_mnist, write_idx


def hashes(folder):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def load_fails(name, root, match, **kw) -> str:
    before = hashes(root)
    with pytest.raises(DataError, match=match) as err:
        load_dataset(name, data_root=root, download=False, verbose=False, **kw)
    assert hashes(root) == before
    return str(err.value)


def test_idx_images_and_labels_must_agree_in_count(tmp_path):
    raw = fake_mnist(tmp_path) / "MNIST" / "raw"
    write_idx(raw / "train-labels-idx1-ubyte", torch.arange(400) % 10)     # 500 images
    msg = load_fails("mnist", tmp_path, "500 images but 400 labels")
    assert "train-images-idx3-ubyte" in msg and "train-labels-idx1-ubyte" in msg


def test_idx_test_images_must_have_the_training_size(tmp_path):
    raw = fake_mnist(tmp_path) / "MNIST" / "raw"
    write_idx(raw / "t10k-images-idx3-ubyte", torch.zeros(100, 32, 32))
    msg = load_fails("mnist", tmp_path, "training images are \\(28, 28\\) but test images \\(32, 32\\)")
    assert "t10k-images-idx3-ubyte" in msg


def test_idx_labels_must_be_in_range(tmp_path):
    raw = fake_mnist(tmp_path) / "MNIST" / "raw"
    write_idx(raw / "t10k-labels-idx1-ubyte", torch.full((100,), 200))
    msg = load_fails("mnist", tmp_path, "label 200 is out of range; class labels must be integers 0..9")
    assert "t10k-labels-idx1-ubyte" in msg


@pytest.mark.parametrize("name,folder", [("fashion-mnist", "FashionMNIST"), ("auto", "MNIST")])
def test_a_partial_idx_folder_is_an_error_not_a_fallback(tmp_path, name, folder):
    raw = fake_mnist(tmp_path, folder=folder) / folder / "raw"
    (raw / "t10k-labels-idx1-ubyte").unlink()
    msg = load_fails(name, tmp_path, "holds 3 of the 4 IDX files: missing t10k-labels-idx1-ubyte")
    assert str(raw) in msg


@pytest.mark.parametrize("damage", ["truncated", "flipped"])
def test_corrupt_gz_files_are_named(tmp_path, damage):
    raw = fake_mnist(tmp_path, gz=True) / "MNIST" / "raw"
    path = raw / "train-images-idx3-ubyte.gz"
    data = bytearray(path.read_bytes())
    if damage == "truncated":
        data = data[: len(data) // 2]
    else:
        data[len(data) // 2] ^= 0xFF
        data[-6] ^= 0xFF                                       # inside the CRC-32 trailer
    path.write_bytes(bytes(data))
    msg = load_fails("mnist", tmp_path, "cannot read .*train-images-idx3-ubyte.gz")
    assert "damaged" in msg


def _npz(path, **override):
    arrays = {"train_images": np.zeros((10, 28, 28), np.uint8), "train_labels": np.arange(10) % 3,
              "test_images": np.zeros((4, 28, 28), np.uint8), "test_labels": np.arange(4) % 3}
    np.savez(path, **{**arrays, **override})
    return f"npz:{path}"


@pytest.mark.parametrize("override,match", [
    ({"train_labels": np.arange(12) % 3}, "train_labels must have shape \\(10,\\)"),
    ({"train_labels": np.array(["cat"] * 10)}, "train_labels must hold integer class labels"),
    ({"train_images": np.full((10, 28, 28), np.nan)}, "train_images holds 7840 non-finite values"),
    ({"test_images": np.zeros((4, 32, 32), np.uint8)}, "images differ in shape"),
    ({"train_labels": -np.ones(10, np.int64)}, "non-negative"),
])
def test_npz_problems_are_named(tmp_path, override, match):
    name = _npz(tmp_path / "d.npz", **override)
    msg = load_fails(name, tmp_path, match)
    assert "d.npz" in msg


def test_a_corrupt_npz_is_named(tmp_path):
    (tmp_path / "d.npz").write_bytes(b"PK\x03\x04 not really a zip")
    load_fails(f"npz:{tmp_path / 'd.npz'}", tmp_path, "cannot read .*d.npz")


def test_splits_are_checked_for_any_source():
    good = ImageSet(torch.zeros(4, 28, 28, dtype=torch.uint8), torch.zeros(4, dtype=torch.long))
    floats = ImageSet(torch.zeros(4, 28, 28), torch.zeros(4, dtype=torch.long))
    with pytest.raises(DataError, match="images must be a uint8 tensor"):
        DataSplits("x", "src", floats, good, good).check()
    short = ImageSet(good.images, torch.zeros(3, dtype=torch.long))
    with pytest.raises(DataError, match="val split.*4 images but 3 labels"):
        DataSplits("x", "src", good, short, good).check()
    with pytest.raises(DataError, match="label 12 is out of range"):
        DataSplits("x", "src", good, ImageSet(good.images, torch.full((4,), 12)), good,
                   digits=True).check()


def test_a_gz_with_a_bad_crc_is_caught_by_gzip(tmp_path):
    """The check above relies on gzip verifying its CRC-32: keep that assumption tested."""
    path = tmp_path / "x.gz"
    with gzip.open(path, "wb") as f:
        f.write(bytes(1000))
    data = bytearray(path.read_bytes())
    data[-6] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(OSError):
        gzip.open(path).read()
