"""The paper's encoder/decoder, the ALD mask, and the autoencoder that splits its latent.

``GroupLatentAutoencoder`` takes *any* encoder/decoder pair whose latent ``(B, C, *spatial)`` the
group can act on. Its latent channels are split by ``ALDMask``: learnable logits ``alpha`` (one per
channel, shared by all inputs), ``p = sigmoid(alpha)``, hard mask ``M = 1[p > tau]`` and the
straight-through estimator ``M + p - p.detach()`` (forward exactly 0/1, backward ``dp/dalpha``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .groups import Group, get_group


def paper_encoder(in_channels: int = 1, latent_channels: int = 64, spatial_dims: int = 2) -> nn.Module:
    """Conv(in→32, k4 s2 p1) → LeakyReLU(0.2) → Conv(32→C, k4 s2 p1) → LeakyReLU(0.2): 28² → 7²."""
    Conv = nn.Conv2d if spatial_dims == 2 else nn.Conv3d
    return nn.Sequential(
        Conv(in_channels, 32, 4, 2, 1), nn.LeakyReLU(0.2),
        Conv(32, latent_channels, 4, 2, 1), nn.LeakyReLU(0.2))


def paper_decoder(out_channels: int = 1, latent_channels: int = 64, spatial_dims: int = 2) -> nn.Module:
    """Mirror of :func:`paper_encoder` with transposed convolutions, ending in Tanh ([-1, 1])."""
    ConvT = nn.ConvTranspose2d if spatial_dims == 2 else nn.ConvTranspose3d
    LastT = MatmulConvTranspose2d if spatial_dims == 2 else nn.ConvTranspose3d
    return nn.Sequential(
        ConvT(latent_channels, 32, 4, 2, 1), nn.LeakyReLU(0.2),
        LastT(32, out_channels, 4, 2, 1), nn.Tanh())


class MatmulConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` (same weights, same output) computed as one matmul + ``F.fold``.

    A transposed conv scatters ``x[b, :, i, j] @ W`` (a ``kh·kw`` patch per output channel) onto
    the output grid; ``F.fold`` does the overlap-add. On CPU this is 2-3x faster than oneDNN's
    kernel for the paper decoder's last layer (32 → 1 channel), forward plus backward. (``bmm``
    rather than a broadcast matmul: its input gradient comes out contiguous, not transposed, which
    keeps the LeakyReLU backward before it on its fast path.)
    """

    def forward(self, x: torch.Tensor, output_size=None) -> torch.Tensor:
        if x.dim() != 4 or self.groups != 1 or output_size is not None or self.padding_mode != "zeros":
            return super().forward(x, output_size)
        B, C, H, W = x.shape
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = self.kernel_size, self.stride, self.padding, self.dilation
        out_hw = ((H - 1) * sh - 2 * ph + dh * (kh - 1) + self.output_padding[0] + 1,
                  (W - 1) * sw - 2 * pw + dw * (kw - 1) + self.output_padding[1] + 1)
        w = self.weight.flatten(1).t().expand(B, -1, -1)                   # (B, C_out*kh*kw, C)
        cols = torch.bmm(w, x.flatten(2))    # (B, C_out*kh*kw, H*W); bmm: grad of x stays NCHW
        y = F.fold(cols, out_hw, self.kernel_size, self.dilation, self.padding,
                   self.stride)                                            # (B, C_out, H_out, W_out)
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1)


class ALDMask(nn.Module):
    """Adaptive Latent Disentanglement mask over ``channels`` latent channels.

    ``trainable=False`` with ``init_logits`` gives a fixed (manual) partition.
    """

    def __init__(self, channels: int, tau: float = 0.5, trainable: bool = True,
                 init_logits: torch.Tensor | None = None):
        super().__init__()
        if not 0.0 < tau < 1.0:
            raise ValueError(f"tau must lie in the open interval (0, 1); got {tau!r}")
        self.tau = float(tau)
        logits = torch.randn(channels) * 0.1 if init_logits is None else init_logits.float().clone()
        self.logits = nn.Parameter(logits, requires_grad=trainable)  # (C,)

    def probs(self) -> torch.Tensor:
        return torch.sigmoid(self.logits)

    def hard(self) -> torch.Tensor:
        """The 0/1 mask, ``1[sigmoid(alpha) > tau]``, without gradient."""
        return (self.probs() > self.tau).to(self.logits.dtype).detach()

    def forward(self) -> torch.Tensor:
        p = self.probs()
        return self.hard() + (p - p.detach())    # (C,) exactly 0/1 forward, dp/dalpha backward


LatentAction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def split_latent(z: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(z_i, z_v) = ((1 - M)⊙z, M⊙z)`` for a per-channel mask ``(C,)``; ``mask=None`` means every
    channel is variant (``z_i = 0``, the reading of a model without a mask)."""
    if mask is None:
        return torch.zeros_like(z), z
    m = mask.view(1, -1, *([1] * (z.dim() - 2)))              # (1, C, 1, 1)
    return (1 - m) * z, m * z


ZI_DESIGNS = ("paper", "pooled", "orbit", "spectrum")   # the design of z_i


class OrbitSpectrum(nn.Module):
    """The ``spectrum`` design of the invariant part: per latent cell, the invariants of the values
    that cell takes along the orbit, mapped back to ``channels`` by one learned linear map shared by
    every cell (so the code is a symmetric map, exactly invariant when the orbit is).

    ``kind='fourier'`` (a cyclic group ordered by powers of a generator): the orbit mean and the
    DFT magnitudes ``|X_k| / G`` for ``k = 1 .. G//2`` (the mean keeps its sign, a magnitude would
    not). ``kind='moments'`` (any other group): mean, standard deviation and maximum along the
    orbit. The map starts as the identity on the mean and zero elsewhere, i.e. as the ``orbit``
    design, and learns how much of the rest of the spectrum to use.
    """

    def __init__(self, channels: int, orbit_size: int, kind: str = "fourier"):
        super().__init__()
        if kind not in ("fourier", "moments"):
            raise ValueError(f"unknown orbit spectrum kind {kind!r}; choose 'fourier' or 'moments'")
        self.kind = kind
        n_inv = orbit_size // 2 + 1 if kind == "fourier" else 3
        self.map = nn.Linear(n_inv * channels, channels)
        with torch.no_grad():
            self.map.weight.zero_()
            self.map.bias.zero_()
            self.map.weight[:, :channels] = torch.eye(channels)     # the mean comes first

    def invariants(self, orbit: torch.Tensor) -> torch.Tensor:
        """``(B, K, C, *S)`` per-cell invariants of an orbit stack ``(B, G, C, *S)``."""
        mean = orbit.mean(1, keepdim=True)
        if self.kind == "fourier":
            mags = torch.fft.rfft(orbit.float(), dim=1).abs()[:, 1:] / orbit.shape[1]
            return torch.cat([mean, mags.to(orbit.dtype)], 1)
        return torch.cat([mean, orbit.std(1, unbiased=False, keepdim=True),
                          orbit.amax(1, keepdim=True)], 1)

    def forward(self, orbit: torch.Tensor) -> torch.Tensor:
        inv = self.invariants(orbit).flatten(1, 2)                  # (B, K*C, *S)
        return self.map(inv.movedim(1, -1)).movedim(-1, 1)          # (B, C, *S)


class GroupLatentAutoencoder(nn.Module):
    """Encoder–decoder whose latent ``z`` splits into variant ``z_v = M⊙z`` and invariant ``z_i``.

    ``latent_action`` (default: the group's exact ``act_latent``) may be an ``nn.Module`` with
    parameters of its own (a learned representation of the group); it is then trained jointly.

    ``zi_design`` chooses what the invariant part is (:meth:`invariant_code`): ``paper`` — the
    masked map ``(1 − M)⊙z`` itself; ``pooled`` — its mean over the latent grid, per channel,
    broadcast back to the grid; ``orbit`` — its average over the group orbit
    ``mean_g Phi_g((1 − M)⊙z)`` (a symmetric map); ``spectrum`` — a learned per-cell linear map
    (:class:`OrbitSpectrum`) of the orbit's invariant spectrum at each latent cell (the orbit mean
    and the DFT magnitudes along a cyclic orbit, or the mean, std and max along any other), which
    starts as the orbit mean. The last three are exactly invariant whenever the encoder is exactly
    equivariant; ``L_inv`` and the decoder see the code.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, group: Group | str,
                 latent_channels: int, tau: float = 0.5, latent_action: LatentAction | None = None,
                 mask: ALDMask | None = None, zi_design: str = "paper"):
        super().__init__()
        if zi_design not in ZI_DESIGNS:
            raise ValueError(f"unknown zi_design {zi_design!r}; choose one of {list(ZI_DESIGNS)}")
        self.zi_design = zi_design
        self.encoder, self.decoder = encoder, decoder
        self.group = get_group(group)
        if zi_design == "spectrum":
            self.spectrum = OrbitSpectrum(latent_channels, len(self.group.evaluation_grid()[0]),
                                          self.group.orbit_kind())
        self.latent_channels = latent_channels
        self.mask = mask if mask is not None else ALDMask(latent_channels, tau)
        if isinstance(latent_action, nn.Module):
            self.latent_action = latent_action               # registered: saved and trained
        else:
            self._action_fn = latent_action or self.group.act_latent

    @property
    def tau(self) -> float | None:
        return None if self.mask is None else self.mask.tau

    def act(self, z_v: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        if hasattr(self, "latent_action"):
            return self.latent_action(z_v, g)
        return self._action_fn(z_v, g)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        z = self.encoder(x)                                   # (B, C, 7, 7) for the paper model
        if z.shape[1] != self.latent_channels:
            raise ValueError(f"encoder gives {z.shape[1]} latent channels, model was built for "
                             f"latent_channels={self.latent_channels}")
        return z

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def split(self, z: torch.Tensor, hard: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """``(z_i, z_v)`` with ``z_i`` the invariant code; ``hard=True`` uses the 0/1 mask
        without gradient to the logits."""
        mask = None if self.mask is None else self.mask.hard() if hard else self.mask()
        z_i, z_v = split_latent(z, mask)
        return self.invariant_code(z_i), z_v

    def invariant_code(self, z_i: torch.Tensor) -> torch.Tensor:
        """The invariant part as the decoder and ``L_inv`` see it, same shape as ``z_i``."""
        if self.zi_design == "paper":
            return z_i
        if self.zi_design == "pooled":
            return z_i.mean(dim=tuple(range(2, z_i.dim())), keepdim=True).expand_as(z_i)
        els, _ = self.group.evaluation_grid()
        orbit = torch.stack([self.group.act_latent(z_i, e.unsqueeze(0).expand(len(z_i), *e.shape)
                                                   .to(z_i.device)) for e in els], 1)  # (B, G, C, h, w)
        if self.zi_design == "spectrum":
            return self.spectrum(orbit)
        return orbit.mean(1)                                    # (B, C, h, w) symmetric map

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> dict[str, torch.Tensor]:
        """Encode ``x``, act on its variant part with ``g`` and decode the prediction of ``T_g x``."""
        z = self.encode(x)
        z_i, z_v = self.split(z)
        phi = self.act(z_v, g)
        return {"z": z, "z_i": z_i, "z_v": z_v, "phi_z_v": phi, "recon": self.decode(z_i + phi)}

    def hard_mask(self) -> torch.Tensor | None:
        """The 0/1 mask ``(C,)`` (1: variant); ``None`` for a model without one (``mask='none'``)."""
        return None if self.mask is None else self.mask.hard()

    def variant_fraction(self) -> float | None:
        return None if self.mask is None else self.mask.hard().mean().item()


MASKS = ("learned", "manual", "random", "none")


def fixed_mask_channels(kind: str, channels: int, n_variant: int | None = None,
                        seed: int = 0) -> torch.Tensor:
    """The variant channels ``(n_variant,)`` of a fixed mask: the first ones (``manual``) or a
    random draw from ``seed`` (``random``; its own generator, the global RNG is untouched).
    ``n_variant`` defaults to half the channels."""
    n = channels // 2 if n_variant is None else n_variant
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= channels:
        raise ValueError(f"mask_variant must be an integer in 0..{channels} (the latent channels) "
                         f"or None for half; got {n_variant!r}")
    if kind == "manual":
        return torch.arange(n)
    return torch.randperm(channels, generator=torch.Generator().manual_seed(seed))[:n].sort().values


@dataclass(frozen=True)
class ModelOptions:
    """How :func:`build_model` splits and acts on the latent (every default is the paper's).

    ``mask`` (:data:`MASKS`): ``'learned'`` is the ALD mask; ``'manual'`` fixes the first
    ``mask_variant`` channels variant (default half), ``'random'`` a random set of that size drawn
    from ``mask_seed`` (the control for the learned mask); ``'none'``: no mask (the plain
    autoencoder; :class:`~galib.losses.PairLoss` trains it without the group). ``zi_design`` (:data:`ZI_DESIGNS`):
    see :class:`GroupLatentAutoencoder`. ``latent_action``: ``Phi_g`` (default: the group's
    exact ``act_latent``; an ``nn.Module`` is trained with the model).
    """
    mask: str = "learned"
    mask_variant: int | None = None
    mask_seed: int = 0
    zi_design: str = "paper"
    latent_action: LatentAction | None = None


def build_model(group: Group | str = "c4", latent_channels: int = 64, tau: float = 0.5,
                in_channels: int = 1, options: ModelOptions = ModelOptions()) -> GroupLatentAutoencoder:
    """The paper model for ``group``; ``options`` (:class:`ModelOptions`) chooses the mask, the
    invariant design and the latent action."""
    mask = options.mask
    group = get_group(group)
    if mask not in MASKS:
        raise ValueError(f"unknown mask {mask!r}; choose one of {list(MASKS)}")
    if latent_channels < 1:
        raise ValueError(f"latent_channels must be a positive integer; got {latent_channels!r}")
    enc = paper_encoder(in_channels, latent_channels, group.spatial_dims)
    dec = paper_decoder(in_channels, latent_channels, group.spatial_dims)
    ald = None
    if mask in ("manual", "random"):
        logits = torch.full((latent_channels,), -10.0)
        logits[fixed_mask_channels(mask, latent_channels, options.mask_variant, options.mask_seed)] = 10.0
        ald = ALDMask(latent_channels, tau, trainable=False, init_logits=logits)
    model = GroupLatentAutoencoder(enc, dec, group, latent_channels, tau, options.latent_action, ald,
                                   options.zi_design)
    if mask == "none":
        # Built with a learned mask and then without it: its initial draw is still made, so the random
        # stream after it (the data order, the pairs) is that of every autoencoder trained before.
        model.mask = None
    return model
