"""Upper bounds of the seeds and sizes, checked before any data is loaded.

``torch.manual_seed`` takes a 64-bit integer, and training seeds its epochs with
``seed * 1_000_003 + epoch`` (:func:`galib.train.loop.epoch_generator`), so a seed beyond
``MAX_SEED`` fails only once training starts, with "Overflow when unpacking long long" naming no
field. :func:`check_seeds` names the field and the range instead; :func:`seed_arg` does it for a
command-line flag (argparse's one-line error, before anything runs).

:func:`check_limits` adds sane upper bounds on the sizes a typo makes absurd (``--epochs
100000000000000000000000`` trains for ever, ``--latent-channels 4000000`` grows past 2.5 GB);
``GALIB_NO_LIMITS=1`` lifts them for a user who means it (the seeds' bounds stay: torch's).
"""
from __future__ import annotations

import argparse
import os

EPOCH_SEED_FACTOR = 1_000_003          # galib.train.loop.epoch_generator: seed * this + epoch
MAX_SEED = 2 ** 40 - 1                  # × EPOCH_SEED_FACTOR + epoch stays below 2**63
MAX_MASK_SEED = 2 ** 63 - 1             # used as it is (torch.Generator().manual_seed)
SEED_BOUNDS = {"seed": MAX_SEED, "mask_seed": MAX_MASK_SEED}
SIZE_BOUNDS = {"epochs": 100_000, "latent_channels": 4096}     # the paper: 50 epochs, 64 channels
NO_LIMITS_ENV = "GALIB_NO_LIMITS"


def seed_problem(name: str, value, high: int | None = None) -> str | None:
    """Why ``value`` is not a valid seed for ``name`` (an integer in ``[0, high]``), or None."""
    high = SEED_BOUNDS.get(name, MAX_SEED) if high is None else high
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
        return f"{name} must be an integer in [0, {high}]; got {value!r}"
    return None


def check_seeds(cfg):
    """Raise ``ValueError`` naming the field if ``cfg.seed`` or ``cfg.mask_seed`` is out of range;
    returns ``cfg``."""
    for name, high in SEED_BOUNDS.items():
        problem = seed_problem(name, getattr(cfg, name), high)
        if problem:
            raise ValueError(problem)
    return cfg


def seed_arg(name: str = "seed"):
    """An argparse ``type`` for the seed flag ``name``: an integer in range, else argparse's error."""
    high = SEED_BOUNDS.get(name, MAX_SEED)

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer in [0, {high}]; got {text!r}") from None
        if not 0 <= value <= high:
            raise argparse.ArgumentTypeError(f"must be an integer in [0, {high}]; got {value}")
        return value
    parse.__name__ = name
    return parse


def check_limits(cfg):
    """:func:`check_seeds`, and each of :data:`SIZE_BOUNDS` at most its bound unless
    ``$GALIB_NO_LIMITS`` is set; ``ValueError`` naming the field, else returns ``cfg``."""
    check_seeds(cfg)
    if os.environ.get(NO_LIMITS_ENV, "") not in ("", "0"):
        return cfg
    for name, high in SIZE_BOUNDS.items():
        value = getattr(cfg, name)
        if isinstance(value, int) and value > high:
            raise ValueError(f"{name} must be at most {high} (a bound against typos; set "
                             f"{NO_LIMITS_ENV}=1 to go beyond it); got {value}")
    return cfg
