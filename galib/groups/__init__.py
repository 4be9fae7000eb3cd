"""Groups that act on images (``T_g``) and latent maps (``Phi_g``): the one name → group table.

The contract every group fulfils is :class:`galib.groups.base.Group`; each group is one module
(``dihedral``: c4, d4; ``translate``; ``so2``; ``cube``: o3d). Adding a group is one module plus
one line in ``GROUPS`` (or :func:`register_group` from outside the package).
"""
from __future__ import annotations

import functools
from typing import Callable

from .base import FiniteGroup, Group, TwoSpaceFiniteGroup, check_group_action, homomorphism_error
from .cube import CubeRotations
from .dihedral import CyclicRotations, DihedralGroup
from .so2 import SO2, LearnedSO2Action, rotate
from .translate import TranslationGroup

# Instances are stateless after construction, so each name builds its Cayley table once.
GROUPS: dict[str, Callable[[], Group]] = {
    "c4": functools.lru_cache(maxsize=1)(CyclicRotations),
    "d4": functools.lru_cache(maxsize=1)(DihedralGroup),
    "translate": functools.lru_cache(maxsize=1)(TranslationGroup),
    "so2": functools.lru_cache(maxsize=1)(SO2),
    "o3d": functools.lru_cache(maxsize=1)(CubeRotations),
}


def register_group(name: str, factory: Callable[[], Group]) -> None:
    """Make ``get_group(name)`` return ``factory()`` (a group defined outside this package)."""
    if not callable(factory):
        raise TypeError(f"register_group({name!r}, ...) needs a callable returning a Group; "
                        f"got {factory!r}")
    GROUPS[name] = factory


def available_groups() -> list[str]:
    return sorted(GROUPS)


def get_group(name: str | Group) -> Group:
    """Group by name (``c4`` …); a ``Group`` instance passes through."""
    if isinstance(name, Group):
        return name
    if name not in GROUPS:
        raise ValueError(f"unknown group {name!r}; choose one of {sorted(GROUPS)}")
    return GROUPS[name]()


__all__ = ["Group", "FiniteGroup", "TwoSpaceFiniteGroup", "CyclicRotations", "DihedralGroup",
           "TranslationGroup", "SO2", "LearnedSO2Action", "CubeRotations", "rotate", "GROUPS",
           "check_group_action", "homomorphism_error", "get_group", "register_group",
           "available_groups"]
