"""Studies as plans, between :mod:`galib.evaluation` (which scores a given model) and the notebooks.

* :mod:`~galib.experiments.plan` — a :class:`Training` (config, data, run folder, needs), run
  folders named in one place, :func:`train_or_load`, :func:`execute` (what a sweep worker runs);
* :mod:`~galib.experiments.rows` — :class:`EvalSettings` and the cached, versioned scored rows;
* one module per study: :mod:`~.training` (02), :mod:`~.tau` (03), :mod:`~.baselines` and
  :mod:`~.probes` (05, and 04's designs), :mod:`~.blocked` (06), :mod:`~.so2` (the SO(2) latent
  actions, outside the notebooks: `python -m galib.tools.compare_actions`);
* :mod:`~galib.experiments.registry` — the notebooks in one table, and the trainings each opens.
"""
from .plan import (DataRequest, NotSweptError, Training, execute, merge, run_folder,
                   train_or_load)
from .registry import NOTEBOOKS, STEMS, notebook_trainings
from .rows import EvalSettings

__all__ = ["DataRequest", "EvalSettings", "NOTEBOOKS", "NotSweptError", "STEMS", "Training",
           "execute", "merge", "notebook_trainings", "run_folder", "train_or_load"]
