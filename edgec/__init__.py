"""edgec: an edge-deployment compiler for trained ONNX and PyTorch models.

Python API (see :mod:`edgec.api`)::

    import edgec
    model = edgec.quantize("model.onnx", calib="samples.npy")   # edgec integer graph
    outputs = edgec.run(model, "inputs.npy")                      # integer reference, per sample
    print(edgec.summarize(model).total_macs)
    report = edgec.compile(model, target="cortex-m4", output="model_m4")   # C project
    profile = edgec.profile(model, "cortex-m3,cortex-m4")                # per-layer profiles

Backends (the contract: :mod:`edgec.backend`) are imported when a target of their kind is
first used; ``import edgec`` loads none of them.
"""

__version__ = "0.1.0"

from edgec.api import compile_model as compile  # noqa: E402
from edgec.api import load, quantize, run  # noqa: E402
from edgec.errors import EdgecError  # noqa: E402
from edgec.profiling import profile  # noqa: E402
from edgec.summary import summarize  # noqa: E402

__all__ = ["EdgecError", "__version__", "compile", "load", "profile", "quantize", "run", "summarize"]
