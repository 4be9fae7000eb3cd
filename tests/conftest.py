"""Fixtures shared by the run-dir tests (test_integrity, test_run_locks)."""
import pytest

from galib.datasets import load_dataset


@pytest.fixture(scope="module")
def tiny():
    """256 glyph training images with their validation and test splits, one load per module."""
    return load_dataset("glyphs", seed=0, glyphs_sizes=(400, 64), max_train=256, verbose=False)
