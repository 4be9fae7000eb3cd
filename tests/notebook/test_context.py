"""Fast checks of galib.notebook.context: parameters, the training config and metrics.json."""
from __future__ import annotations

import json
import math

import pytest
import torch

from galib.notebook.context import collect_params, train_config, write_metrics
from galib.studies.training import flat_scalars


def test_collect_params_and_config():
    before = {"x"}
    ns = {"x": 1, "tau": 0.3, "epochs": 2, "_hidden": 1, "fn": print, "max_train": None}
    params = collect_params(ns, before)
    assert params == {"tau": 0.3, "epochs": 2, "max_train": None}
    cfg = train_config({**params, "fig_dir": "f", "interactive": False})
    assert cfg.tau == 0.3 and cfg.epochs == 2
    with pytest.raises(ValueError):
        train_config({"tau": 1.5})


def test_metrics_file(tmp_path):
    m = {"a": torch.tensor([1.0, 2.0]), "b": float("nan"), "c": (1, 2), "p": tmp_path}
    path = write_metrics(m, tmp_path, "stem")
    back = json.loads(path.read_text())
    assert back["a"] == [1.0, 2.0] and math.isnan(back["b"]) and back["c"] == [1, 2]
    assert [p.name for p in path.parent.iterdir()] == ["metrics.json"]   # no temporary left
    flat = flat_scalars({"recon_mse": 0.1, "recon_mse/90°": 0.2, "n": 3, "names": ["a"],
                             "sub": {"x": 1.5}, "per_element": {"0": 1.0}})
    assert flat == {"recon_mse": 0.1, "n": 3, "sub.x": 1.5}


# ----------------------------------------------------------------------------- paths and run folders
from pathlib import Path  # noqa: E402

from galib.notebook import context  # noqa: E402
from galib.train import TrainConfig  # noqa: E402
from galib.studies import params as nb_params, registry
from galib import paths

ROOT = Path(__file__).resolve().parents[2]
ALD = {"dataset": "glyphs", "group": "c4", "tau": 0.5, "epochs": 2, "seed": 42, "max_train": 256,
       "device": "cpu", "run_dir": None, "fig_dir": None, "interactive": False}


def _resolved(stem, **params):
    p = {**ALD, **params}
    return nb_params.resolve_params(stem, p, nb_params.train_config(p))


def test_home(monkeypatch, tmp_path):
    monkeypatch.delenv(paths.HOME_ENV, raising=False)
    assert paths.home() == ROOT                                   # the checkout this galib is in
    monkeypatch.setenv(paths.HOME_ENV, str(tmp_path))
    assert paths.home() == tmp_path.resolve()


def test_paths_resolve_against_home_not_cwd(monkeypatch, tmp_path):
    home, cwd = tmp_path / "home", tmp_path / "elsewhere"
    cwd.mkdir()
    monkeypatch.setenv(paths.HOME_ENV, str(home))
    monkeypatch.chdir(cwd)
    p = _resolved("02_training", fig_dir="figs", data_root="data")
    assert p["fig_dir"] == str(home / "figs") and p["data_root"] == str(home / "data")
    assert _resolved("02_training")["fig_dir"] == str(home / "runs" / "lab" / "figures")
    run = Path(_resolved("02_training")["run_dir"])
    assert run.parent.parent == home / "runs" / "lab" / "train" and run.name == "ald"
    assert run.parent.name.startswith("glyphs-c4-")
    assert _resolved("02_training", run_dir="/abs/run")["run_dir"] == "/abs/run"
    assert _resolved("01_data_pairing")["run_dir"] is None          # 01 trains nothing
    assert not any(cwd.iterdir())                                   # nothing written where we stand


def test_run_folders_keyed_by_configuration(monkeypatch, tmp_path):
    monkeypatch.setenv(paths.HOME_ENV, str(tmp_path))
    base = _resolved("02_training")["run_dir"]
    # 02, 04 and 05 share the ALD run; 05's baselines train beside it, so its ALD baseline is 02's run
    assert _resolved("04_latent_traversals")["run_dir"] == base
    p05 = _resolved("05_linear_probe", baseline_dir=None)
    assert p05["run_dir"] == base and str(Path(p05["baseline_dir"]) / "ald") == base
    # what is trained changes the folder; where and on what device it runs does not
    for change in ({"tau": 0.3}, {"epochs": 3}, {"seed": 1}, {"max_train": 128}, {"lambda_inv": 0.5}):
        assert _resolved("02_training", **change)["run_dir"] != base, change
    for same in ({"device": "auto"}, {"lambda_inv": 1}, {"fig_dir": "x"}, {"max_test": 10}):
        assert _resolved("02_training", **same)["run_dir"] == base, same
    # 03 sweeps τ itself: its root ignores tau, not epochs; 06 sweeps datasets
    sweep = _resolved("03_mask_sparsity_vs_tau")["run_dir"]
    assert _resolved("03_mask_sparsity_vs_tau", tau=0.3)["run_dir"] == sweep != base
    assert _resolved("03_mask_sparsity_vs_tau", epochs=3)["run_dir"] != sweep
    assert _resolved("06_blocked", dataset="mnist")["run_dir"] == _resolved("06_blocked")["run_dir"]
    assert registry.run_key(TrainConfig(tau=0.3)) != registry.run_key(TrainConfig())


def test_describe_run_dir(tmp_path):
    cfg = TrainConfig(epochs=3)
    assert context.describe_run_dir(tmp_path, cfg) == "new"
    (tmp_path / "history.json").write_text(json.dumps({"history": [{}, {}]}))
    assert "resuming" in context.describe_run_dir(tmp_path, cfg)
    assert "finished run (2 epochs)" in context.describe_run_dir(tmp_path, TrainConfig(epochs=2))
    sub = tmp_path / "sweep"
    (sub / "tau_0.5").mkdir(parents=True)
    (sub / "tau_0.5" / "history.json").write_text("{}")
    assert "1 earlier run" in context.describe_run_dir(sub, cfg)


PARAMS_CELL = "# Parameters: flat literals only\nepochs = 5\ntau = 0.5\nfig_dir = None\n"


def test_injected_parameters_are_checked():
    ok = {"_ih": ["", "import x", PARAMS_CELL, "# Parameters\nepochs = 3\n", "ctx = ..."]}
    context.check_injected("02_training", ok)                       # declared: fine
    context.check_injected("02_training", {"_ih": ["", PARAMS_CELL]})   # nothing injected
    context.check_injected("02_training", {})                       # no history at all
    bad = {"_ih": ["", PARAMS_CELL, "# Parameters\nepoch = 3\ntau = 0.3\n"]}
    with pytest.raises(context.UnknownParameterError, match=r"\['epoch'\].*did you mean 'epochs'"):
        context.check_injected("02_training", bad)
    # without the parameters cell in the history, the committed notebook's cell is the reference
    with pytest.raises(context.UnknownParameterError, match="epoch"):
        context.check_injected("02_training", {"_ih": ["# Parameters\nepoch = 3\n"]})
    context.check_injected("02_training", {"_ih": ["# Parameters\nepochs = 3\n"]})
    assert nb_params.declared_in_notebook(ROOT / "notebooks" / "02_training.ipynb") >= {"epochs", "run_dir"}


def test_relative_paths_known_answers(tmp_path):
    root = tmp_path / "repo"
    obj = {"run_dir": str(root / "runs" / "a"), "fig": [str(root)], "other": "/elsewhere/x", "n": 3}
    assert paths.relative_paths(obj, root) == {"run_dir": "runs/a", "fig": ["."],
                                                 "other": "/elsewhere/x", "n": 3}


def test_source_commit_names_the_checkout():
    commit = paths.source_commit()
    assert commit == "unknown" or len(commit.split("-")[0]) >= 7


@pytest.mark.parametrize("params,match", [
    ({"taus": 0.5}, "taus must be a non-empty list of thresholds in (0, 1), e.g. [0.3, 0.5]; got 0.5"),
    ({"taus": []}, "taus must be a non-empty list"),
    ({"taus": [0.3, 1.5]}, "taus must be a non-empty list of thresholds in (0, 1)"),
    ({"seeds": 42}, "seeds must be a list of training seeds"),
    ({"seeds": [42, 2 ** 40]}, "seeds must be a list of training seeds, integers in [0, 1099511627775]"),
    ({"probe_iters": 0}, "probe_iters must be a positive integer; got 0"),
    ({"baselines": "ald"}, "baselines must be a non-empty list of baseline names; got 'ald'"),
    ({"seed": 1099511627776000}, "seed must be an integer in [0, 1099511627775]; got 1099511627776000"),
    ({"mask_seed": 2 ** 63}, "mask_seed must be an integer in [0, 9223372036854775807]"),
])
def test_notebook_parameters_are_checked_naming_the_parameter(params, match):
    """Issue 27, 11 and 10: ``-p taus 0.5`` was "'float' object is not iterable", a huge seed an
    overflow naming no field; both now one line naming the parameter, before any data is loaded
    (train_config is what setup() and the sweep's plan call first)."""
    from galib.studies.params import notebook_config
    with pytest.raises(ValueError) as err:
        train_config(params)
    assert match in str(err.value)
    with pytest.raises(ValueError, match=r"^" + match.split(" ")[0]):
        notebook_config("03_mask_sparsity_vs_tau", params)


def test_the_notebooks_own_defaults_pass_the_checks():
    from galib.studies.params import notebook_config
    from galib.studies.registry import STEMS
    for stem in STEMS:
        notebook_config(stem, {})


def test_relative_paths_write_the_home_folder_as_tilde(tmp_path):
    from pathlib import Path

    from galib.notebook.context import relative_paths
    user = str(Path.home())
    got = relative_paths({"a": f"{tmp_path}/x", "b": [f"{user}/runs/r"]}, root=tmp_path)
    assert got == {"a": "x", "b": ["~/runs/r"]}
