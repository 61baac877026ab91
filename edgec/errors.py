"""The errors edgec reports to its users.

Every problem caused by what the user handed in (a file that is not a model, an operator
edgec cannot lower, calibration data of the wrong shape, a missing toolchain) is raised as
an :class:`EdgecError`. The CLI prints it as one line, ``error: <problem> (fix: <hint>)``,
and exits with status 2; no traceback, no half-written output. Anything else escaping
from edgec is a bug in edgec.
"""

from __future__ import annotations

import re

_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def first_line(error: BaseException) -> str:
    """The first non-empty line of ``error``'s message, without terminal colour codes (for a
    one-line message quoting a library's exception); the exception's type when it has none."""
    lines = [line.strip() for line in _ANSI_ESCAPE.sub("", str(error)).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


class EdgecError(Exception):
    """A user-facing error: what is wrong, and how to fix it.

    Attributes:
        problem: one sentence naming the problem (file, node, operator, shape ...).
        hint: one sentence saying what to do about it, or ``""``.
    """

    exit_code = 2

    def __init__(self, problem: str, hint: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.hint = hint

    def one_line(self) -> str:
        """The message as the CLI prints it (never contains a newline)."""
        text = self.problem if not self.hint else f"{self.problem} (fix: {self.hint})"
        return " ".join(text.split())


class ModelLoadError(EdgecError):
    """The model file is missing, is not a model, or is malformed."""


class UnsupportedModelError(EdgecError):
    """The model is valid but uses something edgec cannot compile (operator, attribute, shape)."""


class InputDataError(EdgecError):
    """Input or calibration data does not match what the model expects."""


class ToolchainError(EdgecError):
    """An external tool (compiler, emulator) is missing or failed."""


class SizeLimitError(EdgecError):
    """The compiled model does not fit the target part's flash or RAM."""


class EdgecWarning(UserWarning):
    """Something the user asked for that works but deserves attention (random calibration,
    very few calibration samples, float64 data converted); the CLI prints it as ``warning: ...``."""
