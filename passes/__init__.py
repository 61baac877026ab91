"""edgec's graph passes, one module per pass (imported as ``edgec.passes``).

Every pass is an ``onnx_ir.passes`` pass (``InPlacePass`` or ``FunctionalPass``) whose
docstring states its rewrite as numbered cases and its invariants. Pipelines that combine
them are explicit lists in :mod:`edgec.pipeline`.
"""
