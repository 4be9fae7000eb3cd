"""``torchrun -m galib.tools.train_ddp``: data-parallel training from the command line.

    torchrun --standalone --nproc_per_node=2 -m galib.tools.train_ddp --dataset glyphs \\
        --epochs 2 --run-dir runs/ddp

Flags mirror :class:`galib.train.TrainConfig` (as ``python -m galib.train``, ``--config``,
``--fresh`` and ``--repair`` included); errors are one line per rank, the traceback with
``--debug``. The library part (joining the process group, what each rank computes) is
:mod:`galib.distributed`. ``--standalone`` lets torchrun pick a free port itself (a port chosen
beforehand can be taken by another process before torchrun binds it).

Teardown: after training every rank waits at a barrier, then destroys the process group, so no
rank closes its connections (or exits) while another still writes files or talks to it; on an
error the rank tears down at once (a barrier could wait for a rank that died).
"""
from __future__ import annotations

import json

import torch.distributed as dist

from ..distributed import init_distributed, train_distributed
from ..train import config_from_args, config_parser, run_cli

PROG = "torchrun -m galib.tools.train_ddp"


def summary(result) -> dict:
    """What rank 0 prints after training."""
    best = result.best
    return {"world_size": dist.get_world_size(), "backend": dist.get_backend(),
            "data": result.data.describe(), "best_epoch": best["epoch"],
            "best_val_loss": best["val_loss"], "variant_fraction": best["variant_fraction"],
            "seconds_per_epoch": sum(h["seconds"] for h in result.history) / len(result.history)}


def main(argv=None) -> None:
    parser = config_parser("Data-parallel training of the ALD model; launch with torchrun.",
                           run_flags=True, prog=PROG)
    args = parser.parse_args(argv)
    cfg = init_distributed(config_from_args(args).validate())     # bad values: before joining
    ok = False
    try:
        result = train_distributed(cfg, args.run_dir, progress=not args.no_progress,
                                   fresh=args.fresh, repair=args.repair)
        if dist.get_rank() == 0:
            print(json.dumps(summary(result), indent=2), flush=True)
        ok = True
    finally:
        if ok:
            dist.barrier()                                     # every rank done before any leaves
        dist.destroy_process_group()


if __name__ == "__main__":
    run_cli(main, prog="galib.tools.train_ddp")
