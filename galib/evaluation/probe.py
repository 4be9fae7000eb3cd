"""Linear probes on frozen latent features, and orbit-invariant feature maps.

* :func:`fit_probe` fits a multinomial logistic regression with full-batch L-BFGS on standardised
  features, choosing the L2 strength on a validation split. It is deterministic: weights start at
  zero, there is no mini-batching and no random number is drawn (the one-off check of the packed
  products uses its own seeded generator). Each loss evaluation is two skinny products with the
  N x F design, written out by hand (no autograd) on a design that MKL packs once per fit.
* :func:`orbit_invariants` turns a stacked group orbit ``{Phi_g z_v : g in G}`` into features that
  do not change when the input is transformed (the orbit axis is only rolled or permuted).
* :func:`run_protocols` (and its older spelling :func:`evaluate_protocols`) runs the three probe
  protocols of the linear-probe notebook, with validation accuracies and per-element accuracies.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

DEFAULT_L2_GRID = (1e-4, 1e-3, 1e-2, 1e-1)


@dataclass
class ProbeResult:
    """A fitted probe: ``logits = ((X - mean) * inv_std) @ W.T + b``."""
    W: torch.Tensor              # (K, F)
    b: torch.Tensor              # (K,)
    mean: torch.Tensor           # (F,) train feature mean
    inv_std: torch.Tensor        # (F,) 1/std, 0 for constant features
    classes: torch.Tensor        # (K,) original label values, sorted
    l2: float                    # chosen L2 strength
    val_accuracy: float          # validation accuracy of the chosen l2
    val_scores: dict = field(default_factory=dict)  # {l2: validation accuracy} for the whole grid
    n_iter: int = 0              # L-BFGS iterations the chosen l2 took (max_iter: budget spent)
    grad_norm: float = float("nan")  # norm of the loss gradient where it stopped (0: converged)

    def logits(self, X: torch.Tensor, chunk: int = 8192) -> torch.Tensor:
        return self._logits_of(_standardised_chunks(X, self.mean, self.inv_std, chunk))  # (N, K)

    @torch.no_grad()
    def _logits_of(self, chunks) -> torch.Tensor:
        """Logits (N, K) of standardised rows given as chunks (n_i, F)."""
        out = [z @ self.W.T + self.b for z in chunks]
        return torch.cat(out) if out else self.W.new_zeros(0, self.W.shape[0])

    def predict(self, X: torch.Tensor) -> torch.Tensor:
        """Predicted labels (N,), in the label values seen at training time."""
        return self.classes[self.logits(X).argmax(1)]

    def accuracy(self, X: torch.Tensor, y: torch.Tensor) -> float:
        return self._accuracy_of(self.logits(X), y)

    def _accuracy_of(self, logits: torch.Tensor, y: torch.Tensor) -> float:
        pred = self.classes[logits.argmax(1)]                          # (N,)
        return float((pred == y.reshape(-1).to(self.classes.device)).double().mean())


def standardise(X: torch.Tensor, mean: torch.Tensor, inv_std: torch.Tensor) -> torch.Tensor:
    """Rows ``X`` (N, F) standardised as a probe sees them: ``(X - mean) * inv_std`` in the dtype
    and on the device of ``mean`` (a :class:`ProbeResult`'s ``mean`` and ``inv_std``)."""
    return (X.to(mean.device, mean.dtype) - mean) * inv_std           # (N, F)


def _standardised_chunks(X: torch.Tensor, mean: torch.Tensor, inv_std: torch.Tensor,
                         chunk: int = 8192):
    """The rows of ``X`` (flattened to (N, F)) standardised, ``chunk`` rows at a time."""
    X = X.flatten(1)
    return (standardise(X[i:i + chunk], mean, inv_std) for i in range(0, X.shape[0], chunk))


SOLVERS = ("warm-path", "preconditioned")
PRECONDITIONED = {"solver": "preconditioned", "max_iter": 50}   # the evidence profile's probe (docs/performance.md)
PRECONDITION_ROWS = 8192         # rows of the preconditioner's covariance (at least 2F when F is larger)
PRECONDITION_DELTA = 1.0         # its ridge, relative to the mean variance (1 for standardised features)


def fit_probe(X_train: torch.Tensor, y_train: torch.Tensor, X_val: torch.Tensor,
              y_val: torch.Tensor, l2_grid=DEFAULT_L2_GRID, max_iter: int = 50,
              dtype: torch.dtype = torch.float32, solver: str = "warm-path") -> ProbeResult:
    """Multinomial logistic regression, L2 chosen by validation accuracy.

    Features (flattened to (N, F)) are standardised with the train mean/std; a feature whose std
    is ~0 relative to its mean maps to 0. The loss is mean cross-entropy + ``l2 * ||W||^2``
    (bias unpenalised), minimised by full-batch L-BFGS (strong-Wolfe line search, at most
    ``max_iter`` iterations); the l2 with the best validation accuracy wins, ties going to the
    larger l2. Deterministic: nothing is random.

    ``solver``:

    * ``"warm-path"`` (default): the grid from the largest l2 down, each fit warm-started from the
      previous one, ``max_iter`` iterations per l2.
    * ``"preconditioned"`` (:data:`PRECONDITIONED`; the evidence profile's): every l2 of the grid is
      fitted at once, from zero, as one
      problem (one product with ``len(l2_grid) * K`` rows per loss evaluation), in coordinates
      preconditioned by the Cholesky factor of ``C + δ I``, where ``C`` is the features'
      covariance on up to :data:`PRECONDITION_ROWS` evenly spaced training rows and δ
      (:data:`PRECONDITION_DELTA`) the mean variance. The preconditioner only changes the path:
      the loss, the penalty and the optimum are those of the original problem. It squeezes the
      high-variance directions that make plain L-BFGS slow without blowing up the low-variance
      ones (a full whitening, δ → 0, reaches a low loss fast but leaves large weights on
      directions that barely vary on upright images, and protocol b's accuracy then falls by up
      to 0.04 before it recovers). At 48,000 training images its accuracies agree with the warm
      path's (100 iterations per l2) within 0.002 above chance at a third of the cost; on 2,000
      images protocol b can differ by far more (docs/performance.md), so it is not the default.

    The loss and its gradient are written out (no autograd, :func:`loss_and_grad`) on the design
    packed once per fit (:class:`Design`).
    """
    if solver not in SOLVERS:
        raise ValueError(f"unknown probe solver {solver!r}; choose one of {SOLVERS}")
    X_train, X_val = X_train.flatten(1), X_val.flatten(1)
    y_train, y_val = y_train.reshape(-1), y_val.reshape(-1)
    classes, yt = torch.unique(y_train, sorted=True, return_inverse=True)  # (K,), (N,)
    Z, mean, inv_std = _standardised_design(X_train, dtype)            # Z (N, F)
    val = list(_standardised_chunks(X_val, mean, inv_std))             # as res.accuracy cuts it
    grid = sorted((float(v) for v in l2_grid), reverse=True)
    if solver == "preconditioned":
        fits = _fit_preconditioned(Z, yt.to(mean.device), classes.numel(), grid, max_iter)
    else:
        fits = _fit_warm_path(Z, yt.to(mean.device), classes.numel(), grid, max_iter)
    best, scores = None, {}
    for l2, (W, b, n_iter, grad_norm) in zip(grid, fits):
        res = ProbeResult(W, b, mean, inv_std, classes, l2, 0.0, n_iter=n_iter, grad_norm=grad_norm)
        res.val_accuracy = res._accuracy_of(res._logits_of(val), y_val)  # = .accuracy(X_val, y_val)
        scores[l2] = res.val_accuracy
        if best is None or res.val_accuracy > best.val_accuracy:      # strict: ties keep larger l2
            best = res
    best.val_scores = scores
    return best


def _standardised_design(X: torch.Tensor, dtype: torch.dtype):
    """``(Z, mean, inv_std)``: ``X`` (N, F) centred and scaled by its population std (0 for a
    feature whose std is ~0 relative to its mean)."""
    Xf = X.to(dtype)
    mean = Xf.mean(0)                                                  # (F,)
    Z = Xf - mean                                                      # (N, F) centred
    del Xf
    std = Z.pow(2).mean(0).sqrt()                                      # (F,) population std
    tol = 1e-6 * mean.abs().clamp(min=1.0)
    inv_std = torch.where(std > tol, 1.0 / std.clamp(min=1e-30), torch.zeros_like(std))
    return Z.mul_(inv_std), mean, inv_std


def _fit_warm_path(Z, yt, K, grid, max_iter) -> list:
    """The old solver: ``[(W, b, iterations, gradient norm)]`` per l2 of ``grid`` (largest
    first), each warm-started from the previous one."""
    design = Design(Z, K)
    W = torch.zeros(K, Z.shape[1], dtype=Z.dtype, device=Z.device)   # (K, F)
    b = torch.zeros(K, dtype=Z.dtype, device=Z.device)               # (K,)
    del Z
    out = []
    for l2 in grid:
        n_iter, grad_norm = _lbfgs(design, W, b, yt, l2, max_iter)
        out.append((W.clone(), b.clone(), n_iter, grad_norm))
    return out


def _fit_preconditioned(Z, yt, K, grid, max_iter) -> list:
    """Every l2 of ``grid`` fitted at once in preconditioned coordinates: ``[(W, b, iterations,
    gradient norm)]`` per l2 (the joint problem's iterations; the norm of each l2's own gradient
    at its returned weights, in the original coordinates: one more evaluation)."""
    P = _preconditioner(Z)                                             # (F, F)
    design = Design(Z, K * len(grid))
    V = torch.zeros(len(grid), K, Z.shape[1], dtype=Z.dtype, device=Z.device)  # (L, K, F)
    b = torch.zeros(len(grid), K, dtype=Z.dtype, device=Z.device)     # (L, K)
    del Z
    n_iter, _ = _lbfgs(design, V, b, yt, tuple(grid), max_iter, P)
    W, b = V.detach() @ P.T, b.detach()                                # (L, K, F) original coordinates
    _, dW, db = loss_and_grad(design, W, b, yt, tuple(grid))
    norms = torch.cat([dW.flatten(1), db], 1).norm(dim=1)              # (L,)
    return [(W[i].clone(), b[i].clone(), n_iter, float(norms[i])) for i in range(len(grid))]


def _preconditioner(Z: torch.Tensor) -> torch.Tensor:
    """``P = L^(-T)`` (F, F) for the Cholesky factor ``L L^T = C + δ I`` of the covariance ``C`` of
    up to ``max(PRECONDITION_ROWS, 2F)`` evenly spaced rows of ``Z`` (δ: :data:`PRECONDITION_DELTA`
    times the mean variance): ``Z P`` has its large-variance directions squeezed to about unit
    variance; ``W = V P^T`` maps the fitted ``V`` back. (A Cholesky factor costs a tenth of an
    eigendecomposition.)"""
    n, f = Z.shape
    step = max(1, n // max(PRECONDITION_ROWS, 2 * f))
    rows = Z[::step]
    cov = rows.T @ rows / rows.shape[0]                                # (F, F)
    delta = PRECONDITION_DELTA * max(float(cov.diagonal().mean()), 1e-12)
    cov.diagonal().add_(delta)
    chol = torch.linalg.cholesky(cov.double())                         # (F, F) lower
    eye = torch.eye(f, dtype=chol.dtype, device=chol.device)
    return torch.linalg.solve_triangular(chol, eye, upper=False).T.to(Z.dtype)   # L^(-T)


def _lbfgs(design: "Design", W: torch.Tensor, b: torch.Tensor, yt: torch.Tensor, l2s,
           max_iter: int, P: torch.Tensor | None = None) -> tuple[int, float]:
    """Minimise the probe loss, summed over the l2 values ``l2s`` (one block of ``W`` per value),
    from ``W`` (K, F) or (L, K, F) and ``b`` (K,) or (L, K), updated in place: one
    ``torch.optim.LBFGS`` step (fresh history). With ``P`` the weights are preconditioned coordinates
    (original ``W = V P^T``). Returns its iterations and the gradient norm where it stopped — the
    last evaluation's when the line search ended there (the usual case: it is the same point, bit
    for bit), else one more evaluation."""
    opt = torch.optim.LBFGS([W, b], lr=1.0, max_iter=max_iter, history_size=20,
                            line_search_fn="strong_wolfe", tolerance_grad=1e-6,
                            tolerance_change=1e-10)
    last = {}

    def closure():
        loss, W.grad, b.grad = loss_and_grad(design, W, b, yt, l2s, P)
        last.update(W=W.clone(), b=b.clone(), grad=(W.grad, b.grad))
        return loss

    opt.step(closure)
    if not (torch.equal(last["W"], W) and torch.equal(last["b"], b)):
        closure()
    grad = torch.cat([last["grad"][0].flatten(), last["grad"][1].flatten()]).norm()
    return int(opt.state[W].get("n_iter", 0)), float(grad)


@torch.no_grad()
def loss_and_grad(design: "Design", W: torch.Tensor, b: torch.Tensor, yt: torch.Tensor,
                  l2s, P: torch.Tensor | None = None):
    """Mean cross-entropy of ``Z @ W.T + b`` against ``yt`` (N,) plus ``l2 * ||W||^2``, and its
    gradient, written out: ``(loss (), dW, db)`` in the shapes of ``W`` and ``b``. ``W`` (K, F)
    with one l2 (a float): the old protocol's arithmetic, bit for bit. ``W`` (L, K, F) with ``l2s``
    (L values): the sum of the L problems, all in one product. With ``P`` (F, F), ``W`` holds
    preconditioned coordinates ``V`` (original weights ``V P^T``; gradient ``dW_orig P``). Logits
    are kept class-major. Counted by :func:`count_evaluations`."""
    for count in _COUNTS:
        count.add(yt.numel(), W.numel())
    if W.dim() == 2 and P is None:
        return _loss_and_grad_one(design, W, b, yt, float(l2s if isinstance(l2s, (int, float)) else l2s[0]))
    return _loss_and_grad_many(design, W, b, yt, tuple(l2s), P)


def _loss_and_grad_one(design: "Design", W: torch.Tensor, b: torch.Tensor, yt: torch.Tensor, l2: float):
    n = yt.numel()
    logits = design.forward(W).add_(b[:, None])                        # (K, N)
    lse = torch.logsumexp(logits, 0)                                   # (N,)
    picked = logits.gather(0, yt[None]).squeeze(0)                     # (N,) true-class logit
    loss = (lse - picked).mean() + l2 * W.pow(2).sum()
    p = logits.sub_(lse).exp_()                                        # (K, N) softmax
    p.scatter_add_(0, yt[None], torch.full_like(lse, -1.0)[None]).div_(n)  # (K, N) dloss/dlogits
    return loss, design.backward(p).add_(W, alpha=2 * l2), p.sum(1)    # (), (K, F), (K,)


def _loss_and_grad_many(design: "Design", W: torch.Tensor, b: torch.Tensor, yt: torch.Tensor,
                        l2s: tuple, P: torch.Tensor | None):
    n, L = yt.numel(), len(l2s)
    Wo = W if P is None else W @ P.T                                   # original coordinates
    K, F = Wo.shape[-2], Wo.shape[-1]
    logits = design.forward(Wo.reshape(L * K, F)).add_(b.reshape(L * K, 1)).view(L, K, n)
    lse = torch.logsumexp(logits, 1, keepdim=True)                     # (L, 1, N)
    picked = logits.gather(1, yt.view(1, 1, n).expand(L, 1, n))         # (L, 1, N) true-class logit
    pen = torch.tensor(l2s, dtype=Wo.dtype, device=Wo.device).view(L, 1, 1)
    Wl = Wo.view(L, K, F)
    loss = (lse - picked).sum() / n + (pen * Wl.pow(2)).sum()
    p = logits.sub_(lse).exp_()                                        # (L, K, N) softmax
    p.scatter_add_(1, yt.view(1, 1, n).expand(L, 1, n), torch.full_like(lse, -1.0)).div_(n)
    dW = design.backward(p.view(L * K, n)).view(L, K, F).add_(Wl * (2 * pen))
    if P is not None:
        dW = dW @ P
    return loss, dW.view(W.shape), p.sum(2).view(b.shape)              # (), like W, like b


class Design:
    """The standardised features ``Z`` (N, F) of one fit, for the two products each loss
    evaluation takes: ``forward(W) = W @ Z.T`` (K, N) and ``backward(P) = P @ Z`` (K, F).

    With K = 10 classes both are skinny and MKL would repack the N x F matrix on every call. On
    a CPU with MKL and float32, ``Z`` and ``Z.T`` are packed once (``cblas_sgemm_pack`` for K
    rows, through ``torch.ops.mkl._mkl_reorder_linear_weight`` / ``_mkl_linear``) and ``Z``
    itself is dropped (the packs hold ~2.4x its memory at 10,000+ rows); elsewhere, or if a small
    check of the packed products fails, plain matmuls on ``Z``.
    """

    def __init__(self, Z: torch.Tensor, K: int, pack: bool | None = None):
        self.K, self.Z, self.packs = K, Z, None                        # Z (N, F)
        pack = _PACK if pack is None else pack
        if pack and Z.device.type == "cpu" and Z.dtype == torch.float32:
            self.packs = _mkl_packs(Z, K)
            if self.packs is not None:
                self.Z = None

    @property
    def packed(self) -> bool:
        return self.packs is not None

    def forward(self, W: torch.Tensor) -> torch.Tensor:               # W (K, F) -> (K, N)
        if self.packs is None:
            return (self.Z @ W.T).T                                    # W @ Z.T is ~1.6x slower
        (zp, z_like), _ = self.packs
        return torch.ops.mkl._mkl_linear(W, zp, z_like, None, self.K)

    def backward(self, P: torch.Tensor) -> torch.Tensor:              # P (K, N) -> (K, F)
        if self.packs is None:
            return P @ self.Z
        _, (ztp, zt_like) = self.packs
        return torch.ops.mkl._mkl_linear(P.contiguous(), ztp, zt_like, None, self.K)


_PACK = True                            # pack the design where MKL allows (switched by packing())


@contextmanager
def packing(enabled: bool):
    """Within the block, fits pack their design where MKL allows (``enabled``, the default
    outside) or always use plain matmuls (``False``: what the packing saves, for benchmarks)."""
    global _PACK
    before, _PACK = _PACK, bool(enabled)
    try:
        yield
    finally:
        _PACK = before


@dataclass
class EvaluationCount:
    """What the probe fits did while :func:`count_evaluations` was open: loss evaluations
    (``evals``, each a :func:`loss_and_grad` call) and their floating-point operations (``flops``:
    two products of N x F x rows per evaluation, two operations per multiply-add)."""
    evals: int = 0
    flops: float = 0.0

    def add(self, rows: int, weights: int) -> None:
        """Count one evaluation on ``rows`` design rows with ``weights`` weights (``W.numel()``)."""
        self.evals += 1
        self.flops += 4.0 * rows * weights


_COUNTS: list[EvaluationCount] = []     # the counts open now (count_evaluations)


@contextmanager
def count_evaluations():
    """Count the loss evaluations of every probe fit run within the block: ``with
    count_evaluations() as count: ...`` then ``count.evals``, ``count.flops``
    (:class:`EvaluationCount`). Blocks may nest; each counts what ran inside it."""
    count = EvaluationCount()
    _COUNTS.append(count)
    try:
        yield count
    finally:
        _COUNTS.remove(count)


def _mkl_packs(Z: torch.Tensor, K: int, check_rows: int = 64):
    """``((pack(Z), shape of Z), (pack(Z.T), shape of Z.T))`` for ``_mkl_linear`` with K rows, or
    None where this torch has no MKL packing or the packed products disagree with plain ones on
    the first ``check_rows`` rows. The shape stand-ins are zero-stride views (no memory): the
    packed path reads only their sizes."""
    n, f = Z.shape
    try:
        ztp = torch.ops.mkl._mkl_reorder_linear_weight(Z.T, K)        # packs a contiguous copy
        zp = torch.ops.mkl._mkl_reorder_linear_weight(Z, K)
    except (AttributeError, RuntimeError):
        return None
    if not (zp.is_mkldnn and ztp.is_mkldnn):
        return None
    packs = ((zp, Z.new_empty(()).expand(n, f)), (ztp, Z.new_empty(()).expand(f, n)))
    m = min(check_rows, n)
    g = torch.Generator().manual_seed(0)
    W = torch.randn(K, f, generator=g)                                 # (K, F)
    P = torch.zeros(K, n)
    P[:, :m] = torch.randn(K, m, generator=g)                          # (K, N), first m columns
    fwd = torch.ops.mkl._mkl_linear(W, zp, packs[0][1], None, K)[:, :m]
    bwd = torch.ops.mkl._mkl_linear(P, ztp, packs[1][1], None, K)
    ok = (torch.allclose(fwd, W @ Z[:m].T, rtol=1e-4, atol=1e-3)
          and torch.allclose(bwd, P[:, :m] @ Z[:m], rtol=1e-4, atol=1e-3))
    return packs if ok else None


# ----------------------------------------------------------------------------- orbit invariants

def orbit_invariants(orbit: torch.Tensor, kind: str = "fourier") -> torch.Tensor:
    """Features of a stacked orbit (B, G, ...) that ignore how the orbit axis is ordered.

    * ``"fourier"``: magnitudes of the DFT along the orbit axis, (B, G'*F) with G' = G//2 + 1
      for real input (``rfft``; the other half is redundant) or G for complex input. Invariant to
      cyclic shifts of the orbit axis, i.e. for a cyclic group ordered by powers of the generator.
    * ``"sorted"``: values sorted along the orbit axis, (B, G*F). Invariant to any permutation,
      hence to any finite group.
    * ``"moments"``: mean, std (population) and max along the orbit axis, (B, 3*F). Invariant to
      any permutation.
    """
    if orbit.dim() < 2:
        raise ValueError(f"expected (B, G, ...), got shape {tuple(orbit.shape)}")
    o = orbit.flatten(2)                                               # (B, G, F)
    if kind == "fourier":
        spec = torch.fft.fft(o, dim=1) if o.is_complex() else torch.fft.rfft(o, dim=1)
        return spec.abs().flatten(1)                                   # (B, G'*F)
    if kind == "sorted":
        return o.sort(dim=1).values.flatten(1)                         # (B, G*F)
    if kind == "moments":
        stats = (o.mean(1), o.std(1, unbiased=False), o.amax(1))       # 3 x (B, F)
        return torch.cat(stats, dim=1)                                 # (B, 3F)
    raise ValueError(f"unknown kind {kind!r}; choose 'fourier', 'sorted' or 'moments'")


# ----------------------------------------------------------------------------- protocols

def _per_element(probe: ProbeResult, X: torch.Tensor, y: torch.Tensor, names, protocol: str) -> dict:
    """``{"<protocol>/<name>": accuracy}`` over the rows of ``X`` transformed by each element."""
    if names is None:
        return {}
    if len(names) != len(y):
        raise ValueError(f"{len(names)} element names for {len(y)} transformed images")
    out = {}
    for name in sorted(set(names), key=list(names).index):
        idx = torch.tensor([i for i, n in enumerate(names) if n == name])
        out[f"{protocol}/{name}"] = probe.accuracy(X[idx.to(X.device)], y[idx.to(y.device)])
    return out


def run_protocols(feats: dict, labels: dict, element_names: dict | None = None,
                  **fit_kwargs) -> dict:
    """The three linear-probe protocols on ``feats`` (``train``, ``val``, ``test`` upright and
    ``train_t``, ``val_t``, ``test_t`` transformed, each ``(N, F)``) with ``labels`` (``train``,
    ``val``, ``test``).

    Keys: ``a`` (train upright, test upright), ``b`` (same probe, test transformed), ``c`` (train
    and validate on transformed, test transformed) as test accuracies; ``val_a``, ``val_b``,
    ``val_c``: the same three on the validation images (``val_b``: the upright probe on transformed
    validation images) — what model selection may look at; ``l2_upright``, ``l2_transformed``,
    ``val_upright`` (= ``val_a``), ``val_transformed`` (= ``val_c``), ``iters``, ``grad_norm``,
    and ``cm_b``, protocol b's confusion counts (:func:`confusion_counts`).
    With ``element_names = {"test": [name per transformed test image], "val": [...]}``, also
    ``b/<name>``, ``c/<name>``, ``val_b/<name>`` per element. ``fit_kwargs`` go to :func:`fit_probe`.
    """
    F, y = feats, labels
    up = fit_probe(F["train"], y["train"], F["val"], y["val"], **fit_kwargs)
    tr = fit_probe(F["train_t"], y["train"], F["val_t"], y["val"], **fit_kwargs)
    out = {
        "a": up.accuracy(F["test"], y["test"]),
        "b": up.accuracy(F["test_t"], y["test"]),
        "c": tr.accuracy(F["test_t"], y["test"]),
        "val_a": up.val_accuracy, "val_b": up.accuracy(F["val_t"], y["val"]),
        "val_c": tr.val_accuracy,
        "l2_upright": up.l2, "l2_transformed": tr.l2,
        "val_upright": up.val_accuracy, "val_transformed": tr.val_accuracy,
        "iters": max(up.n_iter, tr.n_iter), "grad_norm": max(up.grad_norm, tr.grad_norm),
    }
    out["cm_b"] = confusion_counts(up, F["test_t"], y["test"])
    names = element_names or {}
    out.update(_per_element(up, F["test_t"], y["test"], names.get("test"), "b"))
    out.update(_per_element(tr, F["test_t"], y["test"], names.get("test"), "c"))
    out.update(_per_element(up, F["val_t"], y["val"], names.get("val"), "val_b"))
    return out


def confusion_counts(probe: ProbeResult, X: torch.Tensor, y: torch.Tensor) -> list[list[int]]:
    """``(K, K)`` counts as nested lists, rows the true class, columns the predicted one, over the
    probe's classes (a label it never saw counts in no row)."""
    classes = probe.classes.to(y.device)
    K = classes.numel()
    y = y.reshape(-1)
    pred = torch.searchsorted(classes, probe.predict(X).to(y.device))
    true = torch.searchsorted(classes, y).clamp(max=K - 1)
    seen = classes[true] == y
    idx = true[seen] * K + pred[seen]
    return torch.bincount(idx.cpu(), minlength=K * K).reshape(K, K).tolist()


_TRANSFORMED = ("F_train_t", "F_val_t", "F_test_t")


def evaluate_protocols(F_train, y_train, F_val, y_val, F_test, y_test, *transformed,
                       **fit_kwargs) -> dict:
    """:func:`run_protocols` with the features and labels passed one by one (kept for callers of
    the old signature ``(F_train, y_train, F_val, y_val, F_test, y_test, F_train_t, F_val_t,
    F_test_t, **fit_kwargs)``): the upright features and labels, then ``transformed`` — the
    features of transformed images ``F_train_t, F_val_t, F_test_t``, positional or as keywords of
    those names. The other keywords go to :func:`fit_probe`."""
    if len(transformed) > len(_TRANSFORMED):
        raise TypeError(f"evaluate_protocols takes 9 arrays, got {6 + len(transformed)}")
    given = dict(zip(_TRANSFORMED, transformed))
    for name in [k for k in _TRANSFORMED if k in fit_kwargs]:
        if name in given:
            raise TypeError(f"evaluate_protocols got multiple values for {name!r}")
        given[name] = fit_kwargs.pop(name)
    missing = [k for k in _TRANSFORMED if k not in given]
    if missing:
        raise TypeError(f"evaluate_protocols is missing the transformed features {missing}")
    feats = {"train": F_train, "val": F_val, "test": F_test,
             "train_t": given["F_train_t"], "val_t": given["F_val_t"], "test_t": given["F_test_t"]}
    return run_protocols(feats, {"train": y_train, "val": y_val, "test": y_test}, **fit_kwargs)
