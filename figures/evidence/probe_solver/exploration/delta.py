import json, sys, time, torch
torch.set_num_threads(1)
from galib.train.checkpoints import load_checkpoint
from galib.experiments.plan import DataRequest
from galib.evaluation.features import probe_model
from galib.evaluation import probe as P
run = sys.argv[1]; feats = sys.argv[2].split(",")
model, cfg, _ = load_checkpoint(f"{run}/best.pt")
data = DataRequest("fashion-mnist", None, 42, None, None, 0.2).load()
for spec in sys.argv[3:]:
    delta, it = spec.split(":")
    P.PRECONDITION_DELTA = float(delta)
    t0 = time.process_time()
    r = probe_model(model, data, features=feats, seed=42, fit_kwargs={"max_iter": int(it), "solver": "whitened"})
    print(spec, f"{time.process_time()-t0:.0f}s", {f: {k: round(v[k], 4) for k in ("a", "b", "c", "l2_upright", "l2_transformed")} for f, v in r.items()}, flush=True)
