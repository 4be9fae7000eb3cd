"""The studies: one module per notebook, holding its plan (the trainings and scorings it needs),
its rows, its figures and its ``findings`` (sentences from its ``metrics.json``).

* :mod:`~.pairing` (01), :mod:`~.training` (02), :mod:`~.tau` (03), :mod:`~.traversals` (04),
  :mod:`~.probes` (05), :mod:`~.blocked` (06); :mod:`~.baselines` is the line-up of models that 05
  and 06 compare;
* :mod:`~.registry` — the studies in one table (notebook file, module, run folders, the metrics
  keys its findings read) and :func:`~.registry.report`;
* :mod:`~.params` — a notebook's parameters read and checked without running it;
* :mod:`~.plotting` and :mod:`~.wording` — what every study's figures and sentences share.

Adding a study: one module here, one line in the registry, one notebook (docs/extending.md).
"""
from .registry import STEMS, STUDIES, Study, report, study_scorings, study_trainings

__all__ = ["STEMS", "STUDIES", "Study", "report", "study_scorings", "study_trainings"]
