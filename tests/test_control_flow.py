"""Control flow through the core: a Sigma-Branch tree quantizes to an integer graph with an
``If`` per router, calibration reaches every leaf with the samples routed to it, the integer
router decides on its exact int32 accumulator, and the reference executor runs exactly the
chosen path (equal, bit for bit, to the path's graph without control flow)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import require_torch

torch = require_torch()

import onnx_ir as ir  # noqa: E402
from sigma_models import samples, tree  # noqa: E402

import edgec  # noqa: E402
from edgec import ops  # noqa: E402
from edgec.calibration import calibrate  # noqa: E402
from edgec.control_flow import all_nodes, inline_path, is_branching, path_nodes, paths, taken_path  # noqa: E402
from edgec.errors import EdgecError, InputDataError  # noqa: E402
from edgec.frontend.torch_frontend import export_module  # noqa: E402
from edgec.oracle import ort_session  # noqa: E402
from edgec.reference import ReferenceExecutor  # noqa: E402
from edgec.widths import check_widths  # noqa: E402


@pytest.fixture(scope="module")
def float_tree() -> ir.Model:
    return edgec.load(tree(2), example_inputs=(samples(1),))


@pytest.fixture(scope="module")
def integer_tree() -> ir.Model:
    return edgec.quantize(tree(2), samples(256).numpy(), example_inputs=(samples(1),))


def feeds(x: torch.Tensor) -> list[dict[str, np.ndarray]]:
    return [{"x": x[i:i + 1].numpy()} for i in range(len(x))]


def test_a_tree_quantizes_to_an_integer_graph_with_an_if_per_router(integer_tree):
    nodes = list(all_nodes(integer_tree.graph))
    assert sum(is_branching(node) for node in nodes) == 3
    assert sum(node.op_type == "Router" for node in nodes) == 3
    assert ops.is_integer_model(integer_tree)
    assert paths(integer_tree.graph) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    check_widths(integer_tree)
    saved = ir.from_proto(ir.to_proto(integer_tree))  # survives serialization
    assert ops.is_integer_model(saved) and paths(saved.graph) == paths(integer_tree.graph)


def test_branch_outputs_share_the_if_outputs_quantization(integer_tree):
    from edgec.control_flow import branches
    from edgec.passes.qparams import get_qparams

    for node in all_nodes(integer_tree.graph):
        if is_branching(node):
            expected = get_qparams(node.outputs[0])
            assert expected is not None
            assert all(get_qparams(branch.outputs[0]) == expected for branch in branches(node))


def test_the_reference_runs_the_chosen_path_exactly(integer_tree):
    executor = ReferenceExecutor(integer_tree)
    flat = {path: ReferenceExecutor(inline_path(integer_tree, path)) for path in paths(integer_tree.graph)}
    taken = set()
    for feed in feeds(samples(96, seed=5)):
        values = executor.run(feed, keep_intermediates=True)
        path = taken_path(integer_tree.graph, values)
        taken.add(path)
        np.testing.assert_array_equal(values["getitem"], flat[path].run(feed)["getitem"])
        ran = {out.name for node in path_nodes(integer_tree.graph, path) for out in node.outputs}
        assert ran >= set(values) - {"x"} - set(integer_tree.graph.initializers)
    assert len(taken) == 4


def test_the_integer_router_is_the_sign_of_its_exact_accumulator(integer_tree):
    executor = ReferenceExecutor(integer_tree)
    routers = [node for node in all_nodes(integer_tree.graph) if node.op_type == "Router"]
    checked = 0
    for feed in feeds(samples(64, seed=6)):
        values = executor.run(feed, keep_intermediates=True)
        for node in routers:
            if node.outputs[0].name not in values:
                continue  # not on this sample's path
            x = values[node.inputs[0].name].astype(np.int64)
            w = node.inputs[1].const_value.numpy().astype(np.int64)
            bias = int(node.inputs[2].const_value.numpy()[0])
            zero_point = node.attributes["input_zero_point"].value
            assert bool(values[node.outputs[0].name]) == (bias + int(((x - zero_point) * w).sum()) >= 0)
            checked += 1
    assert checked == 64 * 2


def test_the_integer_routes_agree_with_the_float_tree(integer_tree):
    x = samples(256, seed=7)
    executor = ReferenceExecutor(integer_tree)
    order = paths(integer_tree.graph)
    integer = [order.index(taken_path(integer_tree.graph, executor.run(feed, keep_intermediates=True)))
               for feed in feeds(x)]
    with torch.no_grad():
        floating = tree(2).route(x).tolist()
    assert np.mean(np.array(integer) == np.array(floating)) >= 0.9


def test_each_leaf_is_calibrated_on_the_samples_routed_to_it(float_tree):
    x = samples(128)
    ranges = calibrate(float_tree, feeds(x))
    with torch.no_grad():
        leaves = tree(2).route(x).numpy()
    for leaf, path in enumerate(paths(float_tree.graph)):
        flat = inline_path(float_tree, path)
        routed = [feed for feed, taken in zip(feeds(x), leaves, strict=True) if taken == leaf]
        output = flat.graph.outputs[0].name  # the leaf's logits, a tensor of its branch
        session = ort_session(ir.to_proto(flat))
        logits = np.concatenate([session.run([output], feed)[0] for feed in routed])
        assert ranges[output] == pytest.approx((float(logits.min()), float(logits.max())), abs=1e-6)
    whole = np.concatenate([ort_session(ir.to_proto(float_tree)).run(None, feed)[0] for feed in feeds(x)])
    assert ranges["getitem"] == pytest.approx((float(whole.min()), float(whole.max())), abs=1e-6)


def test_a_branch_without_calibration_samples_is_named(float_tree):
    with pytest.raises(InputDataError, match=r"no calibration sample reaches the (then|else) branch of If node"):
        calibrate(float_tree, feeds(samples(1)))


def test_a_comparison_that_decides_nothing_is_refused():
    class Compare(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.score = torch.nn.Linear(4, 1)

        def forward(self, x):
            return self.score(x).reshape(()) >= 0

    model = export_module(Compare(), (torch.zeros(1, 4),))
    with pytest.raises(EdgecError, match="GreaterOrEqual node '.*' is not a router edgec can lower"):
        edgec.quantize(model, np.zeros((4, 1, 4), np.float32))


def test_inspect_lists_every_branch_and_what_each_path_reads(integer_tree, float_tree):
    from edgec.summary import summarize

    for model in (float_tree, integer_tree):
        summary = summarize(model)
        assert not summary.unsupported  # the float router's picks count as supported
        assert [p.path for p in summary.paths] == [(0, 0), (0, 1), (1, 0), (1, 1)]
        assert {layer.branch for layer in summary.layers} == {(), (0,), (1,), (0, 0), (0, 1), (1, 0), (1, 1)}
        for path in summary.paths:
            on_path = [layer for layer in summary.layers if layer.branch == path.path[:len(layer.branch)]]
            assert path.macs == sum(layer.macs for layer in on_path)
            assert path.params == sum(layer.params for layer in on_path) < summary.total_params
        assert summary.to_dict()["paths"][0]["path"] == [0, 0]
    routers = [layer for layer in summarize(integer_tree).layers if layer.op == "Router"]
    assert [layer.params for layer in routers] == [9, 9, 9]  # 8 weights and a bias each


def test_a_backend_that_cannot_branch_refuses_the_tree_by_its_if(integer_tree, tmp_path):
    with pytest.raises(EdgecError, match=r"the model branches \(If node '.*'\): the FPGA backend does not run "
                                         r"control flow"):
        edgec.compile(integer_tree, "ice40-up5k", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_canonicalization_walks_branches():
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)

    def branch(name: str) -> object:
        weight = numpy_helper.from_array(rng.normal(size=(2, 2, 3, 3)).astype(np.float32), f"{name}_w")
        stats = [numpy_helper.from_array(v.astype(np.float32), f"{name}_{k}") for k, v in
                 (("scale", rng.uniform(0.5, 2, 2)), ("bias", rng.normal(size=2)), ("mean", rng.normal(size=2)),
                  ("var", rng.uniform(0.5, 2, 2)))]
        nodes = [helper.make_node("Conv", ["x", f"{name}_w"], [f"{name}_c"], pads=[1, 1, 1, 1]),
                 helper.make_node("BatchNormalization", [f"{name}_c", *(s.name for s in stats)], [f"{name}_bn"]),
                 helper.make_node("Identity", [f"{name}_bn"], [f"{name}_out"])]
        return helper.make_graph(nodes, name, [], [helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT,
                                                                                 [1, 2, 4, 4])], [weight, *stats])

    zero = numpy_helper.from_array(np.array(0.0, np.float32), "zero")
    graph = helper.make_graph(
        [helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
         helper.make_node("Greater", ["s", "zero"], ["cond"]),
         helper.make_node("If", ["cond"], ["y"], then_branch=branch("then"), else_branch=branch("else"))],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 4, 4])], [zero])
    model = edgec.load(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))
    inner = [node.op_type for node in all_nodes(model.graph) if node.graph is not model.graph]
    assert inner == ["Conv", "Conv"]  # BatchNorm folded into each branch's Conv, Identity gone
    assert all(node.outputs[0].shape is not None for node in all_nodes(model.graph))


def test_routers_stay_int8_when_the_weights_are_narrower():
    from edgec.passes.qparams import int_type_of

    graph = edgec.quantize(tree(1), samples(128).numpy(), example_inputs=(samples(1),), weight_bits=4)
    kinds = {node.op_type: str(int_type_of(node.inputs[1])) for node in all_nodes(graph.graph)
             if node.op_type in ("Router", "Conv")}
    assert kinds == {"Router": "int8n", "Conv": "int4n"}


def test_a_router_sums_the_feature_map_its_float_router_averages(integer_tree):
    nodes = list(all_nodes(integer_tree.graph))
    routers = [node for node in nodes if node.op_type == "Router"]
    assert all(len(node.inputs[0].shape) == 4 for node in routers)  # NHWC maps, not pooled vectors
    assert not any(node.op_type == "Mean" for node in nodes)  # the pooling became the routers' sums


def test_the_quantize_command_reports_the_macs_of_one_path(float_tree, tmp_path):
    from conftest import invoke

    ir.save(float_tree, tmp_path / "tree.onnx")
    np.save(tmp_path / "calib.npy", samples(128).numpy())
    result = invoke("quantize", tmp_path / "tree.onnx", "--calib", tmp_path / "calib.npy", "-o", tmp_path / "q.onnx")
    assert result.exit_code == 0, result.output
    largest = max(path.macs for path in edgec.summarize(edgec.load(tmp_path / "q.onnx")).paths)
    assert f"MACs over 4 paths, {largest:,} on the largest" in " ".join(result.output.split())
