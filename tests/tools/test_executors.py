"""galib.tools.executors (issue 27, 5 and 9): a local worker killed with SIGKILL fails (after one
retry) only its own training, the pool is rebuilt and the rest go on; Ray's failed start is
tried once more, then one line."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from galib.experiments.plan import DataRequest, Training
from galib.tools import executors
from galib.tools.executors import EngineError, EngineOptions, _Local, _start_ray, run_plan
from galib.tools.sweep import summary
from galib.train import TrainConfig

CFG = TrainConfig(dataset="glyphs", epochs=1, latent_channels=8, device="cpu")


def fake_execute(t: Training, plan: dict, threads: int) -> dict:
    """What a worker runs instead of training: ``dies-once`` SIGKILLs its own process the first
    time (a marker file remembers it), ``always-dies`` every time; the rest return at once."""
    marker = Path(t.run_dir) / "died"
    if t.key == "always-dies" or (t.key == "dies-once" and not marker.exists()):
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return {"key": t.key, "pid": os.getpid(), "trained": 0}


def _plan(tmp_path: Path, keys, needs=None) -> list[Training]:
    needs = needs or {}
    return [Training(k, CFG, str(tmp_path / k), DataRequest.of(CFG), needs=needs.get(k, ()))
            for k in keys]


def test_a_killed_worker_is_run_once_more_and_the_others_go_on(tmp_path, capsys):
    """Two workers: the one running ``dies-once`` is SIGKILLed, which breaks the pool (and may take
    the training beside it along). Each training it broke runs once more on a new pool."""
    engine = _Local(EngineOptions(jobs=2), fn=fake_execute)
    plan = _plan(tmp_path, ["dies-once", "a", "b", "c"])
    try:
        outcomes = run_plan(plan, engine, threads=1)
    finally:
        engine.close()
    assert [(o.key, o.status) for o in outcomes] == [(k, "done") for k in ("dies-once", "a", "b", "c")]
    assert "dies-once: its worker process died" in capsys.readouterr().out
    text, status = summary(outcomes)
    assert status == 0 and "4 of 4 tasks done" in text


def test_a_worker_that_dies_again_fails_only_its_training(tmp_path, capsys):
    engine = _Local(EngineOptions(jobs=1), fn=fake_execute)
    plan = _plan(tmp_path, ["always-dies", "after", "good"], needs={"after": ("always-dies",)})
    try:
        outcomes = {o.key: o for o in run_plan(plan, engine, threads=1)}
    finally:
        engine.close()
    assert outcomes["always-dies"].status == "failed"
    assert "its worker process died twice" in outcomes["always-dies"].error
    assert outcomes["after"].status == "skipped" and outcomes["good"].status == "done"
    text, status = summary(list(outcomes.values()))
    assert status == 1 and "1 of 3 tasks done" in text and "failed: always-dies" in text


class FakeRay:
    """``ray.init`` that fails ``fails`` times with Ray's startup timeout."""

    def __init__(self, fails: int):
        self.fails, self.inits, self.shutdowns = fails, 0, 0

    def init(self, **_kw):
        self.inits += 1
        if self.inits <= self.fails:
            raise Exception("The current node timed out during startup. This could happen because "
                            "some of the Ray processes failed to startup.\n  more lines")

    def shutdown(self):
        self.shutdowns += 1


def test_ray_startup_is_tried_once_more_then_one_line(capsys):
    ray = FakeRay(fails=1)
    _start_ray(ray, num_cpus=1)
    assert ray.inits == 2 and ray.shutdowns == 1
    assert "Ray did not start (The current node timed out during startup" in capsys.readouterr().out
    with pytest.raises(EngineError, match=r"Ray did not start, twice \(The current node timed out") as err:
        _start_ray(FakeRay(fails=2), num_cpus=1)
    assert "\n" not in str(err.value) and "--executor local" in str(err.value)


def test_the_sweep_reports_an_engine_that_cannot_start_in_one_line(tmp_path, monkeypatch, capsys):
    import json

    from galib.tools import sweep as sweep_mod

    def no_engine(*_a):
        raise EngineError("Ray did not start, twice (timed out); use --executor local")
    monkeypatch.setattr(sweep_mod, "make_engine", no_engine)
    prof = tmp_path / "p.json"
    prof.write_text(json.dumps({"common": {"dataset": "glyphs", "epochs": 1, "device": "cpu"}}))
    assert sweep_mod.main(["--profile", str(prof), "--only", "02", "--run-root", str(tmp_path / "r"),
                           "--executor", "ray", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err == "[sweep] FAILED: Ray did not start, twice (timed out); use --executor local\n"


def test_a_missing_engine_package_is_one_line(monkeypatch):
    import builtins
    real = builtins.__import__

    def no_submitit(name, *a, **k):
        if name == "submitit":
            raise ModuleNotFoundError("No module named 'submitit'", name="submitit")
        return real(name, *a, **k)
    monkeypatch.setattr(builtins, "__import__", no_submitit)
    with pytest.raises(EngineError, match="--executor slurm needs the package 'submitit'"):
        executors.make_engine("slurm", EngineOptions())
