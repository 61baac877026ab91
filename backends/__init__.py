"""Backends turn an edgec graph into a deployable artifact (installed as ``edgec.backends``).

One package per backend (``cortex_m/``: C for Arm Cortex-M, run on QEMU). Each provides a
subclass of :class:`edgec.backend.Backend`, the contract the core calls, and is registered by
target kind in :data:`edgec.backend.BACKENDS` (other packages: the ``edgec.backends``
entry-point group). The core imports a backend only when a target of its kind is used, so
nothing here is imported by ``import edgec``.
"""
