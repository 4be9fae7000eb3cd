"""bf16 autocast (``TrainConfig.amp``) and the thread rule (galib.devices): known answers at both
ends — allowed where native bf16 is detected, a clear error elsewhere; never timing."""
from dataclasses import replace

import pytest
import torch

from galib import devices
from galib.train import TrainConfig, model_from_config, run_epoch
from galib.datasets import load_dataset

CFG = TrainConfig(dataset="glyphs", device="cpu", batch_size=32)
NATIVE = devices.amp_problem("cpu") is None


# ----------------------------------------------------------------------------- detection
@pytest.mark.parametrize("flags, expected", [({"fpu", "avx512f", "avx512_bf16"}, "avx512_bf16"),
                                             ({"amx_bf16", "amx_tile", "avx512_bf16"}, "amx_bf16"),
                                             ({"fpu", "avx2", "avx512f"}, None), (set(), None)])
def test_cpu_bf16_support_reads_the_flags(flags, expected):
    assert devices.cpu_bf16_support(flags) == expected


def test_cpu_flags_parses_proc_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: X\nflags\t\t: fpu sse2 avx512_bf16\n\nprocessor\t: 1\n")
    assert devices.cpu_flags(info) == {"fpu", "sse2", "avx512_bf16"}
    assert devices.cpu_flags(tmp_path / "missing") == set()


def test_amp_is_refused_without_native_bf16(monkeypatch):
    monkeypatch.setattr(devices, "cpu_bf16_support", lambda flags=None: None)
    with pytest.raises(ValueError, match=r"amp=True .* needs a CUDA device or a CPU with native bf16.*"
                                         r"amx_bf16, avx512_bf16.*set amp=False"):
        replace(CFG, amp=True).validate()
    assert replace(CFG, amp=False).validate().amp is False


def test_amp_is_allowed_with_native_bf16(monkeypatch):
    monkeypatch.setattr(devices, "cpu_bf16_support", lambda flags=None: "avx512_bf16")
    assert replace(CFG, amp=True).validate().amp is True
    assert devices.amp_problem("mps") is not None                 # never on MPS


def test_amp_must_be_a_bool():
    with pytest.raises(ValueError, match="amp must be True or False; got 'yes'"):
        replace(CFG, amp="yes").validate()


# ----------------------------------------------------------------------------- the step
def _epoch(amp: bool, seen: list):
    data = load_dataset("glyphs", seed=0, glyphs_sizes=(96, 16), verbose=False)
    torch.manual_seed(0)
    model = model_from_config(CFG, data.image_shape)
    model.encoder[0].register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    cfg = replace(CFG, amp=amp)
    return run_epoch(model, data.val, cfg, torch.Generator().manual_seed(1), torch.device("cpu"))


@pytest.mark.skipif(not NATIVE, reason="this CPU has no native bf16")
def test_amp_runs_the_step_in_bf16_with_close_losses():
    dtypes_fp32, dtypes_bf16 = [], []
    fp32, bf16 = _epoch(False, dtypes_fp32), _epoch(True, dtypes_bf16)
    assert set(dtypes_fp32) == {torch.float32} and set(dtypes_bf16) == {torch.bfloat16}
    assert all(isinstance(v, float) for v in bf16.values())           # losses come back as floats
    for k in fp32:                                                    # bf16 rounding, not another loss
        assert bf16[k] == pytest.approx(fp32[k], rel=0.05, abs=1e-4), k


# ----------------------------------------------------------------------------- threads
@pytest.mark.parametrize("cores, workers, busy, threads", [
    (2, 1, 0.1, 2), (2, 1, 0.4, 2), (2, 1, 0.6, 1), (2, 1, 1.0, 1), (2, 2, 0.0, 1), (1, 1, 0.0, 1),
    (8, 1, 0.2, 8), (8, 1, 2.0, 1), (2, 1, None, 1)])
def test_thread_rule(cores, workers, busy, threads):
    assert devices.thread_rule(cores, workers, busy)[0] == threads


def test_busy_cores_reads_proc_stat(tmp_path, monkeypatch):
    stat = tmp_path / "stat"
    samples = iter(["cpu  100 0 100 800 0 0 0 0 0 0\n", "cpu  150 0 150 900 0 0 0 0 0 0\n"])

    def read_text(self, *a, **k):
        return next(samples)

    monkeypatch.setattr(devices.Path, "read_text", read_text)
    monkeypatch.setattr(devices.os, "cpu_count", lambda: 2)
    busy = devices.busy_cores(0.0, stat)                  # 100 busy of 200 jiffies: half of 2 cores
    assert busy == pytest.approx(1.0)


def test_machine_load_takes_the_larger_reading(monkeypatch):
    monkeypatch.setattr(devices, "busy_cores", lambda *a, **k: 0.2)
    monkeypatch.setattr(devices.os, "getloadavg", lambda: (1.5, 1.0, 0.5))
    assert devices.machine_load() == 1.5
    monkeypatch.setattr(devices, "busy_cores", lambda *a, **k: None)
    assert devices.machine_load() == 1.5
    monkeypatch.setattr(devices.os, "getloadavg", lambda: (0.1, 0.1, 0.1))
    monkeypatch.setattr(devices, "busy_cores", lambda *a, **k: 1.2)
    assert devices.machine_load() == 1.2


def test_configure_threads_applies_and_prints(monkeypatch, capsys):
    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(devices, "available_cores", lambda: 4)      # the process's CPU affinity
    try:
        assert devices.configure_threads(3) == 3 and torch.get_num_threads() == 3
        assert devices.configure_threads(9, workers=2) == 2          # never more than the cores
        monkeypatch.setattr(devices, "machine_load", lambda: 3.0)
        assert devices.configure_threads() == 4                       # the cores available, whatever the load
        assert devices.configure_threads(workers=2) == 2               # shared by the workers
        monkeypatch.setattr(devices, "machine_load", lambda: 3.0)
        assert devices.configure_threads(adaptive=True) == 1
        monkeypatch.setattr(devices, "machine_load", lambda: 0.0)
        assert devices.configure_threads(adaptive=True) == 4
        assert devices.configure_threads(workers=2, adaptive=True) == 1
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert devices.configure_threads() == 1
        out = capsys.readouterr().out
        assert "[galib] torch threads: 3 (asked for 3)" in out
        assert "[galib] torch threads: 1 (3.0 of 4 cores busy with other processes)" in out
        assert "[galib] torch threads: 4 (machine idle" in out
        assert "[galib] torch threads: 4 (the cores available to this process (4))" in out
        with pytest.raises(ValueError, match="threads must be a positive integer or None; got 0"):
            devices.configure_threads(0)
    finally:
        torch.set_num_threads(before)
