"""``python -m galib.train``: see :mod:`galib.train.cli` (``--help`` lists every flag).

It lives here, not in ``galib/train/__init__.py``, so that running it does not re-execute a module
``import galib`` has already imported (runpy's ``RuntimeWarning``)."""
from .cli import main, run_cli

if __name__ == "__main__":
    run_cli(main, prog="python -m galib.train")
