"""A Sigma-Branch tree on Cortex-M: edgec_invoke runs the router and then only the chosen
branch, bit-exact against the reference on every core and under the host sanitizers for
inputs covering every leaf; an inference reads the constants of its path's layers and of no
other (read watchpoints under gdb on QEMU); sibling branches share arena bytes; the report and
the profile speak per path."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from conftest import needs_toolchain, require_torch

torch = require_torch()

from sigma_models import samples, tree  # noqa: E402

import edgec  # noqa: E402
from edgec.backends import cortex_m  # noqa: E402
from edgec.control_flow import paths, taken_path  # noqa: E402
from edgec.reference import ReferenceExecutor  # noqa: E402
from edgec.target import get_target  # noqa: E402

CORES = ["cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55"]


@pytest.fixture(scope="module")
def integer_tree():
    return edgec.quantize(tree(2), samples(256).numpy(), example_inputs=(samples(1),))


@pytest.fixture(scope="module")
def covering(integer_tree):
    """24 inputs, every leaf taken by some (checked), and the leaf of each."""
    executor = ReferenceExecutor(integer_tree)
    x = samples(24, seed=9).numpy()
    feeds = [{"x": x[i:i + 1]} for i in range(len(x))]
    order = paths(integer_tree.graph)
    leaves = [order.index(taken_path(integer_tree.graph, executor.run(f, keep_intermediates=True))) for f in feeds]
    assert set(leaves) == {0, 1, 2, 3}
    return feeds, leaves


def test_edgec_invoke_branches_on_the_router(tmp_path, integer_tree):
    cortex_m.compile_project(integer_tree, get_target("cortex-m4"), tmp_path, "tree", emit_only=True)
    source = (tmp_path / "src" / "edgec_model.c").read_text()
    body = source[source.index("int edgec_invoke(void)"):]
    assert body.count("= edgec_router(&layer") == 3
    assert body.count("if (route") == 3 and body.count("} else {") == 3


@needs_toolchain
@pytest.mark.parametrize("core", CORES)
def test_every_leaf_runs_bit_exact_on_qemu(tmp_path, integer_tree, covering, core):
    feeds, leaves = covering
    manifest = cortex_m.compile_project(integer_tree, get_target(core), tmp_path, "tree")
    inputs = cortex_m.int8_inputs(integer_tree, feeds)
    result = cortex_m.run_project(tmp_path, inputs)
    np.testing.assert_array_equal(result.outputs, cortex_m.reference_outputs(integer_tree, inputs))
    assert len(result.instructions) == len(leaves) and all(n > 0 for n in result.instructions)
    assert [p["path"] for p in manifest["paths"]] == [[0, 0], [0, 1], [1, 0], [1, 1]]
    for path in manifest["paths"]:
        assert path["macs"] == sum(manifest["layers"][i]["macs"] for i in path["layers"]) < manifest["macs"]


@needs_toolchain
def test_every_leaf_runs_bit_exact_under_the_host_sanitizers(tmp_path, integer_tree, covering):
    feeds, _ = covering
    cortex_m.compile_project(integer_tree, get_target("cortex-m4"), tmp_path, "tree")
    inputs = cortex_m.int8_inputs(integer_tree, feeds)
    host = cortex_m.run_project(tmp_path, inputs, host=True)
    np.testing.assert_array_equal(host.outputs, cortex_m.reference_outputs(integer_tree, inputs))


def test_sibling_branches_share_arena_bytes(integer_tree):
    from edgec.backends.cortex_m.branching import path_layers
    from edgec.backends.cortex_m.network import build_network

    network = build_network(integer_tree, dsp=True)
    (_, first), (_, second), (_, third), _ = path_layers(network.body)
    then_only = [i for i in first if i not in third]  # the root's then branch
    else_only = [i for i in third if i not in first]

    def spans(indices):
        return [(network.offsets[network.layers[i].node.outputs[0].name],
                 network.offsets[network.layers[i].node.outputs[0].name]
                 + int(np.prod(network.layers[i].node.outputs[0].shape.numpy())))
                for i in indices if network.layers[i].node.outputs[0].name in network.offsets]

    assert any(a < d and c < b for a, b in spans(then_only) for c, d in spans(else_only))
    assert second != first and set(first) & set(second)  # the leaves below one router share its trunk
    assert network.plan.size < sum(network.layers[i].scratch_bytes for i in range(len(network.layers))) + sum(
        int(np.prod(v.shape.numpy())) for v in (layer.node.outputs[0] for layer in network.layers)
        if v.name in network.offsets)


@needs_toolchain
def test_the_profile_shows_the_path_the_input_takes(tmp_path, integer_tree, covering):
    from edgec.backend import open_project
    from edgec.backends.cortex_m.profile import profile_project

    feeds, leaves = covering
    manifest = cortex_m.compile_project(integer_tree, get_target("cortex-m4"), tmp_path, "tree")
    row = cortex_m.int8_inputs(integer_tree, feeds[:1])
    profile = profile_project(open_project(tmp_path)[1], row, lambda stage: None)
    taken = manifest["paths"][leaves[0]]["layers"]
    called = [i for i in taken if manifest["layers"][i]["kernel"] != "alias"]
    assert [layer.index for layer in profile.layers] == called
    assert profile.path == tuple(manifest["paths"][leaves[0]]["path"])


@needs_toolchain
@pytest.mark.skipif(shutil.which("gdb-multiarch") is None, reason="gdb-multiarch is not installed "
                    "(apt-get install gdb-multiarch; scripts/setup.sh does)")
def test_an_inference_reads_the_weights_of_its_path_only(tmp_path, integer_tree, covering):
    from edgec.backends.cortex_m.weight_watch import constant_symbols, read_layers

    feeds, leaves = covering
    manifest = cortex_m.compile_project(integer_tree, get_target("cortex-m4"), tmp_path, "tree")
    every_layer = list(range(len(manifest["layers"])))
    for leaf in range(4):
        feed = feeds[leaves.index(leaf)]
        read = read_layers(tmp_path, cortex_m.int8_inputs(integer_tree, [feed]), every_layer)
        with_constants = set(constant_symbols(cortex_m.executable_path(tmp_path)))
        assert read == set(manifest["paths"][leaf]["layers"]) & with_constants, leaf
    assert len(with_constants) > len(manifest["paths"][0]["layers"])  # the other branches' constants were watched


@needs_toolchain
def test_a_run_prices_instructions_per_mac_of_the_path_taken(tmp_path, integer_tree, covering):
    from edgec.backend import open_project

    feeds, leaves = covering
    manifest = cortex_m.compile_project(integer_tree, get_target("cortex-m3"), tmp_path, "tree")
    backend, project = open_project(tmp_path)
    result = backend.run(project, cortex_m.int8_inputs(integer_tree, feeds[:2]))
    path = manifest["paths"][leaves[0]]
    per_mac = result.costs["instructions"][0] / path["macs"]
    words = " › ".join("then" if c == 0 else "else" for c in path["path"])
    assert f"{per_mac:.2f} per MAC of its path ({words})" in result.summary
