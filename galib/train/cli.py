"""The command line of ``python -m galib.train`` (and the parser ``galib.tools.train_ddp`` and
``galib.tools.baseline_table`` share).

One ``--flag`` per :class:`TrainConfig` field, with the field's help and choices
(:func:`galib.train.config.describe_field`). ``--config PATH`` replays a saved run configuration
(a run dir, its ``history.json``, a checkpoint, or a JSON file with a ``config`` object); flags
given explicitly override it. :func:`run_cli` turns an error into one line on stderr and a
non-zero exit status (the traceback only with ``--debug`` or ``GALIB_DEBUG=1``).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import fields
from pathlib import Path

import torch

from ..devices import configure_threads
from .checkpoints import read_checkpoint
from .config import TrainConfig, describe_field, with_legacy
from .limits import check_limits, seed_arg
from .loop import train


class ShortUsageParser(argparse.ArgumentParser):
    """argparse whose errors are the error line first and a one-line pointer to ``--help``, not
    the whole usage block (one flag per config field makes it long)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n  (usage: {self.prog} --help)\n")


def int_at_least(low: int):
    """An argparse ``type``: an integer >= ``low`` (argparse's one-line error otherwise)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}; got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}; got {value}")
        return value
    parse.__name__ = f"int>={low}"
    return parse


def config_parser(description: str = "Train the ALD model.", run_flags: bool = False,
                  prog: str | None = None) -> argparse.ArgumentParser:
    """An argparse parser with one ``--flag`` per ``TrainConfig`` field plus ``--config``,
    ``--run-dir``, ``--no-progress`` and ``--debug`` (and ``--fresh`` / ``--repair`` with
    ``run_flags``). Unset fields take ``--config``'s value, else the default
    (:func:`config_from_args`)."""
    parser = ShortUsageParser(prog=prog, description=description)
    group = parser.add_argument_group("training configuration (TrainConfig)")
    for f in fields(TrainConfig):
        _add_field(group, f.name, f.default)
    parser.add_argument("--config", metavar="PATH", default=None,
                        help="replay a saved configuration: a run dir, its history.json, a checkpoint "
                             "(.pt) or a JSON file with a 'config' object; flags given override it")
    parser.add_argument("--run-dir", default=None, help="folder for checkpoints and history.json "
                        "(resumed if it holds this run)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback on errors (also GALIB_DEBUG=1)")
    if run_flags:
        how = parser.add_mutually_exclusive_group()
        how.add_argument("--fresh", action="store_true", help="start the run dir over (its old files "
                         "are moved to RUN_DIR/previous-N/)")
        how.add_argument("--repair", action="store_true", help="rebuild damaged or missing run files "
                         "where that is exact (damaged ones are set aside as NAME.damaged)")
    return parser


def _add_field(parser, name: str, default) -> None:
    help_text, choices, strict = describe_field(name)
    flag = "--" + name.replace("_", "-")
    listed = f"; choices: {', '.join(choices)}" if choices and not strict else ""
    help_text = f"{help_text}{listed} (default: {default})".replace("%", "%%")
    if isinstance(default, bool):                              # --amp / --no-amp
        parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction,
                            default=argparse.SUPPRESS, help=help_text)
        return
    kind = {"max_train": _optional_int, "mask_variant": _optional_int, "threads": _optional_int, "data_root": str,
            "seed": seed_arg("seed"), "mask_seed": seed_arg("mask_seed")}.get(name, type(default))
    parser.add_argument(flag, dest=name, type=kind, default=argparse.SUPPRESS, help=help_text,
                        choices=choices if strict else None, metavar=None if strict else name.upper())


def _optional_int(text: str) -> int | None:
    return None if text.lower() == "none" else int(text)


def saved_config(path: str | Path) -> dict:
    """The ``TrainConfig`` fields saved at ``path`` (legacy defaults filled in): a run dir (its
    history.json, else last.pt, else best.pt: the first of them that is readable, saying so on
    stderr when it skips one), a history/metrics JSON file with a ``config`` object (or a flat
    one), or a checkpoint."""
    p = Path(path)
    if not p.is_dir():
        if not p.is_file():
            raise FileNotFoundError(f"--config {p}: no such file or folder")
        return with_legacy(_config_in(p))
    names = ("history.json", "last.pt", "best.pt")
    found = [p / n for n in names if (p / n).is_file()]
    if not found:
        folders = [n for n in names if (p / n).is_dir()]
        why = f" ({', '.join(folders)}: a folder, not a file)" if folders else ""
        kind = "a folder, not a file, and it" if p.suffix in (".pt", ".json") else "the folder"
        raise FileNotFoundError(f"--config {p}: {kind} holds no history.json, last.pt or "
                                f"best.pt{why}; pass a run dir or one of those files")
    problems = []
    for f in found:
        try:
            config = _config_in(f)
        except (ValueError, OSError) as err:                   # CheckpointError is a ValueError
            problems.append(str(err))
            continue
        if problems:
            print(f"[galib] {'; '.join(problems)}: using the configuration in {f}", file=sys.stderr)
        return with_legacy(config)
    raise ValueError(f"--config {p}: no readable configuration in the run dir ({'; '.join(problems)})")


def _config_in(p: Path) -> dict:
    """The ``config`` mapping of one history/metrics JSON file or checkpoint."""
    if p.suffix == ".json":
        try:
            record = json.loads(p.read_text())
        except (ValueError, UnicodeDecodeError) as err:
            raise ValueError(f"--config {p} is not valid JSON ({err})") from None
        config = record.get("config", record) if isinstance(record, dict) else None
    else:
        config = read_checkpoint(p, ("config",))["config"]
    if not isinstance(config, dict):
        raise ValueError(f"--config {p} holds no configuration object (expected a 'config' mapping "
                         f"of TrainConfig fields)")
    return config


def config_from_args(args) -> TrainConfig:
    """The config the parsed ``args`` ask for: each flag given, else ``--config``'s value, else
    the default."""
    base = saved_config(args.config) if getattr(args, "config", None) else {}
    given = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if hasattr(args, f.name)}
    return check_limits(TrainConfig.from_dict({**base, **given}))      # before any data is loaded


def summary(result) -> dict:
    """What the command line prints after training: the data, the best epoch and its mask."""
    best = result.best
    return {"data": result.data.describe(), "best_epoch": best["epoch"],
            "best_val_loss": best["val_loss"], "variant_fraction": best["variant_fraction"],
            "variant_channels": best["variant_channels"],
            "seconds_per_epoch": sum(h["seconds"] for h in result.history) / len(result.history)}


def main(argv=None):
    """``python -m galib.train``: train (or resume, or load) one run and print its summary."""
    args = config_parser(run_flags=True, prog="python -m galib.train").parse_args(argv)
    before = torch.get_num_threads()
    configure_threads(getattr(args, "threads", None))
    try:
        result = train(config_from_args(args), args.run_dir, progress=not args.no_progress,
                       fresh=args.fresh, repair=args.repair)
    finally:
        torch.set_num_threads(before)          # main() called in-process leaves its caller as it was
    print(json.dumps(summary(result), indent=2))
    return result


def run_cli(main, argv=None, prog: str = "galib") -> None:
    """Call ``main(argv)``; an error becomes one line on stderr and exit status 1 (130 when
    interrupted). ``--debug`` in ``argv`` or ``GALIB_DEBUG=1`` re-raises with the traceback."""
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv or os.environ.get("GALIB_DEBUG", "") not in ("", "0")
    rank = os.environ.get("RANK") if int(os.environ.get("WORLD_SIZE", "1")) > 1 else None
    where = f"{prog}{f' [rank {rank}]' if rank is not None else ''}"
    try:
        main(argv)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"{where}: interrupted; files already written are kept (run again to resume)",
              file=sys.stderr)
        sys.exit(130)
    except Exception as err:                                   # noqa: BLE001 (one line per error)
        if debug:
            raise
        print(f"{where}: error: {_one_line(err)} (--debug or GALIB_DEBUG=1 shows the traceback)",
              file=sys.stderr)
        sys.exit(1)


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or "(no message)"
    plain = isinstance(err, (ValueError, OSError, FloatingPointError)) and not isinstance(
        err, (UnicodeError,))
    return text if plain else f"{type(err).__name__}: {text}"
