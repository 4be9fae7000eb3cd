"""Evaluation: pure ``metrics`` and linear ``probe`` code, model ``features`` and the three probe
protocols, ``scores`` (:func:`evaluate_model`, one table of named scores), ``baselines`` (models
trained and scored alike) and ``tables`` (the one markdown formatter)."""
from .baselines import BASELINES, run_baselines
from .features import FEATURES, PROTOCOLS, compute_features, probe_model
from .scores import PAIR_SCORES, SCORE_LABELS, evaluate_model

__all__ = ["BASELINES", "FEATURES", "PAIR_SCORES", "PROTOCOLS", "SCORE_LABELS", "compute_features",
           "evaluate_model", "probe_model", "run_baselines"]
