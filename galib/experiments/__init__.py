"""What every study stands on, between :mod:`galib.evaluation` (which scores a given model) and the
studies (:mod:`galib.studies`):

* :mod:`~galib.experiments.plan` — a :class:`Training` (config, data, run folder, needs) and a
  :class:`Scoring`, run folders of seeds named in one place, :func:`train_or_load`,
  :func:`execute` (what a sweep worker runs);
* :mod:`~galib.experiments.scoring` — :class:`EvalSettings` and the cached, versioned scores;
* :mod:`~.remedies` (the stable-training cases) and :mod:`~.so2_actions` (the SO(2) latent actions), the
  studies outside the notebooks.
"""
from .plan import DataRequest, NotSweptError, Training, execute, merge, run_folder, train_or_load
from .scoring import EvalSettings

__all__ = ["DataRequest", "EvalSettings", "NotSweptError", "Training", "execute", "merge", "run_folder",
           "train_or_load"]
