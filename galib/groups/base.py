"""The group contract: what every group implements, and the checks the tests call.

A group acts on images (``T_g``, :meth:`Group.act_image`) and on latent maps (``Phi_g``,
:meth:`Group.act_latent`). A group element is a tensor row: finite groups code each element as an
``int64`` index into ``elements()``; continuous groups use float parameters (``so2``: an angle in
radians). Every action is batched: ``act_image(x, g)`` takes ``x`` of shape ``(B, C, *spatial)``
and ``g`` of shape ``(B,)``.

A new *finite* group subclasses :class:`FiniteGroup` and only says how each element acts on one
tensor (the Cayley table is derived numerically). A new *continuous* group subclasses
:class:`Group` and implements its abstract methods — ``sample``, ``identity``, ``compose``,
``inverse``, ``act_image``, ``act_latent`` and ``evaluation_grid`` (the elements that metrics are
reported over) — and may override the optional hooks below them (``check_shape``,
``element_label``, ``parameter_axis``, ``balanced_split``, ``make_latent_action``, ``orbit_kind``,
``sample_moved``).
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Callable, Sequence

import torch

Op = Callable[[torch.Tensor], torch.Tensor]
Action = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class Group(ABC):
    """Interface every group implements. Elements are tensors with a leading batch dimension."""

    name: str = "group"
    spatial_dims: int = 2      # 2: images (B, C, H, W); 3: volumes (B, C, D, H, W)
    finite: bool = True
    has_balanced_split: bool = False   # True: ``balanced_split`` exists (``midpoint`` consistency)
    moved_away: float = 0.0            # default ``away`` of ``sample_moved`` (groups that measure it)

    # ------------------------------------------------------------------ required
    @abstractmethod
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` random elements (the training distribution of ``g``)."""

    @abstractmethod
    def identity(self, n: int = 1) -> torch.Tensor:
        """``n`` copies of the identity element."""

    @abstractmethod
    def compose(self, g: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """The element ``g h`` (apply ``h`` first, then ``g``)."""

    @abstractmethod
    def inverse(self, g: torch.Tensor) -> torch.Tensor:
        """The elements ``g⁻¹``."""

    @abstractmethod
    def act_image(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """``T_g x`` for images ``(B, C, *spatial)`` and one element per image."""

    @abstractmethod
    def act_latent(self, z: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """``Phi_g z`` for latent maps ``(B, C, *spatial)`` and one element per map."""

    @abstractmethod
    def evaluation_grid(self, n: int = 8, seed: int = 0) -> tuple[torch.Tensor, list[str]]:
        """``(elements, names)`` that metrics average and report over: every element of a finite
        group, a fixed grid of ``n`` elements of a continuous one (``seed`` for groups that must
        sample their grid)."""

    # ------------------------------------------------------------------ optional hooks
    def check_shape(self, shape: Sequence[int], what: str = "latent") -> None:
        """Raise ``ValueError`` if a ``(B, C, *spatial)`` tensor of this shape cannot be acted on."""
        if len(shape) != 2 + self.spatial_dims:
            raise ValueError(
                f"group {self.name!r} acts on {self.spatial_dims}-D maps of shape "
                f"(B, C, {', '.join('DHW'[3 - self.spatial_dims:])}); got {what} shape {tuple(shape)}")

    def element_label(self, g: torch.Tensor) -> str:
        """A short name for one element (rounded parameters unless a group knows better)."""
        return ",".join(f"{v:.2g}" for v in g.reshape(-1).tolist())

    def parameter_axis(self, g: torch.Tensor) -> tuple[torch.Tensor, str]:
        """One number per element ``(B,)`` to histogram, and its axis label."""
        return g.reshape(len(g), -1)[:, 0].double(), "first parameter of g"

    def balanced_split(self, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(h1, h2)`` with ``h2⁻¹∘h1 = g`` whose latent actions are equally inexact, so that
        ``Phi_h1 z(x) = Phi_h2 z(T_g x)`` is the equivariance condition with the interpolation
        error balanced between its two sides (the ``midpoint`` consistency loss)."""
        raise ValueError(f"group {self.name!r} has no balanced split of its elements, so it "
                         f"supports consistency 'direct' only")

    def make_latent_action(self, kind: str, channels: int) -> Action:
        """A latent action other than the exact ``act_latent`` (e.g. a learned one), by name."""
        raise ValueError(f"group {self.name!r} offers latent_action 'exact' only; got {kind!r}")

    def orbit_kind(self) -> str:
        """Which :func:`galib.evaluation.probe.orbit_invariants` suits this group's orbits:
        ``'moments'`` (invariant to any permutation of the orbit) unless a group knows better."""
        return "moments"

    def sample_moved(self, n: int, generator: torch.Generator | None = None,
                     away: float | None = None) -> torch.Tensor:
        """``n`` random *non-identity* elements ``(n, ...)`` (the transformations of probe
        protocols b and c). Finite groups: uniform over the elements other than the identity
        (element 0). Continuous groups: ``sample``, with any draw equal to the identity drawn
        again. ``away`` (default :attr:`moved_away`): how far from the identity a moved element
        must be, for groups that measure it (``so2``: radians); others ignore it."""
        if self.finite:
            if len(self) < 2:
                raise ValueError(f"group {self.name!r} has no element other than the identity")
            return torch.randint(1, len(self), (n,), generator=generator)
        g = self.sample(n, generator)
        ident = self.identity(1)[0].to(g.dtype)
        for _ in range(100):
            same = (g.reshape(n, -1) == ident.reshape(1, -1)).all(1)
            if not bool(same.any()):
                return g
            g[same] = self.sample(int(same.sum()), generator)
        raise ValueError(f"group {self.name!r}: sample keeps drawing the identity")

    def __len__(self) -> int:
        raise TypeError(f"group {self.name!r} is not finite")


class FiniteGroup(Group):
    """A finite group given by one function per element acting on the trailing spatial dims.

    ``ops[k](t)`` applies element ``k`` to a tensor whose last ``spatial_dims`` dims are spatial; the
    same op serves as ``T_g`` on images and ``Phi_g`` on latent maps (exact for 90° rotations and
    flips of square maps, and for cyclic shifts by whole latent cells).
    """

    def __init__(self, name: str, ops: Sequence[Op], names: Sequence[str], spatial_dims: int = 2,
                 probe_size: int = 5):
        self.name, self.ops, self._names, self.spatial_dims = name, list(ops), list(names), spatial_dims
        self.table = self._cayley_table(probe_size)             # (G, G): table[g, h] = index of g∘h
        self.inverses = (self.table == 0).int().argmax(dim=1)   # (G,)   element 0 is the identity

    def _cayley_table(self, size: int) -> torch.Tensor:
        probe = torch.randn((size,) * self.spatial_dims, generator=torch.Generator().manual_seed(0))
        images = torch.stack([op(probe) for op in self.ops]).flatten(1)        # (G, size**d)
        if not torch.equal(images[0], probe.flatten()):
            raise ValueError(f"group {self.name!r}: element 0 must be the identity")
        table = torch.empty(len(self.ops), len(self.ops), dtype=torch.long)
        for g, op_g in enumerate(self.ops):
            for h, op_h in enumerate(self.ops):
                hit = (images == op_g(op_h(probe)).flatten()).all(dim=1).nonzero()
                if len(hit) != 1:
                    raise ValueError(f"group {self.name!r} is not closed under composition")
                table[g, h] = hit.item()
        return table

    def __len__(self) -> int:
        return len(self.ops)

    def element_names(self) -> list[str]:
        return list(self._names)

    def elements(self) -> torch.Tensor:
        return torch.arange(len(self))

    def evaluation_grid(self, n: int = 8, seed: int = 0) -> tuple[torch.Tensor, list[str]]:
        return self.elements(), self.element_names()           # every element; n, seed unused

    def element_label(self, g: torch.Tensor) -> str:
        return self._names[int(g)]

    def orbit_kind(self) -> str:
        """``'fourier'`` for a cyclic group whose elements are ordered by powers of element 1 (as
        C4's are: table[1, k] = k + 1 mod G), where the orbit is only ever cyclically shifted."""
        if len(self) > 1:
            k = torch.arange(len(self))
            if torch.equal(self.table[1].cpu(), (k + 1) % len(self)):
                return "fourier"
        return "moments"

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randint(len(self), (n,), generator=generator)

    def identity(self, n: int = 1) -> torch.Tensor:
        return torch.zeros(n, dtype=torch.long)

    def compose(self, g: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return self.table.to(g.device)[g, h]

    def inverse(self, g: torch.Tensor) -> torch.Tensor:
        return self.inverses.to(g.device)[g]

    def _permutations(self, spatial: tuple[int, ...], device: torch.device) -> torch.Tensor | None:
        """``(G, N)`` index table with ``ops[k](t).flatten(-d) == t.flatten(-d)[..., perm[k]]`` for
        maps of this spatial shape, or ``None`` if some op is not a pure rearrangement of cells.

        Rotations, flips and rolls are; the table is found once per shape by applying each op to a
        map of cell indices (and checked on a random map) and cached.
        """
        cache = self.__dict__.setdefault("_perm_cache", {})
        if spatial not in cache:
            n, d = math.prod(spatial), len(spatial)
            index = torch.arange(n).view(spatial)
            probe = torch.randn(2, *spatial, generator=torch.Generator().manual_seed(0))
            try:
                perm = torch.stack([op(index).reshape(n) for op in self.ops])      # (G, N)
                ok = (torch.equal(perm.sort(dim=1).values, index.reshape(n).expand_as(perm))
                      and all(torch.equal(op(probe).flatten(-d), probe.flatten(-d)[:, p])
                              for op, p in zip(self.ops, perm)))
            except (RuntimeError, TypeError, ValueError):           # op not defined on index maps
                ok = False
            cache[spatial] = {torch.device("cpu"): perm} if ok else None
        if cache[spatial] is None:
            return None
        by_device = cache[spatial]
        if device not in by_device:
            by_device[device] = by_device[torch.device("cpu")].to(device)
        return by_device[device]

    def _act(self, t: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        check_elements(t, g)
        perm = self._permutations(tuple(t.shape[2:]), t.device)
        if perm is not None:                                    # one gather for the whole batch
            (B, C), N = t.shape[:2], perm.shape[1]
            if C > 1 and t.stride(1) == 1:                      # channels_last: keep that layout
                cells = t.movedim(1, -1).reshape(B, N, C)       # (B, N, C), a view
                out = cells.gather(1, perm[g].unsqueeze(2).expand(B, N, C))
                return out.view(B, *t.shape[2:], C).movedim(-1, 1)
            out = t.reshape(B, C, N).gather(2, perm[g].unsqueeze(1).expand(B, C, N))
            return out.view(t.shape)
        ks = torch.unique(g).tolist()
        if len(ks) == 1:                                        # common in evaluation: whole batch
            return self.ops[ks[0]](t)
        return apply_per_element(self.ops, t, g, ks)

    def act_image(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        self.check_shape(x.shape, "image")
        return self._act(x, g)

    def act_latent(self, z: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        self.check_shape(z.shape, "latent")
        return self._act(z, g)


class TwoSpaceFiniteGroup(FiniteGroup):
    """A finite group whose image ops ``T_g`` differ from its latent ops ``Phi_g``.

    The Cayley table is derived from ``latent_ops`` (on a ``probe_size`` map); ``image_ops[k]``
    must realise the same element on images (the tests check this on an equivariant map).
    """

    def __init__(self, name: str, image_ops: Sequence[Op], latent_ops: Sequence[Op],
                 names: Sequence[str], spatial_dims: int = 2, probe_size: int = 5):
        if len(image_ops) != len(latent_ops):
            raise ValueError(f"group {name!r}: {len(image_ops)} image ops vs {len(latent_ops)} latent ops")
        self.image_ops = list(image_ops)
        super().__init__(name, latent_ops, names, spatial_dims, probe_size)

    def act_image(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        self.check_shape(x.shape, "image")
        check_elements(x, g)
        return apply_per_element(self.image_ops, x, g, torch.unique(g).tolist())


# ----------------------------------------------------------------------------- shared helpers
def check_elements(t: torch.Tensor, g: torch.Tensor) -> None:
    """One group element per sample, or a ``ValueError`` naming both shapes."""
    if g.shape != t.shape[:1]:
        raise ValueError(f"need one group element per sample: elements {tuple(g.shape)}, "
                         f"tensor {tuple(t.shape)}")


def apply_per_element(ops: Sequence[Op], t: torch.Tensor, g: torch.Tensor, ks) -> torch.Tensor:
    """``ops[g[b]](t[b])`` for every sample, one vectorised op per distinct element in ``ks``."""
    out = torch.empty_like(t)
    for k in ks:
        idx = (g == k).nonzero().squeeze(1)
        out[idx] = ops[k](t[idx])
    return out


def require_square(name: str, shape: Sequence[int], what: str, dims: int = 2) -> None:
    """Raise unless the last ``dims`` sides of ``shape`` are equal."""
    side = tuple(shape[-dims:])
    if len(set(side)) != 1:
        raise ValueError(f"group {name!r} acts on square/cubic maps; got {what} of spatial size "
                         f"{'x'.join(map(str, side))} (make all spatial sides equal)")


def check_group_action(group: FiniteGroup, act: Action, z: torch.Tensor, atol: float = 1e-6) -> float:
    """Largest deviation from ``act(e) = id`` and ``act(g)∘act(h) = act(gh)`` over all pairs."""
    n, G = z.shape[0], len(group)
    worst = (act(z, group.identity(n)) - z).abs().max().item()
    for g in range(G):
        for h in range(G):
            gs, hs = torch.full((n,), g), torch.full((n,), h)
            lhs = act(act(z, hs), gs)
            rhs = act(z, group.compose(gs, hs))
            worst = max(worst, (lhs - rhs).abs().max().item())
    return worst


def homomorphism_error(act: Action, group: Group, z: torch.Tensor, g, h) -> float:
    """``‖Phi_g Phi_h z − Phi_gh z‖ / ‖Phi_gh z‖`` over the batch; ``g``, ``h``: (B,) or scalars."""
    def _el(e):
        e = torch.as_tensor(e, device=z.device)
        return e.expand(z.shape[0]) if e.dim() == 0 else e
    g, h = _el(g), _el(h)
    with torch.no_grad():
        lhs = act(act(z, h), g)
        rhs = act(z, group.compose(g, h))
        return float((lhs - rhs).norm() / rhs.norm().clamp_min(1e-30))
