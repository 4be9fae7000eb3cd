"""Groups that act on images (``T_g``) and on latent maps (``Phi_g``).

A group element is a tensor row: finite groups code each element as an ``int64`` index into
``elements()``; continuous groups (see :mod:`galib.groups_extra`) use float parameters. Every action
is batched: ``act_image(x, g)`` takes ``x`` of shape ``(B, C, *spatial)`` and ``g`` of shape ``(B,)``.

``FiniteGroup`` derives its Cayley table numerically from the actions themselves, so a new finite
group only has to say how each element acts on one tensor; ``check_group_action`` verifies the
axioms (``Phi_e = id``, ``Phi_g∘Phi_h = Phi_gh``) and is what the tests call.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch


class Group:
    """Interface every group implements. Elements are tensors with a leading batch dimension."""

    name: str = "group"
    spatial_dims: int = 2      # 2: images (B, C, H, W); 3: volumes (B, C, D, H, W)
    finite: bool = True

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    def identity(self, n: int = 1) -> torch.Tensor:
        raise NotImplementedError

    def compose(self, g: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """The element ``g h`` (apply ``h`` first, then ``g``)."""
        raise NotImplementedError

    def inverse(self, g: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def act_image(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def act_latent(self, z: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def check_shape(self, shape: Sequence[int], what: str = "latent") -> None:
        """Raise ``ValueError`` if a ``(B, C, *spatial)`` tensor of this shape cannot be acted on."""
        if len(shape) != 2 + self.spatial_dims:
            raise ValueError(
                f"group {self.name!r} acts on {self.spatial_dims}-D maps of shape "
                f"(B, C, {', '.join('DHW'[3 - self.spatial_dims:])}); got {what} shape {tuple(shape)}")

    def element_names(self) -> list[str]:
        return [str(i) for i in range(len(self))]

    has_balanced_split: bool = False   # True: ``balanced_split`` exists (``midpoint`` consistency)

    def balanced_split(self, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(h1, h2)`` with ``h2⁻¹∘h1 = g`` whose latent actions are equally inexact, so that
        ``Phi_h1 z(x) = Phi_h2 z(T_g x)`` is the equivariance condition with the interpolation
        error balanced between its two sides (the ``midpoint`` consistency loss)."""
        raise ValueError(f"group {self.name!r} has no balanced split of its elements, so it "
                         f"supports consistency 'direct' only")

    def make_latent_action(self, kind: str, channels: int):
        """A latent action other than the exact ``act_latent`` (e.g. a learned one), by name."""
        raise ValueError(f"group {self.name!r} offers latent_action 'exact' only; got {kind!r}")

    def __len__(self) -> int:
        raise TypeError(f"group {self.name!r} is not finite")


class FiniteGroup(Group):
    """A finite group given by one function per element acting on the trailing spatial dims.

    ``ops[k](t)`` applies element ``k`` to a tensor whose last ``spatial_dims`` dims are spatial; the
    same op serves as ``T_g`` on images and ``Phi_g`` on latent maps (exact for 90° rotations and
    flips of square maps, and for cyclic shifts by whole latent cells).
    """

    def __init__(self, name: str, ops: Sequence[Callable[[torch.Tensor], torch.Tensor]],
                 names: Sequence[str], spatial_dims: int = 2, probe_size: int = 5):
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
        if g.shape != t.shape[:1]:
            raise ValueError(f"need one group element per sample: elements {tuple(g.shape)}, "
                             f"tensor {tuple(t.shape)}")
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
        out = torch.empty_like(t)
        for k in ks:                                            # one vectorised op per element
            idx = (g == k).nonzero().squeeze(1)
            out[idx] = self.ops[k](t[idx])
        return out

    def act_image(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        self.check_shape(x.shape, "image")
        return self._act(x, g)

    def act_latent(self, z: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        self.check_shape(z.shape, "latent")
        return self._act(z, g)


class CyclicRotations(FiniteGroup):
    """C4: rotations by multiples of 90° in the (H, W) plane; ``rot90`` on images and latents.

    ``sample`` follows the paper: an angle uniform in [0°, 360°) rounded to the nearest multiple of
    90° (so 315°–360° rounds to 0°) — each of the four elements has probability 1/4.
    """

    def __init__(self):
        ops = [(lambda t, k=k: torch.rot90(t, k, dims=(-2, -1))) for k in range(4)]
        super().__init__("c4", ops, ["0°", "90°", "180°", "270°"])

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        angle = torch.rand(n, generator=generator, dtype=torch.float64) * 360.0
        return torch.round(angle / 90.0).long() % 4

    def check_shape(self, shape: Sequence[int], what: str = "latent") -> None:
        super().check_shape(shape, what)
        if shape[-1] != shape[-2]:
            raise ValueError(f"group 'c4' rotates square maps; got {what} of spatial size "
                             f"{shape[-2]}x{shape[-1]} (make H == W)")


def check_group_action(group: FiniteGroup, act: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                       z: torch.Tensor, atol: float = 1e-6) -> float:
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


_REGISTRY: dict[str, Callable[[], Group]] = {"c4": CyclicRotations}


def register_group(name: str, factory: Callable[[], Group]) -> None:
    _REGISTRY[name] = factory


def available_groups() -> list[str]:
    _load_extras()
    return sorted(_REGISTRY)


def _load_extras() -> None:
    try:                                                        # optional module with more groups
        import galib.groups_extra  # noqa: F401
    except ImportError as err:                                  # only a missing module is tolerated
        if getattr(err, "name", None) != "galib.groups_extra":
            raise


def get_group(name: str | Group) -> Group:
    """Group by name (``c4`` …); a ``Group`` instance passes through."""
    if isinstance(name, Group):
        return name
    _load_extras()
    if name not in _REGISTRY:
        raise ValueError(f"unknown group {name!r}; choose one of {sorted(_REGISTRY)}")
    return _REGISTRY[name]()


__all__ = ["Group", "FiniteGroup", "CyclicRotations", "check_group_action", "get_group",
           "register_group", "available_groups"]
