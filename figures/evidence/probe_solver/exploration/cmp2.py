"""Whitened solver at given (delta, iters) on all four features; merged into an existing cmp JSON."""
import json, sys, time, os, torch
torch.set_num_threads(1)
from galib.train.checkpoints import load_checkpoint
from galib.experiments.plan import DataRequest
from galib.evaluation.features import probe_model
from galib.evaluation import probe as P
run, out = sys.argv[1], sys.argv[2]
model, cfg, _ = load_checkpoint(f"{run}/best.pt")
data = DataRequest("fashion-mnist", None, 42, None, None, 0.2).load()
res = json.load(open(out)) if os.path.exists(out) else {"run": run}
for spec in sys.argv[3:]:
    solver, delta, it = spec.split(":")
    P.PRECONDITION_DELTA = float(delta)
    t0 = time.process_time()
    r = probe_model(model, data, features=["z", "z_i", "z_v", "orbit"], seed=42, fit_kwargs={"max_iter": int(it), "solver": solver})
    cpu = time.process_time() - t0
    name = f"{solver}-{it}" if solver == "warm-path" else f"{solver}-d{delta}-{it}"
    res = json.load(open(out)) if os.path.exists(out) else res
    res[name] = {"cpu": cpu, "probes": r}
    json.dump(res, open(out, "w"))
    print(name, f"{cpu:.0f}s", flush=True)
