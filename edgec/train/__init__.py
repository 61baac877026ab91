"""Training passes that run on the PyTorch model before compilation (they need torch).

* :func:`delta_aware` (:mod:`edgec.train.delta_aware`): Delta-Aware Training, weights that fit
  a delta encoding exactly.
"""

from edgec.train.delta_aware import DeltaTrainingResult, delta_aware

__all__ = ["DeltaTrainingResult", "delta_aware"]
