"""Target kinds: one module per kind, each owning its schema (frozen dataclasses extending
the common header :class:`~edgec.target_kinds.schema.Target`), its checks beyond the types and
the figures ``edgec targets`` shows, all in one :class:`~edgec.target_kinds.schema.Kind`.

:mod:`edgec.target` holds the registry of kinds; the machinery they share is
:mod:`edgec.target_kinds.schema`. Nothing here imports a backend.
"""
