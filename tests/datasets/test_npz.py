"""Known-answer tests for npz:PATH (galib.datasets.npz)."""
import numpy as np
import pytest
import torch

from galib.datasets import DatasetUnavailable, load_dataset


def _write_npz(path, shape, val=True, float_images=False, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in (("train", 20), ("val", 6), ("test", 8)):
        if split == "val" and not val:
            continue
        imgs = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
        arrays[f"{split}_images"] = imgs / 255.0 if float_images else imgs
        arrays[f"{split}_labels"] = rng.integers(0, 3, size=(n, 1))
    np.savez(path, **arrays)
    return arrays


def test_npz_round_trip_2d_with_val(tmp_path):
    a = _write_npz(tmp_path / "d2.npz", (28, 28))
    d = load_dataset(f"npz:{tmp_path / 'd2.npz'}", verbose=False)
    assert d.image_shape == (28, 28) and d.train.images.dtype == torch.uint8
    assert torch.equal(d.train.images, torch.from_numpy(a["train_images"]))  # no 80/20 re-split
    assert torch.equal(d.val.images, torch.from_numpy(a["val_images"]))
    assert torch.equal(d.test.labels, torch.from_numpy(a["test_labels"][:, 0]))
    assert d.train.labels.shape == (20,) and d.train.labels.dtype == torch.int64


def test_npz_round_trip_3d_float_without_val(tmp_path):
    a = _write_npz(tmp_path / "d3.npz", (8, 8, 8), val=False, float_images=True)
    d = load_dataset("npz:d3.npz", data_root=tmp_path, verbose=False)    # relative to data_root
    assert d.image_shape == (8, 8, 8) and (len(d.train), len(d.val)) == (16, 4)  # 80/20 split
    want = torch.from_numpy(np.rint(a["test_images"] * 255).astype(np.uint8))
    assert torch.equal(d.test.images, want)
    both = torch.cat([d.train.images, d.val.images]).flatten(1)
    orig = torch.from_numpy(np.rint(a["train_images"] * 255).astype(np.uint8)).flatten(1)
    assert torch.equal(both.sort(0).values, orig.sort(0).values)     # the split is a permutation


def test_npz_rgb_becomes_grey(tmp_path):
    rgb = np.zeros((4, 6, 6, 3), np.uint8)
    rgb[..., 0] = 200                                                 # pure red → 0.299 * 200
    lab = np.arange(4)
    np.savez(tmp_path / "rgb.npz", train_images=rgb, train_labels=lab, test_images=rgb, test_labels=lab)
    d = load_dataset(f"npz:{tmp_path / 'rgb.npz'}", verbose=False)
    assert d.image_shape == (6, 6) and bool((d.test.images == 60).all())


def test_npz_errors(tmp_path):
    with pytest.raises(DatasetUnavailable, match="nope.npz"):
        load_dataset(f"npz:{tmp_path / 'nope.npz'}", verbose=False)
    np.savez(tmp_path / "bad.npz", train_images=np.zeros((2, 4, 4), np.uint8),
             train_labels=np.zeros(2))
    with pytest.raises(ValueError, match=r"\['test_images', 'test_labels'\]"):
        load_dataset(f"npz:{tmp_path / 'bad.npz'}", verbose=False)
    np.savez(tmp_path / "range.npz", train_images=np.full((2, 4, 4), 3.0), train_labels=np.zeros(2),
             test_images=np.zeros((2, 4, 4)), test_labels=np.zeros(2))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        load_dataset(f"npz:{tmp_path / 'range.npz'}", verbose=False)


def _hashes(folder):
    import hashlib
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("name,match", [
    ("hello.txt", "is not a zip archive"),
    ("x.npy", "is a single .npy array, not a dataset"),
    ("objects.npz", "holds Python objects"),
    ("empty.npz", "is empty"),
])
def test_npz_files_of_the_wrong_kind_name_the_file_and_never_suggest_pickles(tmp_path, name, match):
    (tmp_path / "hello.txt").write_text("hello\n")
    np.save(tmp_path / "x.npy", np.zeros((2, 4, 4), np.uint8))
    np.savez(tmp_path / "objects.npz", train_images=np.array([{}], dtype=object))
    (tmp_path / "empty.npz").write_bytes(b"")
    before = _hashes(tmp_path)
    with pytest.raises(ValueError, match=match) as err:
        load_dataset(f"npz:{tmp_path / name}", verbose=False)
    msg = str(err.value)
    assert str(tmp_path / name) in msg and "expected an .npz archive" in msg and "train_images" in msg
    assert "pickle" not in msg.lower() and "context manager" not in msg
    assert _hashes(tmp_path) == before
