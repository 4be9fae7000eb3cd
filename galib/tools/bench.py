"""Training-speed benchmark: galib's training epoch against a naive per-sample pipeline.

``python -m galib.tools.bench`` (``make bench``) measures, in one run, on the same data, model and batch
size (64), one epoch (train pairs with Adam steps + validation pairs without grad) of

* ``galib`` — what :func:`galib.train.train` runs per epoch (:func:`galib.train.run_epoch`): pairs
  built per batch with tensor ops, one gather for the latent action, the no-grad encoding of
  ``T_g x`` (encoder only), the paper decoder's last layer as a batched matmul + ``F.fold``, fused
  Adam;
* ``galib-bf16`` — the same with ``amp=True`` (bf16 autocast); run only where the CPU has native
  bf16 (``amx_bf16`` / ``avx512_bf16`` detected in ``/proc/cpuinfo``, never assumed);
* ``naive`` — the paper's released-script style: a per-sample ``torch.utils.data.Dataset`` as
  ``torchvision.datasets.MNIST`` serves it (PIL image → ``ToTensor`` → ``Normalize(0.5, 0.5)``)
  that draws an angle and rotates each image, ``DataLoader`` batching, the latent rotated one
  sample at a time, and ``T_g x`` encoded by a separate no-grad *full* forward pass (decoder
  included); plain ``nn`` layers, the default per-parameter Adam.

Each (pipeline, repeat) runs in a fresh subprocess, so its peak resident memory is that process's
``ru_maxrss`` (torch, the dataset and one epoch: everything a training run holds); repeats
alternate the order of the pipelines so drifting machine load hits all alike, and the speed-ups
are printed per repeat (pipelines run back to back) as well as min / median — ratios within one
run, never absolute seconds across runs. Process CPU seconds are reported too: with one thread
they hardly move with other jobs' load, while wall time does. It also reports the training step's
FLOPs per sample (``torch.utils.flop_counter.FlopCounterMode``, not guessed), the machine's fp32
matmul rate (``torch.mm`` of square matrices, min time, measured in each repeat: the peak is the
best 1024² / 2048² rate, the cache-resident 512² rate is shown too) and the training step's
achieved GFLOP/s as a share of it, over the whole epoch and over its fastest 20-step window.

``--load N`` runs N busy background processes (started and killed by the bench, each ending by
itself after ``LOAD_LIMIT_S``) during the measurement. ``--thread-study`` instead times quick
trainings (``--n-train`` images, ``--epochs``): two one after the other with all cores each, two
side by side with one thread each, one alone with all cores / one thread / the galib rule
(:func:`galib.devices.configure_threads`), quiet and beside ``--load`` busy processes.
``--quick`` is a few batches of glyphs for tests (its figures mean nothing).

Scoring: after the epochs, ``make bench`` also times one linear-probe fit on ``--probe-train``
images (12,000; validation a quarter) of the 3136 features of the paper encoder at initialisation,
at one thread: the old protocol (4 l2 values one after the other, warm-started, 100 L-BFGS
iterations each) as the autograd fit it replaced (:func:`reference_fit_probe`), with the
written-out gradient on plain matmuls, and on the MKL-packed design; and galib's preconditioned fit
(every l2 at once, ``--probe-iters``, default 50: ``probe.PRECONDITIONED``), alternating order over
``--probe-repeats``. It prints CPU seconds, loss evaluations, the products' GFLOP/s against a
square fp32 matmul on the same core, speed-ups within the run, each fit's validation accuracies
against the autograd fit's, and one galib fit against one galib training epoch. ``--probe`` runs
only this section. Then one scored row at the paper's sizes (:mod:`galib.tools.score_bench`: CPU
seconds per part and the row over the 50-epoch training it scores); ``--score-row`` runs only that.

    python -m galib.tools.bench                       # full 48k + 12k epoch of Fashion-MNIST, 3 repeats
    python -m galib.tools.bench --epochs-fraction 0.25 --threads 1 --out /tmp/bench.json
    python -m galib.tools.bench --thread-study --n-train 3000 --epochs 3 --load 1
    python -m galib.tools.bench --probe                  # the probe fit alone, ~1.5 min
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..datasets import DatasetUnavailable, ImageSet, load_dataset, to_float
from ..devices import amp_problem, cpu_bf16_support
from ..evaluation import probe
from ..evaluation.features import random_encoder
from ..groups import get_group
from ..losses import TARGETS, PairLoss
from ..models import GroupLatentAutoencoder
from ..train import TrainConfig, epoch_generator, make_optimizer, model_from_config, run_epoch
from ..train.cli import ShortUsageParser, int_at_least
from ..train.limits import seed_arg

PIPELINES = ("galib", "galib-bf16", "naive")
GALIB = ("galib", "galib-bf16")              # galib's epoch in fp32 and under bf16 autocast (cfg.amp)
FULL = (48_000, 12_000)                      # the paper's 80/20 split of the 60k training images
BATCH = 64


# ----------------------------------------------------------------------------- data
def load_bench_data(dataset: str, n_train: int, n_val: int, seed: int = 42):
    """``(DataSplits, note)``: ``dataset`` capped to ``n_train``/``n_val``; glyphs if unavailable."""
    note = ""
    try:
        if dataset == "glyphs":
            raise DatasetUnavailable("glyphs requested")
        data = load_dataset(dataset, seed=seed, download=False, verbose=False)
    except DatasetUnavailable as err:
        if dataset != "glyphs":
            note = f"{dataset} unavailable ({err}); fell back to glyphs"
        n = n_train + n_val
        data = load_dataset("glyphs", seed=seed, glyphs_sizes=(n, 16), verbose=False,
                            val_fraction=n_val / n)
    data.train, data.val = data.train.head(n_train), data.val.head(n_val)
    return data, note


# ----------------------------------------------------------------------------- naive pipeline
class PerSamplePairs(torch.utils.data.Dataset):
    """The released script's dataset: one Python call per sample, as torchvision's MNIST serves
    it (PIL image, ``ToTensor``, ``Normalize``), rotated by an angle rounded to 90° on the fly."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, seed: int):
        from torchvision import transforms
        self.images, self.labels = images.numpy(), labels
        self.transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
        self.rng = random.Random(seed)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        from PIL import Image
        x = self.transform(Image.fromarray(self.images[i]))                 # (1, 28, 28) in [-1, 1]
        k = int(round(self.rng.uniform(0.0, 360.0) / 90.0)) % 4
        return x, torch.rot90(x, k, dims=(1, 2)), k, self.labels[i]


def naive_losses(model: GroupLatentAutoencoder, x, gx, k):
    """The paper's losses written sample by sample, with a full no-grad pass over ``T_g x``."""
    z = model.encoder(x)
    m = model.mask().view(1, -1, 1, 1)
    z_i, z_v = (1 - m) * z, m * z
    phi = torch.stack([torch.rot90(z_v[b], int(k[b]), dims=(1, 2)) for b in range(len(x))])
    recon = model.decoder(z_i + phi)
    with torch.no_grad():
        zt = model.encoder(gx)
        model.decoder(zt)                                   # the script's full forward pass
        mh = model.mask.hard().view(1, -1, 1, 1)
        zt_i, zt_v = (1 - mh) * zt, mh * zt
    recon_l, inv, const = F.mse_loss(recon, gx), F.mse_loss(z_i, zt_i), F.mse_loss(phi, zt_v)
    return {"loss": recon_l + inv + const, "recon": recon_l, "inv": inv, "const": const}


def naive_model(model: GroupLatentAutoencoder) -> GroupLatentAutoencoder:
    """The same weights in the paper's plain layers (out-of-place LeakyReLU, nn.ConvTranspose2d)."""
    c = model.latent_channels
    enc = nn.Sequential(nn.Conv2d(1, 32, 4, 2, 1), nn.LeakyReLU(0.2),
                        nn.Conv2d(32, c, 4, 2, 1), nn.LeakyReLU(0.2))
    dec = nn.Sequential(nn.ConvTranspose2d(c, 32, 4, 2, 1), nn.LeakyReLU(0.2),
                        nn.ConvTranspose2d(32, 1, 4, 2, 1), nn.Tanh())
    plain = GroupLatentAutoencoder(enc, dec, model.group, c, model.tau)
    plain.load_state_dict(model.state_dict())
    return plain


def naive_epoch(model, data: ImageSet, seed: int, optimizer=None) -> dict[str, float]:
    loader = torch.utils.data.DataLoader(PerSamplePairs(data.images, data.labels, seed),
                                         batch_size=BATCH, shuffle=optimizer is not None,
                                         generator=torch.Generator().manual_seed(seed))
    model.train(optimizer is not None)
    total, n = 0.0, 0
    with torch.set_grad_enabled(optimizer is not None):
        for x, gx, k, _ in loader:
            terms = naive_losses(model, x, gx, k)
            if optimizer is not None:
                optimizer.zero_grad()
                terms["loss"].backward()
                optimizer.step()
            total, n = total + terms["loss"].item() * len(x), n + len(x)
    return {"loss": total / n}


# ----------------------------------------------------------------------------- one measured epoch
def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0    # Linux: KiB


def bench_config(seed: int = 42, amp: bool = False) -> TrainConfig:
    return TrainConfig(dataset="fashion-mnist", batch_size=BATCH, device="cpu", seed=seed, epochs=1,
                       amp=amp)


def default_pipelines() -> list[str]:
    """galib (fp32), galib under bf16 autocast where this CPU has native bf16 (detected), naive."""
    return [p for p in PIPELINES if p != "galib-bf16" or amp_problem("cpu") is None]


def build(pipeline: str, image_shape, seed: int = 42):
    """``(model, optimizer)`` for ``pipeline``, both from the same seeded initial weights."""
    cfg = bench_config(seed)
    torch.manual_seed(seed)
    model = model_from_config(cfg, image_shape)
    if pipeline in GALIB:
        return model, make_optimizer(model, cfg)
    model = naive_model(model)
    return model, torch.optim.Adam(model.parameters(), lr=cfg.lr)


WINDOW = 20                                   # steps in the steady-state window


def run_worker(pipeline: str, dataset: str, n_train: int, n_val: int, seed: int) -> dict:
    """One epoch of ``pipeline`` in this process: seconds, CPU seconds, losses, peak RSS."""
    data, note = load_bench_data(dataset, n_train, n_val, seed)
    model, opt = build(pipeline, data.image_shape, seed)
    stamps = []                                # end of every optimizer step: data + fwd + bwd + step
    opt.register_step_post_hook(lambda *_: stamps.append(time.perf_counter()))
    rss_ready = _rss_mb()
    cpu0, t0 = _cpu_seconds(), time.perf_counter()
    if pipeline in GALIB:
        cfg, dev = bench_config(seed, amp=pipeline == "galib-bf16").validate(), torch.device("cpu")
        step = PairLoss.from_config(model, cfg)
        tr = run_epoch(model, data.train, cfg, epoch_generator(seed, 0), dev, opt, step=step)
        t1 = time.perf_counter()
        va = run_epoch(model, data.val, cfg, torch.Generator().manual_seed(seed + 1), dev, step=step)
    else:
        tr = naive_epoch(model, data.train, seed, opt)
        t1 = time.perf_counter()
        va = naive_epoch(model, data.val, seed + 1)
    t2 = time.perf_counter()
    windows = [(stamps[i + WINDOW] - stamps[i]) / WINDOW for i in range(len(stamps) - WINDOW)]
    return {"pipeline": pipeline, "dataset": data.name, "note": note, "n_train": len(data.train),
            "n_val": len(data.val), "train_s": t1 - t0, "val_s": t2 - t1, "epoch_s": t2 - t0,
            "best_window_step_s": min(windows, default=(t1 - t0) / max(len(stamps), 1)),
            "cpu_s": _cpu_seconds() - cpu0, "train_loss": tr["loss"], "val_loss": va["loss"],
            "rss_ready_mb": rss_ready, "peak_rss_mb": _rss_mb(), "threads": torch.get_num_threads()}


def _spawn_worker(pipeline: str, args) -> dict:
    cmd = [sys.executable, "-m", "galib.tools.bench", "--worker", pipeline, "--dataset", args.dataset,
           "--n-train", str(args.n_train), "--n-val", str(args.n_val), "--seed", str(args.seed),
           "--threads", str(args.threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"benchmark worker {pipeline!r} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- FLOPs and peak rate
def flops_per_sample(pipeline: str, image_shape=(28, 28), seed: int = 42) -> dict[str, float]:
    """FLOPs per sample of one training step and one validation step (FlopCounterMode)."""
    from torch.utils.flop_counter import FlopCounterMode
    model, opt = build(pipeline, image_shape, seed)
    g = torch.arange(BATCH) % 4
    x = torch.rand(BATCH, 1, *image_shape) * 2 - 1
    gx = model.group.act_image(x, g)
    lossf = PairLoss(model) if pipeline in GALIB else (lambda a, b, c: naive_losses(model, a, b, c))
    out = {}
    for phase in ("train", "val"):
        with FlopCounterMode(display=False) as counter, torch.set_grad_enabled(phase == "train"):
            terms = lossf(x, gx, g)
            if phase == "train":
                opt.zero_grad()
                terms["loss"].backward()
                opt.step()
        out[phase] = counter.get_total_flops() / BATCH
    return out


def matmul_gflops(sizes=(512, 1024, 2048), seconds: float = 1.0) -> dict[str, float]:
    """fp32 ``torch.mm`` GFLOP/s per square size: best (min-time) of repeated runs."""
    rates = {}
    for n in sizes:
        a, b, c = torch.randn(n, n), torch.randn(n, n), torch.empty(n, n)
        torch.mm(a, b, out=c)
        best, t_end = float("inf"), time.perf_counter() + seconds
        while time.perf_counter() < t_end:
            t0 = time.perf_counter()
            torch.mm(a, b, out=c)
            best = min(best, time.perf_counter() - t0)
        rates[str(n)] = 2 * n ** 3 / best / 1e9
    return rates


# ----------------------------------------------------------------------------- report
def _mm(values):
    return {"min": min(values), "median": statistics.median(values)}


def summarise(runs: list[dict], flops: dict, mm_runs: list[dict], meta: dict) -> dict:
    peak = max(r[n] for r in mm_runs for n in ("1024", "2048"))
    small = max(r["512"] for r in mm_runs)
    res = {"meta": meta, "matmul_gflops": {"per_repeat": mm_runs, "peak": peak, "512": small},
           "pipelines": {}}
    for p in PIPELINES:
        rs = [r for r in runs if r["pipeline"] == p]
        if not rs:
            continue
        n_train, n_val = rs[0]["n_train"], rs[0]["n_val"]
        train_s, epoch_s = _mm([r["train_s"] for r in rs]), _mm([r["epoch_s"] for r in rs])
        f = flops[p]
        window = _mm([r["best_window_step_s"] for r in rs])
        window_gflops = f["train"] * BATCH / window["min"] / 1e9
        epoch_flops = f["train"] * n_train + f["val"] * n_val
        res["pipelines"][p] = {
            "train_s": train_s, "val_s": _mm([r["val_s"] for r in rs]), "epoch_s": epoch_s,
            "epoch_cpu_s": _mm([r["cpu_s"] for r in rs]),
            "train_samples_per_s": {"max": n_train / train_s["min"], "median": n_train / train_s["median"]},
            "full_epoch_s_estimate": {k: v * sum(FULL) / (n_train + n_val) for k, v in epoch_s.items()},
            "flops_per_train_sample": f["train"], "flops_per_val_sample": f["val"],
            "train_gflops": f["train"] * n_train / train_s["min"] / 1e9,
            "train_pct_of_matmul_peak": 100 * f["train"] * n_train / train_s["min"] / 1e9 / peak,
            "window_step_s": window, "window_gflops": window_gflops,
            "window_pct_of_matmul_peak": 100 * window_gflops / peak,
            "window_pct_of_matmul_512": 100 * window_gflops / small,
            "epoch_gflops": epoch_flops / epoch_s["min"] / 1e9,
            "peak_rss_mb": _mm([r["peak_rss_mb"] for r in rs]),
            "rss_before_epoch_mb": _mm([r["rss_ready_mb"] for r in rs]),
            "val_loss": [r["val_loss"] for r in rs], "runs": rs}
    res["speedups"] = _speedups(res["pipelines"])
    if "galib" in res["speedups"]:
        res["speedup"] = res["speedups"]["galib"]                 # the fp32 figure (older reports)
    return res


def _speedups(pipes: dict) -> dict:
    """Naive over each galib variant: min/median epoch, train, CPU seconds, and the ratio within
    each repeat (the two ran back to back, so the same machine load hit both)."""
    if "naive" not in pipes:
        return {}
    n, out = pipes["naive"], {}
    naive_by_repeat = {r["repeat"]: r["epoch_s"] for r in n["runs"]}
    for p in GALIB:
        if p not in pipes:
            continue
        g = pipes[p]
        paired = [naive_by_repeat[r["repeat"]] / r["epoch_s"] for r in g["runs"]
                  if r["repeat"] in naive_by_repeat]
        out[p] = {"epoch_min": n["epoch_s"]["min"] / g["epoch_s"]["min"],
                  "epoch_median": n["epoch_s"]["median"] / g["epoch_s"]["median"],
                  "train_min": n["train_s"]["min"] / g["train_s"]["min"],
                  "epoch_cpu_min": n["epoch_cpu_s"]["min"] / g["epoch_cpu_s"]["min"],
                  "epoch_paired": paired}
    return out


def format_table(res: dict) -> str:
    m = res["meta"]
    lines = [f"galib.tools.bench — {m['dataset']} ({m['n_train']} train + {m['n_val']} val pairs), batch "
             f"{BATCH}, {m['threads']} threads, {m['repeats']} repeats, torch {m['torch']}"
             + (f"\nnote: {m['note']}" if m["note"] else ""),
             f"load average before/after: {m['loadavg_before']} / {m['loadavg_after']}",
             f"fp32 matmul peak: {res['matmul_gflops']['peak']:.1f} GFLOP/s (best 1024²/2048² torch.mm; "
             f"512²: {res['matmul_gflops']['512']:.1f})",
             "", f"{'':26s}" + "".join(f"{p:>22s}" for p in res["pipelines"])]
    rows = [("epoch s (min / median)", lambda d: f"{d['epoch_s']['min']:.2f} / {d['epoch_s']['median']:.2f}"),
            ("train s (min / median)", lambda d: f"{d['train_s']['min']:.2f} / {d['train_s']['median']:.2f}"),
            ("val s (min / median)", lambda d: f"{d['val_s']['min']:.2f} / {d['val_s']['median']:.2f}"),
            ("epoch CPU s (min)", lambda d: f"{d['epoch_cpu_s']['min']:.2f}"),
            ("train samples/s (best)", lambda d: f"{d['train_samples_per_s']['max']:.0f}"),
            ("48k+12k epoch s (est.)", lambda d: f"{d['full_epoch_s_estimate']['min']:.1f}"),
            ("MFLOP / train sample", lambda d: f"{d['flops_per_train_sample'] / 1e6:.2f}"),
            ("MFLOP / val sample", lambda d: f"{d['flops_per_val_sample'] / 1e6:.2f}"),
            ("train GFLOP/s (best)", lambda d: f"{d['train_gflops']:.1f}"),
            ("train % of matmul peak", lambda d: f"{d['train_pct_of_matmul_peak']:.0f}%"),
            (f"best {WINDOW}-step ms/step", lambda d: f"{d['window_step_s']['min'] * 1e3:.1f}"),
            ("  GFLOP/s, % of peak",
             lambda d: f"{d['window_gflops']:.1f}, {d['window_pct_of_matmul_peak']:.0f}%"),
            ("  % of 512² matmul", lambda d: f"{d['window_pct_of_matmul_512']:.0f}%"),
            ("peak RSS MB (max)", lambda d: f"{max(r['peak_rss_mb'] for r in d['runs']):.0f}"),
            ("RSS before epoch MB", lambda d: f"{d['rss_before_epoch_mb']['min']:.0f}")]
    for label, fmt in rows:
        lines.append(f"{label:26s}" + "".join(f"{fmt(d):>22s}" for d in res["pipelines"].values()))
    lines.append("")
    for p, sp in res.get("speedups", {}).items():
        paired = ", ".join(f"{v:.2f}" for v in sp["epoch_paired"])
        lines += [f"{p} speed-up over naive, epoch: {sp['epoch_min']:.2f}x (min) / "
                  f"{sp['epoch_median']:.2f}x (median); per repeat {paired}; train only "
                  f"{sp['train_min']:.2f}x; CPU seconds {sp['epoch_cpu_min']:.2f}x"]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- probe fit (scoring)
PROBE_SIZE = (12_000, 3_000)          # training / validation images of the probe benchmark
PROBE_CHANNELS = 64                   # the paper encoder's latent: F = 64 x 7 x 7 = 3136 features
PROBE_VARIANTS = ("autograd (before)", "written-out gradient", "packed Z, Z^T, warm path",
                  "preconditioned (galib)")
PROBE_BEFORE, PROBE_GALIB = PROBE_VARIANTS[0], PROBE_VARIANTS[-1]
PROBE_OLD_ITERS = 100                 # the old protocol's budget (iterations per l2) in the notebooks


def reference_fit_probe(X_train, y_train, X_val, y_val, l2_grid=probe.DEFAULT_L2_GRID,
                        max_iter: int = 50, dtype=torch.float32, calls: list | None = None):
    """:func:`galib.evaluation.probe.fit_probe` as it was before the packed design (issue 24):
    the same protocol with an autograd closure on ``Z @ W.T + b`` and one more evaluation per l2
    for the final gradient. Kept as the reference of the benchmark and of the agreement tests;
    ``calls`` (a one-element list) counts loss evaluations."""
    X_train, X_val = X_train.flatten(1), X_val.flatten(1)
    y_train, y_val = y_train.reshape(-1), y_val.reshape(-1)
    classes, yt = torch.unique(y_train, sorted=True, return_inverse=True)  # (K,), (N,)
    Xf = X_train.to(dtype)
    mean, std = Xf.mean(0), Xf.std(0, unbiased=False)                  # (F,), (F,)
    tol = 1e-6 * mean.abs().clamp(min=1.0)
    inv_std = torch.where(std > tol, 1.0 / std.clamp(min=1e-30), torch.zeros_like(std))
    Z = probe.standardise(Xf, mean, inv_std)                           # (N, F)
    W = torch.zeros(classes.numel(), Z.shape[1], dtype=dtype, requires_grad=True)  # (K, F)
    b = torch.zeros(classes.numel(), dtype=dtype, requires_grad=True)              # (K,)
    calls = [0] if calls is None else calls
    best, scores = None, {}
    for l2 in sorted(l2_grid, reverse=True):
        opt = torch.optim.LBFGS([W, b], lr=1.0, max_iter=max_iter, history_size=20,
                                line_search_fn="strong_wolfe", tolerance_grad=1e-6,
                                tolerance_change=1e-10)

        def closure():
            calls[0] += 1
            opt.zero_grad()
            loss = F.cross_entropy(Z @ W.T + b, yt) + l2 * W.pow(2).sum()
            loss.backward()
            return loss

        opt.step(closure)
        with torch.enable_grad():
            closure()
        grad = torch.cat([W.grad.flatten(), b.grad.flatten()]).norm()
        res = probe.ProbeResult(W.detach().clone(), b.detach().clone(), mean, inv_std, classes,
                                float(l2), 0.0, n_iter=int(opt.state[W].get("n_iter", 0)),
                                grad_norm=float(grad))
        res.val_accuracy = res.accuracy(X_val, y_val)
        scores[float(l2)] = res.val_accuracy
        if best is None or res.val_accuracy > best.val_accuracy:
            best = res
    best.val_scores = scores
    return best


@torch.no_grad()
def probe_features(dataset: str, n_train: int, n_val: int, seed: int = 42):
    """``(X_train (n_train, 3136), y_train, X_val, y_val, dataset name, note)``: the latent of the
    paper encoder at initialisation (:func:`galib.evaluation.features.random_encoder`)."""
    data, note = load_bench_data(dataset, n_train, n_val, seed)
    enc = random_encoder(PROBE_CHANNELS)

    def feats(s: ImageSet) -> torch.Tensor:                            # (N, 3136)
        return torch.cat([enc(to_float(s.images[i:i + 1000])).flatten(1)
                          for i in range(0, len(s), 1000)])
    return feats(data.train), data.train.labels, feats(data.val), data.val.labels, data.name, note


def _probe_fit(variant: str, feats, max_iter: int, old_iters: int = PROBE_OLD_ITERS):
    """``(ProbeResult, CPU seconds, loss evaluations, multiply-adds x 2)`` of one fit by
    ``variant``: the old protocol (warm path, ``old_iters`` per l2) three ways, or galib's
    preconditioned fit (``max_iter``)."""
    Xtr, ytr, Xva, yva = feats[:4]
    calls, c0 = [0], time.process_time()
    if variant == PROBE_BEFORE:
        res = reference_fit_probe(Xtr, ytr, Xva, yva, max_iter=old_iters, calls=calls)
        return res, time.process_time() - c0, calls[0], calls[0] * 40.0 * Xtr.shape[0] * Xtr[0].numel()
    with probe.count_evaluations() as count, probe.packing(variant != PROBE_VARIANTS[1]):
        if variant == PROBE_GALIB:
            res = probe.fit_probe(Xtr, ytr, Xva, yva, max_iter=max_iter, solver="preconditioned")
        else:
            res = probe.fit_probe(Xtr, ytr, Xva, yva, max_iter=old_iters, solver="warm-path")
    return res, time.process_time() - c0, count.evals, count.flops     # flops: 2 products of N x F x rows


def probe_bench(args) -> dict:
    """CPU seconds of one probe fit (4 l2 values, ``--probe-iters`` L-BFGS iterations each) on
    ``--probe-train`` images of 3136 random-encoder features, at one thread, by each of
    ``PROBE_VARIANTS`` — alternating order over ``--probe-repeats`` — with the products' GFLOP/s
    (4 N F K per loss evaluation) against a square fp32 matmul on the same core, and each
    variant's accuracies against the autograd fit's."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        n_train = args.probe_train
        feats = probe_features(args.dataset, n_train, max(1, n_train // 4), args.seed)
        load_before, mm = os.getloadavg(), matmul_gflops()
        for v in PROBE_VARIANTS:                                       # warm-up, discarded
            _probe_fit(v, [x[:256] for x in feats[:4]], 2, 2)
        runs = {v: [] for v in PROBE_VARIANTS}
        for r in range(args.probe_repeats):
            for v in (PROBE_VARIANTS if r % 2 == 0 else PROBE_VARIANTS[::-1]):
                runs[v].append(_probe_fit(v, feats, args.probe_iters, args.probe_old_iters))
                print(f"[bench] probe repeat {r + 1}/{args.probe_repeats} {v}: "
                      f"{runs[v][-1][1]:.2f} CPU s, {runs[v][-1][2]} loss evaluations", flush=True)
    finally:
        torch.set_num_threads(threads)
    meta = {"dataset": feats[4], "note": feats[5], "n_train": n_train, "n_val": len(feats[3]),
            "features": feats[0].shape[1], "classes": int(feats[1].unique().numel()),
            "max_iter": args.probe_iters, "old_iters": args.probe_old_iters,
            "repeats": args.probe_repeats, "threads": 1,
            "loadavg_before": [round(v, 2) for v in load_before],
            "loadavg_after": [round(v, 2) for v in os.getloadavg()]}
    return summarise_probe(runs, mm, meta)


def summarise_probe(runs: dict, mm: dict, meta: dict) -> dict:
    """Per variant: min CPU s, evaluations, GFLOP/s, % of the matmul peak, speed-up over the
    autograd fit and the largest accuracy difference from it (validation, every l2)."""
    peak = max(mm["1024"], mm["2048"])
    ref = runs[PROBE_BEFORE][0][0]
    out = {"meta": meta, "matmul_gflops": {**mm, "peak": peak}, "variants": {}}
    for v, rs in runs.items():
        cpu = min(r[1] for r in rs)
        res, evals = rs[0][0], rs[0][2]
        gflops = rs[0][3] / cpu / 1e9
        out["variants"][v] = {
            "cpu_s": cpu, "cpu_s_runs": [r[1] for r in rs], "evals": evals, "gflops": gflops,
            "pct_of_matmul_peak": 100 * gflops / peak,
            "speedup": min(r[1] for r in runs[PROBE_BEFORE]) / cpu,
            "paired_speedups": [a[1] / b[1] for a, b in zip(runs[PROBE_BEFORE], rs)],
            "l2": res.l2, "val_accuracy": res.val_accuracy, "val_scores": res.val_scores,
            "same_l2": res.l2 == ref.l2,
            "max_val_diff": max(abs(res.val_scores[k] - ref.val_scores[k]) for k in ref.val_scores)}
    return out


def format_probe(res: dict) -> str:
    m = res["meta"]
    lines = [f"probe fit — {m['dataset']}: {m['n_train']} train + {m['n_val']} val images, "
             f"F = {m['features']} random-encoder features, K = {m['classes']}, 4 l2 values: the old "
             f"protocol (warm path, {m['old_iters']} L-BFGS iterations per l2) three ways, galib's "
             f"preconditioned fit ({m['max_iter']} iterations, all l2 at once); 1 thread, "
             f"{m['repeats']} repeat(s), alternating"
             + (f"\nnote: {m['note']}" if m["note"] else ""),
             f"load average before/after: {m['loadavg_before']} / {m['loadavg_after']} "
             f"(a loaded machine moves CPU seconds too: compare ratios within this run)",
             f"fp32 matmul on the same core: {res['matmul_gflops']['peak']:.1f} GFLOP/s "
             f"(best 1024²/2048²)", "",
             f"{'':24s}{'CPU s':>9s}{'evals':>7s}{'GFLOP/s':>9s}{'% peak':>8s}{'speed-up':>10s}"
             f"{'l2':>8s}{'val acc':>9s}{'max |Δ val|':>13s}"]
    for v, d in res["variants"].items():
        lines.append(f"{v:24s}{d['cpu_s']:9.2f}{d['evals']:7d}{d['gflops']:9.1f}"
                     f"{d['pct_of_matmul_peak']:7.0f}%{d['speedup']:9.2f}x{d['l2']:8.0e}"
                     f"{d['val_accuracy']:9.4f}{d['max_val_diff']:13.4f}")
    g = res["variants"][PROBE_GALIB]
    lines.append(f"galib's probe fit over the old protocol's autograd fit: {g['speedup']:.2f}x (min CPU s); per "
                 f"repeat {', '.join(f'{x:.2f}' for x in g['paired_speedups'])}; same l2: "
                 f"{g['same_l2']}; largest validation-accuracy difference over the l2 grid "
                 f"{g['max_val_diff']:.4f}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- background load
LOAD_LIMIT_S = 1800                           # a background spinner ends by itself after this


def start_load(n: int, limit_s: float = LOAD_LIMIT_S) -> list[subprocess.Popen]:
    """``n`` CPU-bound background processes (a busy loop each), bounded in time by themselves."""
    code = f"import time\nt = time.monotonic() + {float(limit_s)}\nwhile time.monotonic() < t: pass"
    return [subprocess.Popen([sys.executable, "-c", code]) for _ in range(n)]


def stop_load(procs: list[subprocess.Popen]) -> None:
    for p in procs:                           # only the processes this bench started
        p.kill()
        p.wait()


# ----------------------------------------------------------------------------- thread study
def train_worker(args) -> dict:
    """One quick training (``TrainConfig``, no run dir) with ``--threads`` (0: the galib rule)."""
    from ..devices import configure_threads
    from ..train import train
    threads = configure_threads(None if args.threads == 0 else args.threads, verbose=False, adaptive=True)
    cfg = TrainConfig(dataset=args.dataset, max_train=args.n_train, epochs=args.epochs, device="cpu",
                      seed=args.seed)
    t0 = time.perf_counter()
    result = train(cfg, progress=False, verbose=False)
    return {"threads": threads, "seconds": time.perf_counter() - t0,
            "epoch_s": [h["seconds"] for h in result.history],
            "val_loss": result.history[-1]["val_loss"]}


def _trainings(args, threads: int, side_by_side: int) -> dict:
    """``side_by_side`` trainings at once (or one after another when 0 → two in sequence)."""
    cmd = [sys.executable, "-m", "galib.tools.bench", "--train-worker", "--threads", str(threads),
           "--dataset", args.dataset, "--n-train", str(args.n_train), "--epochs", str(args.epochs),
           "--seed", str(args.seed)]
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    t0, outs = time.perf_counter(), []
    batches = [[1], [1]] if side_by_side == 0 else [list(range(side_by_side))]
    for batch in batches:
        procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
                 for _ in batch]
        for p in procs:
            out, err = p.communicate()
            if p.returncode != 0:
                raise RuntimeError(f"training worker failed:\n{err[-3000:]}")
            outs.append(json.loads(out.strip().splitlines()[-1]))
    return {"wall_s": time.perf_counter() - t0, "runs": outs}


STUDY = {"two in sequence, all cores each": ("cores", 0), "two side by side, 1 thread each": (1, 2),
         "one alone, all cores": ("cores", 1), "one alone, 1 thread": (1, 1),
         "one alone, galib rule": (0, 1)}


def thread_study(args) -> dict:
    """Quick trainings quiet and beside ``--load`` busy processes, for each scenario of ``STUDY``."""
    cores, res = os.cpu_count() or 1, {}
    for load in sorted({0, args.load}):
        procs = start_load(load)
        try:
            time.sleep(0.5 if load else 0.0)
            for name, (threads, n) in STUDY.items():
                t = cores if threads == "cores" else threads
                row = _trainings(args, t, n)
                res[f"load {load}: {name}"] = row
                print(f"[bench] load {load}: {name:34s} {row['wall_s']:7.2f} s wall  (threads "
                      f"{[r['threads'] for r in row['runs']]}, epochs s "
                      f"{[round(e, 1) for r in row['runs'] for e in r['epoch_s']]})", flush=True)
        finally:
            stop_load(procs)
    return {"meta": {"cores": cores, "n_train": args.n_train, "epochs": args.epochs, "load": args.load,
                     "dataset": args.dataset, "loadavg_after": [round(v, 2) for v in os.getloadavg()]},
            "scenarios": res}


# ----------------------------------------------------------------------------- bf16 check, epoch parts
def amp_check(args, seeds=(42, 7)) -> dict:
    """fp32 against bf16 autocast: best validation loss and mask after ``--epochs`` epochs on
    ``--n-train`` images, for each seed (the reseeded fp32 runs give the spread to compare with)."""
    from ..train import train
    torch.set_num_threads(args.threads)
    rows = []
    for seed in seeds:
        for amp in (False, True):
            cfg = TrainConfig(dataset=args.dataset, max_train=args.n_train, epochs=args.epochs,
                              device="cpu", seed=seed, amp=amp)
            best = train(cfg, progress=False, verbose=False).best
            rows.append({"seed": seed, "amp": amp, "best_val": best["val_loss"],
                         "variant_channels": best["variant_channels"]})
            print(f"[bench] seed {seed} {'bf16' if amp else 'fp32'}: best val {best['val_loss']:.6f}, "
                  f"{len(best['variant_channels'])} variant channels", flush=True)
    fp32 = {r["seed"]: r for r in rows if not r["amp"]}
    diffs = [abs(r["best_val"] - fp32[r["seed"]]["best_val"]) for r in rows if r["amp"]]
    same_mask = all(r["variant_channels"] == fp32[r["seed"]]["variant_channels"] for r in rows if r["amp"])
    spread = max(r["best_val"] for r in fp32.values()) - min(r["best_val"] for r in fp32.values())
    print(f"[bench] bf16 - fp32: max |diff| {max(diffs):.2e} against a reseeded fp32 spread of "
          f"{spread:.2e}; masks {'identical' if same_mask else 'DIFFER'}")
    return {"rows": rows, "max_abs_diff": max(diffs), "fp32_seed_spread": spread, "same_mask": same_mask}


def epoch_parts(args) -> dict:
    """CPU seconds of the parts of one ``train()`` epoch: training steps, pair building alone,
    validation, the per-epoch bookkeeping, and one ``RunDir.save``."""
    import tempfile
    from ..pairs import iterate_pairs
    from ..train import loop
    from ..train.runs import RunDir
    torch.set_num_threads(args.threads)
    cfg = TrainConfig(dataset=args.dataset, max_train=args.n_train, epochs=1, device="cpu", seed=args.seed)
    data = load_dataset(cfg.dataset, seed=cfg.seed, max_train=cfg.max_train, verbose=False)
    dev, (model, opt) = torch.device("cpu"), build("galib", data.image_shape, args.seed)

    def cpu(f, repeats: int = 2) -> float:
        return min(_timed(f) for _ in range(repeats))
    parts = {"train steps": cpu(lambda: run_epoch(model, data.train, cfg, epoch_generator(1, 0), dev, opt)),
             "pair building alone": cpu(lambda: [0 for _ in iterate_pairs(
                 data.train, model.group, cfg.batch_size, epoch_generator(1, 0), device=dev)]),
             "validation": cpu(lambda: run_epoch(model, data.val, cfg, torch.Generator().manual_seed(2), dev)),
             "check params + row + best clone": cpu(lambda: (
                 loop.check_parameters(model, 1), loop.epoch_row(0, {}, {}, model, 0.0),
                 {k: v.clone() for k, v in model.state_dict().items()}))}
    with tempfile.TemporaryDirectory() as d:
        run = RunDir(Path(d), cfg, data, False)
        run.open(fresh=True)
        parts["save (last.pt, best.pt, history.json)"] = cpu(
            lambda: run.save(cfg, model, opt, 0, [], 1.0, True))
        t0 = time.perf_counter()
        run.save(cfg, model, opt, 0, [], 1.0, True)
        parts["save, wall seconds (fsync)"] = time.perf_counter() - t0
        run.close()
    total = parts["train steps"] + parts["validation"]
    for k, v in parts.items():
        unit = "wall s" if "wall" in k else "CPU s "
        print(f"[bench] {k:40s} {v:8.3f} {unit} {100 * v / total:5.1f} % of train + val")
    return {"n_train": len(data.train), "n_val": len(data.val), "cpu_s": parts}


STEP_VARIANTS = {"fp32, foreach Adam": (False, "foreach", ""), "fp32, fused Adam": (False, "fused", ""),
                 "bf16, foreach Adam": (True, "foreach", ""), "bf16, fused Adam": (True, "fused", ""),
                 "fp32, fused, channels_last": (False, "fused", "channels_last"),
                 "bf16, fused, channels_last": (True, "fused", "channels_last")}
COMPILED_VARIANTS = {"fp32, fused, torch.compile": (False, "fused", "compile"),
                     "bf16, fused, torch.compile": (True, "fused", "compile")}


def step_ab(args, steps: int = 15) -> dict:
    """CPU ms per galib training step (batch 64) for each of ``STEP_VARIANTS`` (and, with
    ``--compile``, ``COMPILED_VARIANTS``: inductor, compiled once before the timing), interleaved
    ``--repeats`` times in this process; best of the repeats."""
    torch.set_num_threads(args.threads)
    cfg, x = bench_config(args.seed), torch.rand(BATCH, 1, 28, 28) * 2 - 1
    table = {**STEP_VARIANTS, **(COMPILED_VARIANTS if getattr(args, "compile", False) else {})}
    variants = {k: v for k, v in table.items() if not v[0] or amp_problem("cpu") is None}
    states = {}
    for name, (amp, kind, layout) in variants.items():
        model, _ = build("galib", (28, 28), args.seed)
        if layout == "channels_last":
            model = model.to(memory_format=torch.channels_last)
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.Adam(params, lr=cfg.lr, **{kind: True})
        step = PairLoss(model)
        states[name] = (amp, torch.compile(step) if layout == "compile" else step, opt, layout)
    g = torch.arange(BATCH) % 4
    gx = get_group("c4").act_image(x, g)
    last = {"channels_last": (x.contiguous(memory_format=torch.channels_last),
                              gx.contiguous(memory_format=torch.channels_last))}

    def run(name: str) -> float:
        amp, step, opt, layout = states[name]
        xx, gg = last.get(layout, (x, gx))
        c0 = time.process_time()
        for _ in range(steps):
            with torch.autocast("cpu", torch.bfloat16, enabled=amp):
                loss = step(xx, gg, g)["loss"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return (time.process_time() - c0) / steps * 1e3
    for name in states:                                            # warm-up (and compile), discarded
        run(name)
    best = dict.fromkeys(states, float("inf"))
    for r in range(args.repeats + 1):
        for name in (list(states) if r % 2 == 0 else list(states)[::-1]):
            best[name] = min(best[name], run(name))
    for name, ms in best.items():
        print(f"[bench] {name:28s} {ms:7.2f} CPU ms / step")
    return {"threads": args.threads, "cpu_ms_per_step": best}


def _timed(f) -> float:
    c0 = time.process_time()
    f()
    return time.process_time() - c0


def _parser() -> argparse.ArgumentParser:
    ap = ShortUsageParser(prog="python -m galib.tools.bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="fashion-mnist", help="falls back to glyphs if unavailable")
    ap.add_argument("--n-train", type=int_at_least(1), default=None,
                    help=f"training pairs (default {FULL[0]})")
    ap.add_argument("--n-val", type=int_at_least(1), default=None,
                    help=f"validation pairs (default {FULL[1]})")
    ap.add_argument("--epochs-fraction", type=float, default=1.0,
                    help="shorten: this fraction of the 48k + 12k epoch (--n-train/--n-val win)")
    ap.add_argument("--repeats", type=int_at_least(0), default=3)
    ap.add_argument("--pipelines", default=None,
                    help=f"comma-separated subset of {','.join(PIPELINES)} (default: all; galib-bf16 "
                         f"only where the CPU has native bf16)")
    ap.add_argument("--threads", type=int_at_least(1), default=torch.get_num_threads())
    ap.add_argument("--load", type=int_at_least(0), default=0,
                    help="busy background processes during the measurement (started and stopped here)")
    ap.add_argument("--quick", action="store_true",
                    help="a few batches of glyphs, 1 repeat, 1 thread (for tests; figures mean nothing)")
    ap.add_argument("--thread-study", action="store_true",
                    help="quick trainings (--n-train images, --epochs): sequential vs side by side, "
                         "quiet and beside --load busy processes")
    ap.add_argument("--epochs", type=int_at_least(1), default=4,
                    help="epochs of each --thread-study / --amp-check training")
    ap.add_argument("--amp-check", action="store_true",
                    help="fp32 vs bf16 autocast: best validation loss and mask, seeds 42 and 7 "
                         "(--n-train images, --epochs)")
    ap.add_argument("--compile", action="store_true",
                    help="with --step-ab: also time torch.compile'd steps (compiling takes a minute)")
    ap.add_argument("--step-ab", action="store_true",
                    help="CPU ms per training step: fp32/bf16 x foreach/fused Adam, interleaved")
    ap.add_argument("--epoch-parts", action="store_true",
                    help="CPU seconds of the parts of one train() epoch (--n-train images)")
    ap.add_argument("--probe", action="store_true",
                    help="only the probe-fit (scoring) section: the autograd fit against galib's, "
                         "one thread, --probe-train images, --probe-iters iterations per l2")
    ap.add_argument("--probe-train", type=int_at_least(1), default=None,
                    help=f"training images of the probe fit (default {PROBE_SIZE[0]}; validation: "
                         f"a quarter as many)")
    ap.add_argument("--probe-iters", type=int_at_least(1), default=None,
                    help=f"L-BFGS iterations of galib's preconditioned fit (default "
                         f"{probe.PRECONDITIONED['max_iter']}; the old protocol runs {PROBE_OLD_ITERS} per l2)")
    ap.add_argument("--probe-repeats", type=int_at_least(1), default=2,
                    help="repeats of the probe fits, alternating order (default 2)")
    ap.add_argument("--score-row", action="store_true",
                    help="only one scored row (48k/12k/10k): CPU s per part and its ratio to training")
    ap.add_argument("--score-targets", default="detached", choices=TARGETS,
                    help="targets of the training the row is compared with (evidence: both-ways)")
    ap.add_argument("--seed", type=seed_arg("seed"), default=42)
    ap.add_argument("--out", default="bench/results.json")
    ap.add_argument("--worker", choices=PIPELINES, help=argparse.SUPPRESS)
    ap.add_argument("--train-worker", action="store_true", help=argparse.SUPPRESS)
    return ap


def _write(res: dict, path: str) -> None:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    print(f"[bench] wrote {out}")


def main(argv=None) -> dict | None:
    ap = _parser()
    args = ap.parse_args(argv)
    unknown = [p for p in (args.pipelines or "").split(",") if p and p not in PIPELINES]
    if unknown or (args.pipelines is not None and not args.pipelines.strip(",")):
        ap.error(f"--pipelines {args.pipelines!r}: unknown {unknown or 'nothing'}; choose from "
                 f"{list(PIPELINES)}")
    if not (0 < args.epochs_fraction <= 1):                     # NaN fails too
        ap.error(f"--epochs-fraction must be in (0, 1]; got {args.epochs_fraction}")
    if args.quick:
        args.dataset, args.repeats, args.threads, args.probe_repeats = "glyphs", 1, 1, 1
        args.n_train, args.n_val = args.n_train or 4 * BATCH, args.n_val or BATCH
    args.probe_train = args.probe_train or (4 * BATCH if args.quick else PROBE_SIZE[0])
    args.probe_iters = args.probe_iters or (5 if args.quick else probe.PRECONDITIONED["max_iter"])
    args.probe_old_iters = 5 if args.quick else PROBE_OLD_ITERS
    if args.score_row:
        res = _score_row(args)
        _write(res, args.out)
        return res
    if args.train_worker:
        print(json.dumps(train_worker(args)))
        return None
    if args.probe:
        res = probe_bench(args)
        print(format_probe(res))
        _write(res, args.out)
        return res
    special = {"thread_study": thread_study, "amp_check": amp_check, "epoch_parts": epoch_parts,
               "step_ab": step_ab}
    for name, run in special.items():
        if getattr(args, name):
            args.n_train = args.n_train or (5000 if name == "thread_study" else 10_000)
            res = run(args)
            _write(res, args.out)
            return res
    args.n_train = args.n_train or max(BATCH, round(FULL[0] * args.epochs_fraction))
    args.n_val = args.n_val or max(BATCH, round(FULL[1] * args.epochs_fraction))
    torch.set_num_threads(args.threads)
    if args.worker:
        print(json.dumps(run_worker(args.worker, args.dataset, args.n_train, args.n_val, args.seed)))
        return None
    procs = start_load(args.load)
    try:
        res = _compare(args, argv)
    finally:
        stop_load(procs)
    print(format_table(res))
    res["probe"] = probe_bench(args)
    epoch = res["pipelines"].get("galib", {}).get("epoch_cpu_s", {}).get("min")
    fit = res["probe"]["variants"][PROBE_GALIB]["cpu_s"]
    res["probe"]["fit_over_training_epoch"] = fit / epoch if epoch else None
    print("\n" + format_probe(res["probe"]))
    res["score_row"] = _score_row(args)
    if epoch:
        print(f"one galib probe fit ({args.probe_train} images, 1 thread) = {fit / epoch:.2f} x "
              f"the CPU seconds of one galib training epoch ({res['meta']['n_train']} + "
              f"{res['meta']['n_val']} pairs, {args.threads} threads)")
    _write(res, args.out)
    return res


def _score_row(args) -> dict:
    """One scored row at the paper's sizes (``--quick``: a few glyphs), printed."""
    from .score_bench import format_score_row, score_row_bench
    sizes = (4 * BATCH, BATCH, BATCH) if args.quick else (*FULL, 10_000)
    data, note = load_bench_data(args.dataset, sizes[0], sizes[1], args.seed)
    data.test = data.test.head(sizes[2])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)                     # the core's rate at the row's thread count
    try:
        mm = matmul_gflops()
    finally:
        torch.set_num_threads(threads)
    fit = {**probe.PRECONDITIONED, "max_iter": args.probe_iters}
    res = score_row_bench(data, max(mm["1024"], mm["2048"]), args.seed, fit=fit, targets=args.score_targets)
    res["meta"]["note"] = note
    print("\n" + format_score_row(res) + (f"\nnote: {note}" if note else ""))
    return res


def _compare(args, argv) -> dict:
    """Alternating A/B repeats of each pipeline in fresh processes, then the summary."""
    pipelines = args.pipelines.split(",") if args.pipelines else default_pipelines()
    unknown = [p for p in pipelines if p not in PIPELINES]
    if unknown:
        raise ValueError(f"unknown pipelines {unknown}; choose from {list(PIPELINES)}")
    load_before = os.getloadavg()
    runs, mm_runs = [], []
    for r in range(args.repeats):
        mm_runs.append(matmul_gflops())
        for p in (pipelines if r % 2 == 0 else pipelines[::-1]):      # alternate the order
            runs.append({**_spawn_worker(p, args), "repeat": r})
            print(f"[bench] repeat {r + 1}/{args.repeats} {p}: epoch {runs[-1]['epoch_s']:.2f}s "
                  f"(train {runs[-1]['train_s']:.2f}s), peak RSS {runs[-1]['peak_rss_mb']:.0f} MB",
                  flush=True)
    flops = {p: flops_per_sample(p, seed=args.seed) for p in pipelines}
    first = runs[0]
    meta = {"dataset": first["dataset"], "note": first["note"], "n_train": first["n_train"],
            "n_val": first["n_val"], "batch_size": BATCH, "repeats": args.repeats,
            "threads": args.threads, "load": args.load, "torch": torch.__version__,
            "python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
            "cpu_bf16": cpu_bf16_support(), "cpu_count": os.cpu_count(),
            "loadavg_before": [round(v, 2) for v in load_before],
            "loadavg_after": [round(v, 2) for v in os.getloadavg()],
            "command": " ".join([sys.executable, "-m", "galib.tools.bench", *(argv or sys.argv[1:])])}
    return summarise(runs, flops, mm_runs, meta)


if __name__ == "__main__":
    main()
