"""Evaluation scores a given model: pure ``metrics`` and linear ``probe`` code, model ``features``
and the three probe protocols, ``scores`` (:func:`evaluate_model`, one table of named scores) and
``tables`` (the one markdown formatter). Training the models a study compares is
:mod:`galib.experiments`' job."""
from .features import FEATURES, PROTOCOLS, compute_features, probe_model
from .scores import PAIR_SCORES, SCORE_LABELS, evaluate_model

__all__ = ["FEATURES", "PAIR_SCORES", "PROTOCOLS", "SCORE_LABELS", "compute_features",
           "evaluate_model", "probe_model"]
