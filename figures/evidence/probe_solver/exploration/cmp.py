"""Today's probe (warm-path, 100 iters) vs the whitened solver on one trained model, all four features."""
import json, sys, time, torch
torch.set_num_threads(1)
from galib.train.checkpoints import load_checkpoint
from galib.experiments.plan import DataRequest
from galib.evaluation.features import probe_model
run, out = sys.argv[1], sys.argv[2]
iters = [int(x) for x in sys.argv[3].split(",")] if len(sys.argv) > 3 else [40]
mt = int(sys.argv[4]) if len(sys.argv) > 4 else None
model, cfg, _ = load_checkpoint(f"{run}/best.pt")
data = DataRequest("fashion-mnist", None, 42, None, None, 0.2).load()
res = {"run": run}
variants = [("whitened", i) for i in iters] + [("warm-path", 100)]
for solver, it in variants:
    t0 = time.process_time()
    r = probe_model(model, data, features=["z", "z_i", "z_v", "orbit"], seed=42, max_train=mt,
                    fit_kwargs={"max_iter": it, "solver": solver})
    cpu = time.process_time() - t0
    res[f"{solver}-{it}"] = {"cpu": cpu, "probes": r}
    print(solver, it, f"{cpu:.0f} cpu-s", {f: {k: round(v[k], 4) for k in ("a", "b", "c", "val_a", "val_c", "l2_upright", "l2_transformed", "iters")} for f, v in r.items()}, flush=True)
    json.dump(res, open(out, "w"))
