"""Sigma-Branch training (fast tier): a digits CNN rebuilt as a tree and fine-tuned a few
steps keeps routing every leaf, reads fewer parameters per path, reports consistently, and bad
arguments get one-line errors."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import require_torch

torch = require_torch()

from edgec.errors import EdgecError  # noqa: E402
from edgec.train.sigma_branch import cut_points, default_splits, sigma_branch  # noqa: E402


def digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    data = load_digits()
    return (data.images / 16.0).astype(np.float32)[:, None], data.target.astype(np.int64)


def dense_cnn() -> torch.nn.Sequential:
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Flatten(), torch.nn.Linear(32 * 4 * 4, 10))


@pytest.fixture(scope="module")
def pretrained():
    """The dense CNN trained 3 epochs on 1,200 digits (seconds)."""
    torch.manual_seed(0)
    x, y = digits()
    model = dense_cnn()
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    inputs, labels = torch.from_numpy(x[:1200]), torch.from_numpy(y[:1200])
    for _ in range(3):
        for i in range(0, 1200, 64):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(inputs[i:i + 64]), labels[i:i + 64]).backward()
            optimizer.step()
    return model.eval(), (x[:1200], y[:1200]), (x[1200:], y[1200:])


def test_a_fine_tuned_tree_routes_every_leaf_and_reads_fewer_parameters(pretrained):
    model, train, test = pretrained
    steps, epochs = [], []
    result = sigma_branch(model, train, depth=1, split=5, widths=0.4, epochs=2, test=test, max_steps=30,
                          on_step=lambda step, total, loss: steps.append((step, total)), on_epoch=epochs.append)
    report = result.report
    assert not result.module.training
    assert report.splits == [5] and report.widths == [0.4]
    assert len(report.path_parameters) == 2 and len(report.leaf_shares) == 2
    assert sum(report.leaf_shares) == pytest.approx(1.0) and min(report.leaf_shares) > 0.05
    assert report.active_reduction > 0.4
    assert report.tree_parameters > max(report.path_parameters)
    assert report.dense_accuracy > 0.8 and report.accuracy_after > 0.6
    assert steps[-1] == (30, 30) and [record["epoch"] for record in epochs] == [1, 2]  # 19 steps an epoch
    assert result.log == epochs and epochs[-1]["temperature"] == pytest.approx(0.05)
    with torch.no_grad():
        hard = result.module(torch.from_numpy(test[0][:8]))
    assert hard.shape == (8, 10)


def test_depth_two_has_four_leaves_and_default_splits(pretrained):
    model, train, test = pretrained
    assert cut_points(model) == [2, 4, 5, 7, 8]
    assert default_splits(model, 1) == [5] and default_splits(model, 2) == [2, 5]
    result = sigma_branch(model, train, depth=2, split=[2, 5], widths=[0.5, 0.5], epochs=1, max_steps=2)
    assert len(result.report.path_parameters) == 4 and result.report.splits == [2, 5]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"depth": 0}, "tree depth 0"),
    ({"depth": 2, "split": [5]}, "1 split points for depth 2"),
    ({"split": [9]}, "do not divide a network of 9 layers"),
    ({"depth": 5, "split": 5}, "no room for a tree of depth 5 from layer 5"),
    ({"widths": 2.0}, "a child's width is 2.0"),
])
def test_bad_arguments_are_refused_in_one_line(pretrained, kwargs, message):
    model, train, _ = pretrained
    with pytest.raises(EdgecError, match=message):
        sigma_branch(model, train, epochs=1, max_steps=1, **kwargs)


def test_only_a_sequential_network_is_taken():
    class Net(torch.nn.Module):
        def forward(self, x):
            return x

    with pytest.raises(EdgecError, match="needs an nn.Sequential"):
        sigma_branch(Net(), (np.zeros((2, 3)), np.zeros(2)))
    with pytest.raises(EdgecError, match="3 inputs and 2 labels"):
        sigma_branch(dense_cnn(), (np.zeros((3, 1, 8, 8)), np.zeros(2)))


NETWORK_SOURCE = '''
import torch


def build():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(16 * 4 * 4, 10))


def not_sequential():
    return torch.nn.Linear(64, 10)
'''


@pytest.fixture
def cli_files(tmp_path, monkeypatch):
    """A module spec importable from tmp_path (the working directory) and a digits dataset."""
    (tmp_path / "sb_net.py").write_text(NETWORK_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    x, y = digits()
    np.savez(tmp_path / "digits.npz", x_train=x[:600], y_train=y[:600], x_test=x[1500:], y_test=y[1500:])
    return tmp_path


def test_cli_trains_a_tree_and_writes_onnx_that_routes(cli_files):
    import json

    import onnxruntime

    from conftest import invoke

    out = cli_files / "tree.onnx"
    result = invoke("train", "sb_net:build", "--sigma-branch", "--data", cli_files / "digits.npz", "-o", out,
                    "--epochs", "2", "--widths", "0.5")
    assert result.exit_code == 0, result.output
    assert "epoch 2: loss" in result.output and "test accuracy" in result.output
    assert "2 leaves (splits at layers [2])" in result.output and "fewer" in result.output
    log = json.loads((cli_files / "tree.train.json").read_text())
    assert log["method"] == "sigma-branch" and len(log["epochs"]) == 2
    assert log["report"]["splits"] == [2] and len(log["report"]["path_parameters"]) == 2
    session = onnxruntime.InferenceSession(str(out))
    x, _ = digits()
    assert session.run(None, {session.get_inputs()[0].name: x[:1]})[0].shape == (1, 10)


@pytest.mark.parametrize(("extra", "message"), [
    (["--sigma-branch", "--delta"], "needs one kind of training"),
    (["--sigma-branch", "--scale", "fit"], "--scale and --delta-* are options of --delta"),
    (["--sigma-branch", "--split", "five"], "--split 'five' is not a comma-separated list of int"),
    (["--sigma-branch", "--widths", "0.5,0.5"], "2 widths for 1 tree levels"),
    (["--sigma-branch", "--split", "5"], "no room for a tree of depth 1 from layer 5"),
    (["--sigma-branch", "--depth", "2"], "no room for a tree of depth 2"),
])
def test_cli_refuses_bad_sigma_branch_options(cli_files, extra, message):
    from conftest import invoke

    result = invoke("train", "sb_net:build", "--data", cli_files / "digits.npz", "-o", cli_files / "t.onnx",
                    "--epochs", "1", *extra)
    assert result.exit_code != 0 and message in result.output and not (cli_files / "t.onnx").exists()


def test_cli_refuses_a_network_that_is_not_a_chain(cli_files):
    from conftest import invoke

    result = invoke("train", "sb_net:not_sequential", "--sigma-branch", "--data", cli_files / "digits.npz",
                    "-o", cli_files / "t.onnx")
    assert result.exit_code != 0 and "needs an nn.Sequential" in result.output


def test_a_level_without_a_layer_to_narrow_is_refused(pretrained):
    model, train, _ = pretrained
    with pytest.raises(EdgecError, match="the tree level from layer 7 to 8 has no Conv/Linear to narrow"):
        sigma_branch(model, train, depth=2, split=[2, 7], epochs=1, max_steps=1)


def test_an_untrained_network_gets_a_warning():
    from edgec.errors import EdgecWarning

    x, y = digits()
    torch.manual_seed(0)
    with pytest.warns(EdgecWarning, match="near chance: Sigma-Branch rebuilds a trained network"):
        sigma_branch(dense_cnn(), (x[:300], y[:300]), split=5, epochs=1, max_steps=1)


def test_branch_norms_are_re_estimated_on_the_samples_routed_to_them():
    from sigma_models import resnet

    from edgec.train.sigma_branch import recalibrate_norms
    from edgec.train.sigma_tree import build_tree

    x = torch.rand(256, 3, 8, 8, generator=torch.Generator().manual_seed(4))
    tree = build_tree(resnet(), [4], x, [0.5]).eval()
    stem_norm = tree.root.segment[1].running_mean.clone()
    recalibrate_norms(tree, x)
    assert not tree.training and torch.equal(tree.root.segment[1].running_mean, stem_norm)
    with torch.no_grad():
        route, h = tree.route(x), tree.root.segment(x)
        for leaf, branch in enumerate(tree.root.branches):
            block = branch.segment[0]
            out = block.body[0](h[route == leaf])
            torch.testing.assert_close(block.body[1].running_mean, out.mean(dim=(0, 2, 3)), rtol=1e-4, atol=1e-5)
