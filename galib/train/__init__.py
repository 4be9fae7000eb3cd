"""Training: ``TrainConfig`` (the paper's defaults), ``train``, run dirs and checkpoints.

* :mod:`~galib.train.config` — ``TrainConfig`` (each field's help and choices as metadata), its
  checks, and the model it builds (with a shape check naming the image sizes that fit);
* :mod:`~galib.train.loop` — ``train``, one epoch, the non-finite guard;
* :mod:`~galib.train.runs` — a run dir is one run: locked, its files checked against each other
  and against the requested run, repaired where that is exact, else a clear error;
* :mod:`~galib.train.checkpoints` — durable writes, safe and checked reads, ``load_checkpoint``;
* :mod:`~galib.train.cli` — ``python -m galib.train`` (flags from ``TrainConfig``, ``--config``,
  one-line errors).

Checkpoints are plain dicts of tensors and literals (``torch.load(..., weights_only=True)``),
written to a temporary file, flushed to disk and renamed, so a crash never leaves a half-written
file. Under ``torch.distributed`` (see :mod:`galib.distributed`) only rank 0 writes.
"""
from .checkpoints import CheckpointError, load_checkpoint, read_checkpoint
from .cli import config_from_args, config_parser, run_cli, saved_config
from .config import LEGACY, MODEL_FIELDS, RESUME_FREE, TrainConfig, initial_mask_probs, model_from_config
from .loop import (LOSS_TERMS, NonFiniteError, TrainResult, epoch_generator, make_optimizer, run_epoch,
                   train)
from .runs import RunError, best_epoch

__all__ = ["CheckpointError", "LEGACY", "LOSS_TERMS", "MODEL_FIELDS", "NonFiniteError", "RESUME_FREE",
           "RunError", "TrainConfig", "TrainResult", "best_epoch", "config_from_args", "config_parser",
           "epoch_generator", "initial_mask_probs", "load_checkpoint", "make_optimizer",
           "model_from_config", "read_checkpoint", "run_cli", "run_epoch", "saved_config", "train"]
