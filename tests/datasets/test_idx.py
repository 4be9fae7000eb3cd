"""MNIST / Fashion-MNIST from IDX files (galib.datasets.idx): layouts, splits, caps, errors."""
import gzip
import os
from pathlib import Path

import pytest
import torch

from galib.datasets import DEBIAN_FASHION, DatasetUnavailable, load_dataset
from galib.datasets.idx import read_idx

REQUIRE_REAL = os.environ.get("GALIB_REQUIRE_REAL_DATA") == "1"


def write_idx(path: Path, array: torch.Tensor, gz: bool = False):
    header = bytes([0, 0, 8, array.dim()]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.to(torch.uint8).numpy().tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    (gzip.open if gz else open)(str(path) + (".gz" if gz else ""), "wb").write(data)


def fake_mnist(root: Path, folder="MNIST", n_train=500, n_test=100, gz=False):
    raw = root / folder / "raw"
    g = torch.Generator().manual_seed(0)
    for split, n in (("train", n_train), ("t10k", n_test)):
        write_idx(raw / f"{split}-images-idx3-ubyte", torch.randint(0, 256, (n, 28, 28), generator=g), gz)
        write_idx(raw / f"{split}-labels-idx1-ubyte", torch.arange(n) % 10, gz)
    return root


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_from_torchvision_raw_layout(tmp_path, gz):
    fake_mnist(tmp_path, gz=gz)
    d = load_dataset("mnist", data_root=tmp_path, download=False)
    assert d.name == "mnist" and d.source.endswith(os.path.join("MNIST", "raw"))
    assert (len(d.train), len(d.val), len(d.test)) == (400, 100, 100)     # 80/20 split
    assert d.train.images.dtype == torch.uint8 and d.train.images.shape[1:] == (28, 28)
    assert d.train.labels.dtype == torch.int64
    # train and validation are disjoint and together the official training set
    raw = read_idx(tmp_path / "MNIST/raw" / ("train-images-idx3-ubyte" + (".gz" if gz else "")))
    together = torch.cat([d.train.images, d.val.images]).flatten(1)
    assert sorted(map(tuple, together.tolist())) == sorted(map(tuple, raw.flatten(1).tolist()))


def test_fashion_mnist_raw_layout_and_caps(tmp_path):
    fake_mnist(tmp_path, folder="FashionMNIST")
    d = load_dataset("fashion-mnist", data_root=tmp_path, max_train=100, max_test=30)
    assert (len(d.train), len(d.val), len(d.test)) == (100, 25, 30)


def test_split_is_seeded(tmp_path):
    fake_mnist(tmp_path)
    a = load_dataset("mnist", data_root=tmp_path, seed=1, download=False)
    b = load_dataset("mnist", data_root=tmp_path, seed=1, download=False)
    c = load_dataset("mnist", data_root=tmp_path, seed=2, download=False)
    assert torch.equal(a.val.images, b.val.images) and not torch.equal(a.val.images, c.val.images)


def test_missing_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetUnavailable, match="MNIST/raw") as err:
        load_dataset("mnist", data_root=tmp_path, download=False)
    assert "tried" in str(err.value)


def test_auto_prefers_mnist_and_says_so(tmp_path, capsys):
    fake_mnist(tmp_path)
    d = load_dataset("auto", data_root=tmp_path)
    assert d.name == "mnist"
    assert "'auto' -> 'mnist'" in capsys.readouterr().out


@pytest.mark.skipif(not DEBIAN_FASHION.is_dir() and not REQUIRE_REAL,
                    reason="Debian package dataset-fashion-mnist not installed")
def test_debian_fashion_mnist_is_found(tmp_path):
    d = load_dataset("fashion-mnist", data_root=tmp_path)   # empty root: falls back to /usr/share
    assert d.source == str(DEBIAN_FASHION)
    assert (len(d.train), len(d.val), len(d.test)) == (48_000, 12_000, 10_000)
    assert torch.bincount(d.test.labels).tolist() == [1000] * 10
