"""Progress of long work, reported by whoever does it and shown by whoever waits for it.

A backend (or any step) calls :func:`stage` as each stage of a long job starts ("synthesising
with yosys", "placing and routing"); the command line shows the latest stage next to its
spinner. The listener is a context variable set with :func:`listening`, so library use without
a listener costs nothing and prints nothing, and nested or concurrent jobs do not mix.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator

_listener: contextvars.ContextVar[Callable[[str], None] | None] = contextvars.ContextVar("edgec_progress",
                                                                                        default=None)


def stage(description: str) -> None:
    """Announce that the stage ``description`` starts (a no-op without a listener)."""
    listener = _listener.get()
    if listener is not None:
        listener(description)


@contextlib.contextmanager
def listening(listener: Callable[[str], None]) -> Iterator[None]:
    """Within the block, every :func:`stage` calls ``listener(description)``."""
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)
