"""Known-answer tests for galib.evaluation.probe."""
import functools

import pytest
import torch

from galib.evaluation import probe
from galib.evaluation.probe import evaluate_protocols, fit_probe, orbit_invariants
from galib.tools.bench import reference_fit_probe


def _blobs(n, k=4, d=20, sep=4.0, seed=0, weights=None):
    """Gaussian blobs with class-dependent means; returns (X (n, d), y (n,))."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(k, d, generator=torch.Generator().manual_seed(123)) * sep
    probs = torch.ones(k) if weights is None else torch.tensor(weights, dtype=torch.float)
    y = torch.multinomial(probs, n, replacement=True, generator=g)
    X = centres[y] + torch.randn(n, d, generator=g)
    return X, y


def _split(X, y, n_train):
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


# ----------------------------------------------------------------------------- fit_probe

@pytest.fixture(params=[True, False], ids=["packed", "plain"])
def pack(request):
    """Run a test on the MKL-packed design and on plain matmuls."""
    with probe.packing(request.param):
        yield request.param


def test_one_hot_features_are_perfect(pack):
    y = torch.arange(300) % 5
    X = torch.nn.functional.one_hot(y, 5).float()
    res = fit_probe(X[:200], y[:200], X[200:], y[200:], max_iter=20)
    assert res.val_accuracy == 1.0 and res.accuracy(X, y) == 1.0


def test_constant_features_give_majority_class(pack):
    y = torch.tensor([0] * 60 + [1] * 25 + [2] * 15)[torch.randperm(100, generator=torch.Generator().manual_seed(0))]
    X = torch.full((100, 6), 3.7)
    res = fit_probe(X[:80], y[:80], X[80:], y[80:])
    assert torch.all(res.inv_std == 0)                                # constant columns -> 0
    assert torch.all(res.predict(X) == 0)
    assert res.accuracy(X, y) == pytest.approx(0.60)


def test_labels_are_kept_in_their_own_values():
    X, y = _blobs(400, k=3, d=5, sep=5.0)
    labels = torch.tensor([7, -2, 11])[y]
    res = fit_probe(X[:300], labels[:300], X[300:], labels[300:])
    assert set(res.predict(X).tolist()) <= {7, -2, 11}
    assert res.val_accuracy > 0.95


@pytest.mark.parametrize("solver,atol", [("warm-path", 1e-8), ("preconditioned", 1e-3)])
def test_column_permutation_gives_identical_predictions(solver, atol):
    # The preconditioned solver's Cholesky factor depends on the column order (its optimum does
    # not): its weights agree to the solver's tolerance, the old solver's exactly.
    X, y = _blobs(2000, k=10, d=64, sep=0.4, seed=1)                  # overlapping: accuracy < 1
    perm = torch.randperm(64, generator=torch.Generator().manual_seed(5))
    Xtr, ytr, Xva, yva = _split(X, y, 1500)
    kw = dict(l2_grid=(1e-3, 1e-2), max_iter=30, dtype=torch.float64, solver=solver)
    a = fit_probe(Xtr, ytr, Xva, yva, **kw)
    b = fit_probe(Xtr[:, perm], ytr, Xva[:, perm], yva, **kw)
    assert a.l2 == b.l2 and a.val_accuracy == b.val_accuracy
    assert 0.3 < a.val_accuracy < 1.0
    assert torch.equal(a.predict(X), b.predict(X[:, perm]))
    assert torch.allclose(a.W[:, perm], b.W, atol=atol)


def test_fit_is_deterministic():
    X, y = _blobs(1000, k=5, d=30, sep=0.5, seed=2)
    Xtr, ytr, Xva, yva = _split(X, y, 800)
    a = fit_probe(Xtr, ytr, Xva, yva, max_iter=20)
    b = fit_probe(Xtr, ytr, Xva, yva, max_iter=20)
    assert torch.equal(a.W, b.W) and torch.equal(a.b, b.b)
    assert a.val_accuracy == b.val_accuracy and a.l2 == b.l2 and a.val_scores == b.val_scores


def test_separable_blobs_high_accuracy(pack):
    X, y = _blobs(3000, k=6, d=40, sep=1.0, seed=3)
    Xtr, ytr, Xte, yte = _split(X, y, 2000)
    res = fit_probe(Xtr[:1500], ytr[:1500], Xtr[1500:], ytr[1500:])
    assert res.accuracy(Xte, yte) > 0.95
    assert set(res.val_scores) == {1e-4, 1e-3, 1e-2, 1e-1} and res.l2 in res.val_scores


def test_random_labels_are_near_chance():
    g = torch.Generator().manual_seed(4)
    X = torch.randn(3000, 50, generator=g)
    y = torch.randint(0, 4, (3000,), generator=g)
    res = fit_probe(X[:1500], y[:1500], X[1500:2000], y[1500:2000])
    assert abs(res.accuracy(X[2000:], y[2000:]) - 0.25) < 0.06


def test_ties_pick_the_largest_l2():
    y = torch.arange(200) % 2
    X = torch.nn.functional.one_hot(y, 2).float()                     # every l2 scores 1.0
    res = fit_probe(X[:100], y[:100], X[100:], y[100:], l2_grid=(1e-3, 1e-1, 1e-2), max_iter=20)
    assert res.l2 == 1e-1 and all(v == 1.0 for v in res.val_scores.values())


def test_image_shaped_features_are_flattened():
    X, y = _blobs(600, k=3, d=2 * 4 * 4, sep=2.0, seed=6)
    Xi = X.view(600, 2, 4, 4)
    a = fit_probe(Xi[:400], y[:400], Xi[400:], y[400:], max_iter=20)
    assert a.accuracy(Xi[400:], y[400:]) == a.accuracy(X[400:], y[400:]) > 0.9


# ----------------------------------------------------------------------------- against today's fit

@functools.lru_cache(maxsize=1)
def _glyph_features():
    """3000 / 1000 / 1000 glyph images through the paper encoder at initialisation with 6 latent
    channels: F = 6 x 7 x 7 = 294 features with real structure (a probe reaches ~0.97)."""
    from galib.datasets import load_dataset, to_float
    from galib.evaluation.features import random_encoder
    data = load_dataset("glyphs", seed=0, glyphs_sizes=(4000, 1000), verbose=False,
                        val_fraction=0.25)
    enc = random_encoder(6)
    with torch.no_grad():
        return tuple(t for s in (data.train, data.val, data.test)
                     for t in (enc(to_float(s.images)).flatten(1), s.labels))


@functools.lru_cache(maxsize=2)
def _reference(max_iter):
    Xtr, ytr, Xva, yva, _, _ = _glyph_features()
    return reference_fit_probe(Xtr, ytr, Xva, yva, max_iter=max_iter)


@pytest.fixture
def one_thread():
    """Scoring's thread count (and MKL's blocking), whatever the suite runs at."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("packed,max_iter", [(True, 30), (True, 100), (False, 100)])
def test_fit_agrees_with_the_autograd_fit(packed, max_iter, one_thread):
    """The written-out, packed fit against the fit it replaced (autograd closure, plain matmuls):
    the same l2, and every validation accuracy of the grid and the test accuracy within 0.002."""
    Xtr, ytr, Xva, yva, Xte, yte = _glyph_features()
    assert Xtr.shape == (3000, 294)
    ref = _reference(max_iter)
    with probe.packing(packed):
        new = fit_probe(Xtr, ytr, Xva, yva, max_iter=max_iter, solver="warm-path")
    assert new.l2 == ref.l2 and set(new.val_scores) == set(ref.val_scores)
    assert 0.9 < ref.val_accuracy < 1.0
    for l2, acc in ref.val_scores.items():
        assert abs(new.val_scores[l2] - acc) <= 0.002, (l2, new.val_scores[l2], acc)
    assert abs(new.accuracy(Xte, yte) - ref.accuracy(Xte, yte)) <= 0.002
    assert new.val_accuracy == new.accuracy(Xva, yva)                 # cached val rows, same cut
    assert new.n_iter == max_iter or new.grad_norm < 1e-3


def test_the_preconditioned_fit_agrees_with_the_old_protocol(one_thread):
    """The preconditioned solver (every l2 at once, the evidence profile's 50 iterations) against the
    protocol it replaced (warm path, 100 iterations per l2, the old notebooks' budget) on the same
    features: the same l2, and its validation and test accuracies within 0.003 (docs/performance.md:
    within 0.0021 on three trained models at 48,000 images, every accuracy above chance)."""
    Xtr, ytr, Xva, yva, Xte, yte = _glyph_features()
    old = fit_probe(Xtr, ytr, Xva, yva, max_iter=100, solver="warm-path")
    new = fit_probe(Xtr, ytr, Xva, yva, **probe.PRECONDITIONED)
    assert new.l2 == old.l2 and 0.9 < old.val_accuracy < 1.0
    assert abs(new.val_accuracy - old.val_accuracy) <= 0.003
    assert abs(new.accuracy(Xte, yte) - old.accuracy(Xte, yte)) <= 0.003
    assert new.n_iter <= probe.PRECONDITIONED["max_iter"] and set(new.val_scores) == set(old.val_scores)


def test_an_unknown_solver_is_named():
    X, y = _blobs(100, k=2, d=3, sep=3.0)
    with pytest.raises(ValueError, match=r"unknown probe solver .lbfgs.*warm-path.*preconditioned"):
        fit_probe(X[:80], y[:80], X[80:], y[80:], solver="lbfgs")


def test_the_packed_design_is_used_where_mkl_is():
    Z = torch.randn(300, 40)
    design = probe.Design(Z, 10)
    if torch.backends.mkl.is_available() and hasattr(torch.ops.mkl, "_mkl_linear"):
        assert design.packed and design.Z is None                     # Z itself is dropped
    assert not probe.Design(Z.double(), 10).packed                    # float32 only
    assert not probe.Design(Z, 10, pack=False).packed


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_written_out_loss_and_gradient_are_autograds(dtype):
    g = torch.Generator().manual_seed(0)
    Z, y = torch.randn(200, 30, generator=g, dtype=dtype), torch.randint(0, 4, (200,), generator=g)
    W = torch.randn(4, 30, generator=g, dtype=dtype).requires_grad_()
    b = torch.randn(4, generator=g, dtype=dtype).requires_grad_()
    loss = torch.nn.functional.cross_entropy(Z @ W.T + b, y) + 0.01 * W.pow(2).sum()
    loss.backward()
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
    for pack in (True, False):
        got = probe.loss_and_grad(probe.Design(Z, 4, pack=pack), W.detach(), b.detach(), y, 0.01)
        for a, e in zip(got, (loss, W.grad, b.grad)):
            assert torch.allclose(a, e.detach(), **tol), (pack, a, e)


def test_reported_gradient_norm_is_the_one_of_the_returned_weights():
    """The old solver reuses the line search's last evaluation: it must be the gradient of the
    returned weights, bit for bit. The preconditioned solver evaluates each l2's gradient once more at
    its returned weights (all l2 values in one product: equal up to rounding)."""
    X, y = _blobs(1200, k=5, d=30, sep=0.5, seed=2)
    for solver, tol in (("warm-path", 0.0), ("preconditioned", 1e-5)):
        res = fit_probe(X[:900], y[:900], X[900:], y[900:], max_iter=15, solver=solver)
        Z = probe.standardise(X[:900], res.mean, res.inv_std)
        _, gW, gb = probe.loss_and_grad(probe.Design(Z, 5), res.W, res.b, y[:900], res.l2)
        expect = float(torch.cat([gW.flatten(), gb]).norm())
        assert abs(res.grad_norm - expect) <= tol * expect, (solver, res.grad_norm, expect)


# ----------------------------------------------------------------------------- orbit invariants

def _orbit(B=5, G=4, shape=(3, 2, 2), seed=0):
    return torch.randn(B, G, *shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("shift", [1, 2, 3])
def test_fourier_invariant_to_cyclic_shift(shift):
    o = _orbit()
    f = orbit_invariants(o, "fourier")
    assert f.shape == (5, 3 * 12)                                     # rfft: G//2+1 = 3 bins
    assert torch.allclose(f, orbit_invariants(o.roll(shift, dims=1), "fourier"), atol=1e-5)


def test_fourier_is_not_permutation_invariant_in_general():
    o = _orbit()
    f = orbit_invariants(o, "fourier")
    assert not torch.allclose(f, orbit_invariants(o[:, [0, 2, 1, 3]], "fourier"), atol=1e-3)


def test_fourier_complex_input_uses_full_fft():
    o = torch.complex(_orbit(seed=1), _orbit(seed=2))
    f = orbit_invariants(o, "fourier")
    assert f.shape == (5, 4 * 12) and f.dtype == torch.float32
    assert torch.allclose(f, orbit_invariants(o.roll(1, dims=1), "fourier"), atol=1e-5)


@pytest.mark.parametrize("kind,width", [("sorted", 6 * 12), ("moments", 3 * 12)])
def test_sorted_and_moments_invariant_to_permutation(kind, width):
    o = _orbit(G=6)
    f = orbit_invariants(o, kind)
    assert f.shape == (5, width)
    for perm in ([5, 4, 3, 2, 1, 0], [2, 0, 1, 5, 3, 4]):
        assert torch.allclose(f, orbit_invariants(o[:, perm], kind), atol=1e-5)


def test_moments_known_values():
    o = torch.tensor([[[1.0], [3.0]]])                                # B=1, G=2, F=1
    assert orbit_invariants(o, "moments").tolist() == [[2.0, 1.0, 3.0]]


def test_unknown_kind_raises():
    with pytest.raises(ValueError):
        orbit_invariants(_orbit(), "bogus")


# ----------------------------------------------------------------------------- protocols

def test_evaluate_protocols_known_answers():
    # upright features carry the class in dims 0..3; "transformed" ones move it to dims 4..7,
    # so a probe trained upright fails on transformed data (b near chance) while (a), (c) succeed.
    X, y = _blobs(2400, k=4, d=8, sep=0.0, seed=7)
    X[:, :4] += 6 * torch.nn.functional.one_hot(y, 4)
    Xt = X.roll(4, dims=1)
    tr, va, te = slice(0, 1200), slice(1200, 1800), slice(1800, 2400)
    out = evaluate_protocols(X[tr], y[tr], X[va], y[va], X[te], y[te], Xt[tr], Xt[va], Xt[te],
                             max_iter=20)
    assert {"a", "b", "c", "l2_upright", "l2_transformed",
            "val_upright", "val_transformed"} <= set(out)
    assert out["a"] > 0.95 and out["c"] > 0.95 and out["b"] < 0.5
