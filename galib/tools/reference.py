"""Run the authors' released training script as a reference, from its own checkout.

    python -m galib.tools.reference PATH/TO/rotated_mnist.py --seeds 42 43 44 45 46 --epochs 16 \\
        --out ~/galib-runs/reference/fashion-mnist

The script (``rotated_mnist.py`` of github.com/farhanaswarnali/Learning-Group-Actions-In-
Disentangled-Latent-Image-Representations) carries no licence, so galib never holds a copy: this
tool reads it from wherever the user's checkout is and runs it in memory with a few exact text
patches, each of which must match (a changed script is refused, naming the patch):

- its seeds (``torch``, ``numpy``, ``random``: 42) become ``--seed``;
- ``torchvision.datasets.MNIST(...)`` becomes galib's copy of ``--dataset`` (all 60,000 training
  and 10,000 test images, as float tensors in [-1, 1] — what its ``ToTensor`` + ``Normalize(0.5,
  0.5)`` gives), so it needs no download; its own 80/20 ``random_split`` and pairing stay;
- ``epochs = 50`` becomes ``--epochs``; its best-model ``torch.save`` writes into the run folder;
- the unused ``sklearn`` import is dropped;
- after each epoch's validation one line records the epoch: its printed train and validation
  losses, the seconds, and galib's latent diagnostics (:mod:`galib.train.diagnostics`) of its
  model on the first 2,048 images of its validation split.

Everything else (model, losses, optimiser, batch order, the per-sample rotation loop) runs as
the authors wrote it. Each seed writes ``<out>/seed<S>/history.json`` after every epoch (the
commit, the command, the script's SHA-1); a seed whose
history already holds ``--epochs`` rows is skipped, an unfinished one starts over (the script has
no resume). ``python -m galib.tools.stability <out>`` then reads the folders like galib's runs.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import shlex
import sys
import time
import types
from pathlib import Path

import torch

from ..datasets import DatasetUnavailable
from ..datasets.base import resolve_root, to_float
from ..datasets.idx import load_idx_dataset
from ..groups import get_group
from ..io import save_json
from ..paths import relative_paths, source_commit
from ..train.diagnostics import DIAGNOSTIC_PAIRS, diagnostic_pairs, latent_diagnostics

SEEDS = "torch.manual_seed(42)\nnp.random.seed(42)\nrandom.seed(42)"
PATCHES = (   # (what the script says, what runs instead)
    (SEEDS, "torch.manual_seed(_galib.seed)\nnp.random.seed(_galib.seed)\nrandom.seed(_galib.seed)"),
    ("from sklearn.metrics import accuracy_score\n", ""),
    ("torchvision.datasets.MNIST(root='./data', train=True, download=True, transform=transform)",
     "_galib.dataset(train=True)"),
    ("torchvision.datasets.MNIST(root='./data', train=False, download=True, transform=transform)",
     "_galib.dataset(train=False)"),
    ("epochs = 50\n", "epochs = _galib.epochs\n"),
    ("torch.save(model.state_dict(), 'rotated_model.pth')", "_galib.save(model)"),
    ("    val_loss = validate_epoch(model, val_loader, epoch)\n",
     "    val_loss = validate_epoch(model, val_loader, epoch)\n"
     "    _galib.record(epoch, model, train_losses[-1], val_loss, val_data)\n"),
)


def patched_source(text: str) -> str:
    """The script with every patch applied; a ``ValueError`` naming a patch that does not match
    exactly once."""
    for old, new in PATCHES:
        n = text.count(old)
        if n != 1:
            raise ValueError(f"the script does not contain exactly one {old.strip()!r} (found {n}): "
                             f"it is not the released rotated_mnist.py this tool was written for")
        text = text.replace(old, new)
    return text


class TensorDataset(torch.utils.data.Dataset):
    """``(image (1, H, W) float in [-1, 1], label int)`` pairs, as the script's dataset yields."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        self.images, self.labels = to_float(images), labels.tolist()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        return self.images[i], self.labels[i]


class Recorder:
    """What the patched script calls (``_galib`` in its namespace)."""

    def __init__(self, seed: int, epochs: int, splits, run_dir: Path, meta: dict):
        self.seed, self.epochs, self.splits, self.run_dir, self.meta = seed, epochs, splits, run_dir, meta
        self.history: list[dict] = []
        self.group = get_group("c4")
        self.t0 = time.perf_counter()

    def dataset(self, train: bool) -> TensorDataset:
        part = self.splits.train if train else self.splits.test
        return TensorDataset(part.images, part.labels)

    def save(self, model) -> None:
        torch.save(model.state_dict(), self.run_dir / "best.pt")

    def record(self, epoch: int, model, train_loss: float, val_loss: float, val_data) -> None:
        images = torch.stack([val_data[i][0] for i in range(min(DIAGNOSTIC_PAIRS, len(val_data)))])
        x, g = diagnostic_pairs(images, self.group, self.seed + 2)
        mask = (torch.sigmoid(model.mask_module.logits) > model.mask_module.threshold).float()
        with torch.no_grad():
            diag = latent_diagnostics(model.encoder, mask.detach().cpu(), self.group, x, g)
        self.history.append({"epoch": epoch + 1, "train_loss": float(train_loss),
                             "val_loss": float(val_loss), "variant_fraction": mask.mean().item(),
                             "seconds": time.perf_counter() - self.t0, **diag})
        self.t0 = time.perf_counter()
        save_json({**self.meta, "history": self.history}, self.run_dir / "history.json")


def _finished(run_dir: Path, epochs: int) -> bool:
    """A seed's history holds ``epochs`` rows, or says the replay stopped after a divergence."""
    try:
        doc = json.loads((run_dir / "history.json").read_text())
        return len(doc["history"]) >= epochs or "stopped" in doc
    except (OSError, ValueError, KeyError, TypeError):
        return False


def run_seed(script: Path, seed: int, epochs: int, splits, run_dir: Path, meta: dict) -> list[dict]:
    """Run the patched script once; returns its history."""
    run_dir.mkdir(parents=True, exist_ok=True)
    recorder = Recorder(seed, epochs, splits, run_dir, {**meta, "seed": seed, "epochs": epochs})
    _exec_script(script, recorder)
    return recorder.history


def _exec_script(script: Path, recorder: "Recorder") -> types.ModuleType:
    """The patched script run as a module, with ``recorder`` as its ``_galib``."""
    code = compile(patched_source(script.read_text()), str(script), "exec")
    module = types.ModuleType("rotated_mnist_reference")
    module.__dict__["_galib"] = recorder
    exec(code, module.__dict__)                                  # noqa: S102 (the user's script)
    return module


# galib's parameter names → the script's (same shapes; the script nests its Sequentials one deeper)
PARAMETER_NAMES = {"encoder.": "encoder.encoder.", "decoder.": "decoder.decoder.", "mask.logits": "mask_module.logits"}


def script_module(script: Path, splits) -> types.ModuleType:
    """The patched script run with 0 epochs: its model, optimiser and functions, nothing trained."""
    return _exec_script(script, Recorder(0, 0, splits, Path("."), {}))


def check_steps(script: Path, splits, seed: int = 0, steps: int = 50, fused: bool = True) -> dict:
    """Whether galib's objective *is* the script's: both start from galib's initial weights (copied
    into the script's model) and take ``steps`` Adam steps on the same batches of galib's pairs
    (the script's ``train_epoch`` on a list of batches, galib's ``PairLoss``) — galib with its own
    optimiser (``fused``: fused Adam) or with the script's (plain ``torch.optim.Adam``). Returns the
    first step's losses and the largest parameter difference after 1 and ``steps`` steps, absolute
    and relative to the parameter's scale."""
    from ..losses import PairLoss
    from ..models import build_model
    from ..pairs import iterate_pairs
    from ..train import TrainConfig, make_optimizer
    mod = script_module(script, splits)
    torch.manual_seed(seed)
    kit = build_model("c4", 64)
    theirs = mod.model
    mapped = {_their_name(k): v.clone() for k, v in kit.state_dict().items()}
    theirs.load_state_dict(mapped)
    batches = list(iterate_pairs(splits.train.head(64 * steps), kit.group, 64, torch.Generator().manual_seed(seed)))
    step = PairLoss(kit)
    opt = make_optimizer(kit, TrainConfig()) if fused else torch.optim.Adam(kit.parameters(), lr=1e-3)
    out = {"steps": steps, "seed": seed, "galib_optimiser": "fused Adam (galib)" if fused else "Adam (the script's)"}
    for i, (x, gx, g, y) in enumerate(batches):
        terms = step(x, gx, g)
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        opt.step()
        mod.train_losses.clear()
        mod.train_epoch(theirs, [(x, gx, (g * 90).float(), y)], mod.optimizer, 0)
        if i == 0:
            out["first_loss_galib"], out["first_loss_script"] = terms["loss"].item(), mod.train_losses[-1]
        if i in (0, steps - 1):
            out[f"max_abs_diff_after_{i + 1}"], out[f"max_rel_diff_after_{i + 1}"] = _differences(kit, theirs)
    return out


def replay_seed(script: Path, seed: int, epochs: int, run_dir: Path, meta: dict, factor: float = 2.0) -> list[dict]:
    """The script's own training step (its ``train_epoch``, model class and plain Adam) run on
    galib's seed ``seed``: galib's initial weights, training images (the evidence split, base seed
    42), batch order and group elements epoch by epoch (:func:`galib.train.epoch_generator`). Each
    epoch is validated as galib validates (its fixed validation pairs, the script's weights loaded
    into galib's model), so the history reads against galib's run of the same seed. Stops
    ``2`` epochs after a divergence (validation loss above ``factor`` × its best so far)."""
    from ..datasets import load_dataset
    from ..studies.training import divergence_epoch
    from ..models import build_model
    from ..pairs import iterate_pairs
    from ..train import TrainConfig, epoch_generator, run_epoch
    data = load_dataset("fashion-mnist", seed=42, verbose=False)
    mod = script_module(script, data)
    torch.manual_seed(seed)
    kit = build_model("c4", 64)
    mod.model.load_state_dict({_their_name(k): v.clone() for k, v in kit.state_dict().items()})
    mod.optimizer = torch.optim.Adam(mod.model.parameters(), lr=1e-3)   # the script's, on its model
    cfg = TrainConfig(dataset="fashion-mnist", seed=seed, device="cpu")
    diag_x, diag_g = diagnostic_pairs(to_float(data.val.images), kit.group, seed + 2)
    history: list[dict] = []
    run_dir.mkdir(parents=True, exist_ok=True)
    for epoch in range(epochs):
        t0 = time.perf_counter()
        batches = _Batches(iterate_pairs(data.train, kit.group, 64, epoch_generator(seed, epoch)),
                           math.ceil(len(data.train) / 64))
        mod.train_losses.clear()
        mod.train_epoch(mod.model, batches, mod.optimizer, epoch)
        kit.load_state_dict({k: v for k, v in ((k, mod.model.state_dict()[_their_name(k)]) for k in kit.state_dict())})
        va = run_epoch(kit, data.val, cfg, torch.Generator().manual_seed(seed + 1), torch.device("cpu"))
        diag = latent_diagnostics(kit.encode, kit.hard_mask(), kit.group, diag_x, diag_g)
        history.append({"epoch": epoch + 1, "train_loss": mod.train_losses[-1],
                        **{f"val_{k}": v for k, v in va.items()}, "variant_fraction": kit.variant_fraction(),
                        "seconds": time.perf_counter() - t0, **diag})
        save_json({**meta, "replay_of_galib_seed": seed, "history": history}, run_dir / "history.json")
        div = divergence_epoch(history, factor)
        if div is not None and epoch + 1 >= div + 2:
            save_json({**meta, "replay_of_galib_seed": seed, "stopped": f"2 epochs after its divergence at {div}",
                       "history": history}, run_dir / "history.json")
            break
    return history


class _Batches:
    """galib's batches as the script's loader yields them (angles in degrees), with a length."""

    def __init__(self, pairs, n: int):
        self.pairs, self.n = pairs, n

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        return ((x, gx, (g * 90).float(), y) for x, gx, g, y in self.pairs)


def _their_name(name: str) -> str:
    for ours, script_name in PARAMETER_NAMES.items():
        if name.startswith(ours):
            return script_name + name[len(ours):]
    raise KeyError(f"no counterpart in the script for galib parameter {name!r}")


def _differences(kit, theirs) -> tuple[float, float]:
    theirs_sd = theirs.state_dict()
    absd = rel = 0.0
    for k, v in kit.state_dict().items():
        d = (v - theirs_sd[_their_name(k)]).abs().max().item()
        absd, rel = max(absd, d), max(rel, d / max(v.abs().max().item(), 1e-12))
    return absd, rel


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("script", help="path to the authors' rotated_mnist.py (in their checkout)")
    ap.add_argument("--out", required=True, help="folder for seed<S>/history.json")
    ap.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44, 45, 46])
    ap.add_argument("--epochs", type=int, default=16)
    ap.add_argument("--dataset", default="fashion-mnist", choices=["fashion-mnist", "mnist"])
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as a sweep worker)")
    ap.add_argument("--replay", action="store_true",
                    help="instead of the script's own data and seeding: run its training step on galib's "
                         "seeds (initial weights, batches, pairs) into <out>/galib_seed<S>/history.json")
    ap.add_argument("--check-steps", type=int, default=0, metavar="N",
                    help="instead of training: start the script's model from galib's initial weights, take "
                         "N steps of both on the same batches, print the parameter differences and "
                         "write them to <out>/check_steps.json")
    args = ap.parse_args(argv)
    script = Path(args.script).expanduser()
    if not script.is_file():
        raise SystemExit(f"reference: no script at {script}")
    if args.epochs < 1 or args.threads < 1 or any(s < 0 for s in args.seeds):
        raise SystemExit(f"reference: --epochs and --threads must be >= 1 and seeds >= 0; got "
                         f"{args.epochs}, {args.threads}, {args.seeds}")
    try:
        patched_source(script.read_text())
    except ValueError as err:
        raise SystemExit(f"reference: {err}") from None
    try:
        splits = load_idx_dataset(args.dataset, resolve_root(args.data_root), download=False)
    except DatasetUnavailable as err:
        raise SystemExit(f"reference: {err}") from None
    torch.set_num_threads(args.threads)
    command = "python -m galib.tools.reference " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    meta = relative_paths({"commit": source_commit(), "command": command, "dataset": args.dataset,
                           "script_sha1": hashlib.sha1(script.read_bytes()).hexdigest(),
                           "threads": args.threads})
    out = Path(args.out).expanduser()
    if args.check_steps:
        res = [{**meta, **check_steps(script, splits, seed, args.check_steps, fused)}
               for seed in args.seeds for fused in (True, False)]
        save_json(res, out / "check_steps.json")
        print(json.dumps(res, indent=1))
        return
    for seed in args.seeds:
        replay = "replay of galib seed" if args.replay else "seed"
        run_dir = out / (f"galib_seed{seed}" if args.replay else f"seed{seed}")
        if _finished(run_dir, args.epochs):
            print(f"[reference] {replay} {seed}: finished ({run_dir})")
            continue
        print(f"[reference] {replay} {seed}: {args.epochs} epochs → {run_dir}", flush=True)
        if args.replay:
            replay_seed(script, seed, args.epochs, run_dir, meta)
        else:
            run_seed(script, seed, args.epochs, splits, run_dir, meta)

if __name__ == "__main__":
    main()
