"""What one scored row costs against the training it scores (part of ``make bench``).

One row as notebook 05 scores a trained model (:func:`galib.studies.baselines.run_baselines`
with the evidence profile's settings: the preconditioned probe): the test scores (:func:`~galib.evaluation.scores.evaluate_model`), the linear
probes of ``z``, ``z_i``, ``z_v`` and the orbit invariants under protocols a, b and c
(:func:`~galib.evaluation.features.probe_model`: encoding, then two fits per feature) and the swap
scores, at one thread, on a model trained here for one epoch at the same size. Printed: CPU seconds
per part, the probe products' GFLOP/s against a square fp32 matmul on the same core, and the
row's CPU seconds over those of the training it scores (``--score-epochs`` epochs at the measured
epoch's cost) — a ratio measured in one run, never seconds across runs.

    python -m galib.tools.bench --score-row                 # 48k / 12k / 10k Fashion-MNIST, ~3 min
    python -m galib.tools.bench --score-row --quick         # a few glyphs (its figures mean nothing)
"""
from __future__ import annotations

import os
import time

import torch

from ..evaluation import features, probe
from ..evaluation.scores import evaluate_model
from ..evaluation.swap import swap_scores
from ..train import TrainConfig, make_optimizer, model_from_config, run_epoch

ROW_FEATURES = features.LATENT_FEATURES + features.MATCHED_CONTROLS   # an ald row: z, z_i, z_v, orbit, random-orbit-zv


def _train_one_epoch(data, seed: int, targets: str = "detached"):
    """``(model, CPU seconds)``: the paper model after one epoch (train + validation pairs) with
    ``targets`` (the paper's detached ones, or the evidence profile's both-ways)."""
    cfg = TrainConfig(dataset=data.name, epochs=1, seed=seed, device="cpu", targets=targets).validate()
    torch.manual_seed(seed)
    model = model_from_config(cfg, data.image_shape)
    opt = make_optimizer(model, cfg)
    c0 = time.process_time()
    run_epoch(model, data.train, cfg, torch.Generator().manual_seed(seed), torch.device("cpu"), opt)
    with torch.no_grad():
        run_epoch(model, data.val, cfg, torch.Generator().manual_seed(seed + 1), torch.device("cpu"))
    return model.eval(), time.process_time() - c0


class _Counted:
    """Counts what the probe fits do (:func:`galib.evaluation.probe.count_evaluations`:
    evaluations and their multiply-adds, 2 products of N x F x rows each) and wraps
    ``run_protocols`` to time them: CPU seconds per feature."""

    def __init__(self):
        self.fit_cpu, self.inner_protocols = [], features.run_protocols
        self.counting, self.count = probe.count_evaluations(), None

    @property
    def evals(self) -> int:
        return self.count.evals

    @property
    def flops(self) -> float:
        return self.count.flops

    def protocols(self, *a, **kw):
        c0 = time.process_time()
        out = self.inner_protocols(*a, **kw)
        self.fit_cpu.append(time.process_time() - c0)
        return out

    def __enter__(self):
        self.count = self.counting.__enter__()
        features.run_protocols = self.protocols
        return self

    def __exit__(self, *exc):
        features.run_protocols = self.inner_protocols
        return self.counting.__exit__(*exc)


def score_row_bench(data, matmul_peak: float, seed: int = 42, epochs: int = 50,
                    fit: dict | None = None, targets: str = "detached") -> dict:
    """CPU seconds of each part of one scored row of ``data`` (a ``DataSplits``) at one thread,
    and the ratio of the row to ``epochs`` epochs of training at the measured epoch's cost;
    ``matmul_peak``: the core's square fp32 matmul rate (GFLOP/s) measured in the same run;
    ``fit``: the probe's ``fit_probe`` keywords (default :data:`~galib.evaluation.probe.PRECONDITIONED`,
    the evidence profile's); ``targets``: the training's (:data:`galib.losses.TARGETS`)."""
    fit = dict(probe.PRECONDITIONED if fit is None else fit)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model, epoch_cpu = _train_one_epoch(data, seed, targets)
        parts = {}
        c0 = time.process_time()
        evaluate_model(model, data.test, seed=seed)
        parts["test scores"] = time.process_time() - c0
        with _Counted() as counted:
            c0 = time.process_time()
            found = features.probe_model(model, data, features=ROW_FEATURES, seed=seed, fit_kwargs=fit)
            probe_cpu = time.process_time() - c0
        for f, cpu in zip(found, counted.fit_cpu):
            parts[f"probe fits {f} (F = {found[f]['dim']})"] = cpu
        parts["encoding + feature maps"] = probe_cpu - sum(counted.fit_cpu)
        c0 = time.process_time()
        swap_scores(model, data, n_train=1000, n_test=1000, seed=0)
        parts["swap scores"] = time.process_time() - c0
    finally:
        torch.set_num_threads(threads)
    total = sum(parts.values())
    fit_cpu = sum(counted.fit_cpu)
    return {"meta": {"dataset": data.name, "n_train": len(data.train), "n_val": len(data.val),
                     "n_test": len(data.test), "threads": 1, "epochs_scored": epochs, "targets": targets,
                     "probe_fit": fit,
                     "loadavg": [round(v, 2) for v in os.getloadavg()]},
            "parts_cpu_s": parts, "row_cpu_s": total, "epoch_cpu_s": epoch_cpu,
            "training_cpu_s": epochs * epoch_cpu, "row_over_training": total / (epochs * epoch_cpu),
            "probe": {"evals": counted.evals, "fit_cpu_s": fit_cpu,
                      "gflops": counted.flops / fit_cpu / 1e9 if fit_cpu else None,
                      "matmul_peak_gflops": matmul_peak,
                      "accuracies": {f: {p: found[f][p] for p in ("a", "b", "c")} for f in found}}}


def format_score_row(res: dict) -> str:
    m, p = res["meta"], res["probe"]
    lines = [f"one scored row — {m['dataset']}: {m['n_train']} train / {m['n_val']} val / "
             f"{m['n_test']} test images, 1 thread, probe {m['probe_fit']} "
             f"(load average {m['loadavg']})"]
    lines += [f"  {name:<34s}{cpu:9.1f} CPU s" for name, cpu in res["parts_cpu_s"].items()]
    lines.append(f"  {'row':<34s}{res['row_cpu_s']:9.1f} CPU s")
    lines.append(f"probe products: {p['evals']} loss evaluations, {p['gflops']:.1f} GFLOP/s against "
                 f"{p['matmul_peak_gflops']:.1f} GFLOP/s for a square fp32 matmul on this core "
                 f"({100 * p['gflops'] / p['matmul_peak_gflops']:.0f} %)")
    lines.append(f"training it scores ({m['targets']} targets): {m['epochs_scored']} epochs x {res['epoch_cpu_s']:.1f} CPU s "
                 f"(one epoch measured here) = {res['training_cpu_s']:.0f} CPU s; the row costs "
                 f"{res['row_over_training']:.3f} of it (target: at most 0.1)")
    return "\n".join(lines)
