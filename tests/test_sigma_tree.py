"""The Sigma-Branch tree: hard routing runs one leaf per sample and matches the path computed
by hand, soft routing at a low temperature agrees with it, routers initialised from the
clusters send every calibration cluster to its own leaf, a path reads fewer parameters, and
the tree exports to ONNX If nodes that onnxruntime runs as torch does."""

from __future__ import annotations

import pytest

from conftest import require_torch

torch = require_torch()

from sigma_models import dense_cnn, samples  # noqa: E402

from edgec.errors import EdgecError  # noqa: E402
from edgec.train.sigma_tree import build_tree, pooled  # noqa: E402


def test_hard_routing_runs_the_chosen_leaf_of_each_sample():
    dense, x = dense_cnn(), samples()
    tree = build_tree(dense, [2], x, [0.5]).eval()
    with torch.no_grad():
        out, leaf = tree.root.hard(x)
        h = tree.root.segment(x)
        expected = torch.stack([tree.root.branches[int(i)].segment(h[n:n + 1])[0] for n, i in enumerate(leaf)])
        assert torch.equal(leaf, tree.root.router.scores(h).argmax(dim=1))
        torch.testing.assert_close(out, expected)
        torch.testing.assert_close(tree(x), out)


def test_soft_routing_at_a_low_temperature_is_hard_routing():
    tree = build_tree(dense_cnn(), [2, 7], samples(), [0.5, 0.5])
    x = samples(16)
    tree.eval()
    with torch.no_grad():
        hard = tree(x)
        tree.train()
        tree.temperature = 1e-4
        soft = tree(x)
    torch.testing.assert_close(soft, hard, rtol=1e-4, atol=1e-4)


def test_every_calibration_cluster_reaches_its_own_leaf():
    x = samples(128)
    tree = build_tree(dense_cnn(), [2, 7], x, [0.5, 0.5]).eval()
    assert tree.root.leaves == 4
    with torch.no_grad():
        taken = torch.bincount(tree.route(x), minlength=4)
    assert (taken > 0).all() and int(taken.sum()) == 128


def test_a_path_reads_fewer_parameters_than_the_dense_network():
    dense = dense_cnn()
    dense_parameters = sum(p.numel() for p in dense.parameters())
    narrow = build_tree(dense, [2, 7], samples(), [0.5, 0.5])
    whole = build_tree(dense, [2, 7], samples(), [1.0, 1.0])
    routers = 2 * 8 + 2 * 16  # a router on the backbone's 8 channels, one on level 1's 16
    assert whole.path_parameters() == [dense_parameters + routers] * 4
    assert all(p < 0.7 * dense_parameters for p in narrow.path_parameters())
    assert pooled(torch.ones(2, 3, 4, 4)).shape == (2, 3)


@pytest.mark.parametrize(("splits", "widths", "message"), [
    ([0], [0.5], "do not divide a network of 11 layers"),
    ([5, 2], [0.5, 0.5], "do not divide"),
    ([11], [0.5], "do not divide"),
    ([2, 7], [0.5], "1 widths for 2 tree levels"),
])
def test_bad_split_points_and_widths_are_refused(splits, widths, message):
    with pytest.raises(EdgecError, match=message):
        build_tree(dense_cnn(), splits, samples(), widths)


def test_the_tree_exports_as_onnx_if_nodes_that_onnxruntime_runs_like_torch(tmp_path):
    import numpy as np
    import onnx_ir as ir
    import onnxruntime

    from edgec.frontend.torch_frontend import export_module

    x = samples(128)
    tree = build_tree(dense_cnn(), [2, 7], x, [0.5, 0.5]).eval()
    model = export_module(tree, (x[:1],))
    assert [node.op_type for node in model.graph].count("If") == 1  # the root's; its children's sit inside
    ir.save(model, tmp_path / "tree.onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "tree.onnx"))
    name = session.get_inputs()[0].name
    with torch.no_grad():
        expected, leaves = tree(x).numpy(), tree.route(x)
    assert set(leaves.tolist()) == {0, 1, 2, 3}
    got = np.concatenate([session.run(None, {name: x[i:i + 1].numpy()})[0] for i in range(len(x))])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_a_tree_exports_for_one_sample_at_a_time():
    from edgec.frontend.torch_frontend import export_module

    tree = build_tree(dense_cnn(), [2], samples(), [0.5]).eval()
    with pytest.raises(EdgecError, match="one sample, not a batch of 2"):
        export_module(tree, (samples(2),))
