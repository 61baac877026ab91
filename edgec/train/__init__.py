"""Training passes that run on the PyTorch model before compilation (they need torch).

* :func:`delta_aware` (:mod:`edgec.train.delta_aware`): Delta-Aware Training, weights that fit
  a delta encoding exactly.
* :func:`sigma_branch` (:mod:`edgec.train.sigma_branch`): a dense network rebuilt as a
  single-path tree (Sigma-Branch) and fine-tuned with soft routing; residual networks are
  built of :class:`ResidualBlock` (:mod:`edgec.train.residual`).
"""

from edgec.train.delta_aware import DeltaTrainingResult, delta_aware
from edgec.train.residual import ResidualBlock
from edgec.train.sigma_branch import SigmaBranchReport, SigmaBranchResult, sigma_branch

__all__ = ["DeltaTrainingResult", "ResidualBlock", "SigmaBranchReport", "SigmaBranchResult", "delta_aware", "sigma_branch"]
