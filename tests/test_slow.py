"""Full-size runs, excluded from `make test`; run them with `make test-slow` (pytest -m slow)."""
import os

import pytest

from galib.datasets import DEBIAN_FASHION, load_dataset
from galib.train import TrainConfig, train

REQUIRE_REAL = os.environ.get("GALIB_REQUIRE_REAL_DATA") == "1"


@pytest.mark.slow
@pytest.mark.skipif(not DEBIAN_FASHION.is_dir() and not REQUIRE_REAL,
                    reason="Debian package dataset-fashion-mnist not installed")
def test_paper_settings_one_epoch_on_full_fashion_mnist(tmp_path):
    """The paper model on all 48k/12k Fashion-MNIST pairs: one epoch reaches the measured loss."""
    data = load_dataset("fashion-mnist", data_root=tmp_path)
    hist = train(TrainConfig(dataset="fashion-mnist", epochs=1, device="cpu"), tmp_path / "run",
                 data=data, progress=False, verbose=False).history
    # measured with seed 42: val loss 0.0178 after epoch 1, 43 of 64 channels variant
    assert hist[0]["val_loss"] < 0.025
    assert 0.2 < hist[0]["variant_fraction"] < 0.9
    assert (tmp_path / "run" / "best.pt").is_file()
