"""The integer reference executor: the exact semantics of every edgec operator.

One numpy function per operator (:data:`KERNELS`); every backend is judged against these
bit for bit. Kernels take ``(attrs, rounding, *inputs)`` where ``attrs`` holds every
attribute of the node with the defaults of :data:`edgec.ops.OPS` filled in.
"""

from edgec.reference.executor import KERNELS, ReferenceExecutor

__all__ = ["KERNELS", "ReferenceExecutor"]
