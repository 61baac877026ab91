"""Training from files, as ``edgec train`` does it: a module spec, an .npz dataset, an ONNX result.

The dataset is one ``.npz`` with ``x_train`` (inputs, float, batch first, in the module's own
layout) and ``y_train`` (integer class labels), and optionally ``x_test``/``y_test`` for the
accuracy printed each epoch. The log (per epoch, and the method's own report) goes to a JSON
file beside the model, ``OUTPUT.train.json``.

* Delta-Aware Training: the trained module is exported to ONNX with its weight scales
  (QuantizeLinear/DequantizeLinear on the weights) and the delta scheme recorded in the
  model's ``metadata_props`` (:data:`edgec.delta.DELTA_KEY`), so ``edgec quantize``/``compile``
  of that file encode it with that scheme and zero error unless told otherwise.
* Sigma-Branch: the tree is exported for one sample, an ONNX ``If`` per router
  (:meth:`edgec.train.sigma_tree.SigmaNode.exported`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx_ir as ir
import torch

from edgec.data import load_arrays
from edgec.delta import DELTA_KEY, DeltaScheme
from edgec.errors import InputDataError
from edgec.files import atomic_write
from edgec.frontend.torch_frontend import export_module
from edgec.train.delta_aware import DeltaTrainingResult, delta_aware
from edgec.train.sigma_branch import SigmaBranchResult, sigma_branch


def read_dataset(path: str | Path) -> dict[str, np.ndarray]:
    """``x_train``/``y_train`` (and ``x_test``/``y_test`` when present) from an .npz file, checked."""
    arrays = load_arrays(path, "dataset")
    if not isinstance(arrays, dict) or not {"x_train", "y_train"} <= arrays.keys():
        raise InputDataError(f"dataset '{path}' has no x_train and y_train arrays",
                             "save it with numpy.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)")
    for split in ("train", "test"):
        if f"x_{split}" in arrays and len(arrays[f"x_{split}"]) != len(arrays.get(f"y_{split}", ())):
            raise InputDataError(f"dataset '{path}': x_{split} and y_{split} have different lengths",
                                 "give one label per sample")
        if f"y_{split}" in arrays and not np.issubdtype(arrays[f"y_{split}"].dtype, np.integer):
            raise InputDataError(f"dataset '{path}': y_{split} holds {arrays[f'y_{split}'].dtype}, not class labels",
                                 "store integer class indices")
    return arrays


def loader(x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool, seed: int = 0):
    """A DataLoader over float32 inputs and int64 labels (shuffled with a fixed seed)."""
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(np.asarray(x, dtype=np.float32)),
                                             torch.from_numpy(np.asarray(y, dtype=np.int64)))
    generator = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator)


def export_trained(result: DeltaTrainingResult, example: np.ndarray, output: str | Path) -> None:
    """Write ``result.module`` as ONNX (scales as QDQ, the scheme in the model's metadata)."""
    model = export_module(result.module, (torch.from_numpy(np.asarray(example, dtype=np.float32)),))
    model.metadata_props[DELTA_KEY] = result.scheme.to_json()
    atomic_write(output, lambda tmp: ir.save(model, tmp, format="protobuf"))


def train_delta_from_files(module: torch.nn.Module, data: str | Path, output: str | Path, scheme: DeltaScheme, *,
                           epochs: int, lr: float, batch_size: int, scale: str, seed: int = 0,
                           on_step: Callable | None = None, on_epoch: Callable | None = None) -> DeltaTrainingResult:
    """Train ``module`` on the dataset file ``data`` for ``scheme``; write ``output`` (.onnx) and
    its log ``output`` with suffix ``.train.json``. Returns the training result."""
    arrays = read_dataset(data)
    torch.manual_seed(seed)
    train = loader(arrays["x_train"], arrays["y_train"], batch_size, shuffle=True, seed=seed)
    test = loader(arrays["x_test"], arrays["y_test"], 256, shuffle=False) if "x_test" in arrays else None
    result = delta_aware(module, train, scheme=scheme, epochs=epochs, lr=lr, scale=scale, test_loader=test,
                         on_step=on_step, on_epoch=on_epoch)
    export_trained(result, arrays["x_train"][:1], output)
    _write_log(output, {"scheme": json.loads(scheme.to_json()), "scale": scale, "epochs": result.log,
                        "layers": result.layers})
    return result


def _write_log(output: str | Path, log: dict) -> None:
    atomic_write(Path(output).with_suffix(".train.json"), lambda tmp: tmp.write_text(json.dumps(log, indent=2)))


def train_sigma_branch_from_files(module: torch.nn.Module, data: str | Path, output: str | Path, *,
                                  on_step: Callable | None = None, on_epoch: Callable | None = None,
                                  **options) -> SigmaBranchResult:
    """Rebuild ``module`` as a Sigma-Branch tree trained on the dataset file ``data``
    (``options``: :func:`~edgec.train.sigma_branch.sigma_branch`'s); write ``output`` (.onnx)
    and its log with the report. Returns the result."""
    arrays = read_dataset(data)
    test = (arrays["x_test"], arrays["y_test"]) if "x_test" in arrays else None
    result = sigma_branch(module, (arrays["x_train"], arrays["y_train"]), test=test, on_step=on_step,
                          on_epoch=on_epoch, **options)
    example = torch.from_numpy(np.asarray(arrays["x_train"][:1], dtype=np.float32))
    model = export_module(result.module, (example,))
    atomic_write(output, lambda tmp: ir.save(model, tmp, format="protobuf"))
    _write_log(output, {"method": "sigma-branch", "epochs": result.log, "report": result.report.to_dict()})
    return result
