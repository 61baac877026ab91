"""Frontends: everything a user can hand to edgec becomes one ``onnx_ir.Model``.

* :mod:`edgec.frontend.onnx_frontend` reads ``.onnx`` files (float or QDQ, opset 11+);
* :mod:`edgec.frontend.torch_frontend` exports ``torch.nn.Module`` objects and
  ``package.module:factory`` specs through ``torch.onnx.export``.

The result is raw (as exported); :mod:`edgec.pipeline` canonicalizes it.
"""
