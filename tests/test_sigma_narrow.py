"""Channel allocation of Sigma-Branch children: a narrowed copy computes exactly what the dense
segment computes on the kept channels with the dropped ones removed (whether its input, its
hidden layers or its output are narrowed), keeps the most active channels, and refuses layers
it cannot narrow."""

from __future__ import annotations

import copy

import pytest

from conftest import require_torch

torch = require_torch()

from sigma_models import resnet  # noqa: E402

from edgec.errors import EdgecError  # noqa: E402
from edgec.train.sigma_narrow import narrowed_copy  # noqa: E402


def cnn_segment() -> torch.nn.Sequential:
    torch.manual_seed(0)
    segment = torch.nn.Sequential(
        torch.nn.Conv2d(4, 8, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 8, 3, padding=1, groups=8), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 6, 1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(6 * 3 * 3, 5))
    segment[3].running_mean.uniform_(-0.5, 0.5)
    segment[3].running_var.uniform_(0.5, 2)
    return segment.eval()


def with_columns_dropped(segment: torch.nn.Sequential, narrowed: torch.nn.Sequential) -> torch.nn.Sequential:
    """The dense segment with the inputs of dropped channels zeroed in every layer that
    consumes them: what the narrowed copy must equal."""
    dense = copy.deepcopy(segment)
    with torch.no_grad():
        conv, head = dense[5], dense[9]
        kept_first = [c for c in range(8) if any(torch.equal(narrowed[0].weight[i], segment[0].weight[c])
                                                  for i in range(narrowed[0].out_channels))]
        dropped_first = [c for c in range(8) if c not in kept_first]
        conv.weight[:, dropped_first] = 0
        kept_second = [c for c in range(6) if any(torch.equal(narrowed[5].weight[i], conv.weight[c, kept_first])
                                                   for i in range(narrowed[5].out_channels))]
        for c in range(6):
            if c not in kept_second:
                head.weight[:, c * 9:(c + 1) * 9] = 0
    return dense


def test_a_narrowed_copy_equals_the_dense_segment_without_the_dropped_channels():
    segment = cnn_segment()
    inputs = torch.randn(16, 4, 6, 6)
    narrowed, kept = narrowed_copy(segment, inputs, 0.5, final=True)
    narrowed.eval()
    assert kept is None  # the classifier keeps every class
    assert [narrowed[0].out_channels, narrowed[2].groups, narrowed[3].num_features, narrowed[5].in_channels,
            narrowed[5].out_channels, narrowed[9].in_features, narrowed[9].out_features] == [4, 4, 4, 4, 4, 36, 5]
    expected = with_columns_dropped(segment, narrowed)(inputs)
    torch.testing.assert_close(narrowed(inputs), expected, rtol=1e-5, atol=1e-5)


def test_width_one_copies_the_segment_whole():
    segment = cnn_segment()
    inputs = torch.randn(4, 4, 6, 6)
    copied, kept = narrowed_copy(segment, inputs, 1.0)
    torch.testing.assert_close(copied(inputs), segment(inputs))
    assert kept.tolist() == list(range(5))
    assert copied[0].weight is not segment[0].weight


def test_the_most_active_channels_are_kept():
    torch.manual_seed(1)
    segment = torch.nn.Sequential(torch.nn.Linear(6, 12), torch.nn.ReLU(), torch.nn.Linear(12, 3))
    with torch.no_grad():
        segment[0].weight[[1, 4, 7, 10]] *= 20  # four channels far more active than the rest
    narrowed, _ = narrowed_copy(segment, torch.randn(32, 6), 0.3, final=True)  # 3.6 channels: one step of 4
    torch.testing.assert_close(narrowed[0].weight, segment[0].weight[[1, 4, 7, 10]])
    torch.testing.assert_close(narrowed[2].weight, segment[2].weight[:, [1, 4, 7, 10]])


def test_a_segment_that_is_not_final_narrows_its_output_too():
    torch.manual_seed(2)
    segment = torch.nn.Sequential(torch.nn.Linear(6, 10), torch.nn.ReLU(), torch.nn.Linear(10, 8), torch.nn.ReLU())
    inputs = torch.randn(32, 6)
    narrowed, kept = narrowed_copy(segment, inputs, 0.5)
    assert narrowed[2].out_features == 4 and len(kept) == 4
    dense = copy.deepcopy(segment)
    with torch.no_grad():
        dropped = [c for c in range(10) if not any(torch.equal(w, segment[0].weight[c]) for w in narrowed[0].weight)]
        dense[2].weight[:, dropped] = 0
        torch.testing.assert_close(narrowed(inputs), dense(inputs)[:, kept])


def test_a_child_reads_the_channels_its_parent_kept():
    torch.manual_seed(3)
    segment = torch.nn.Sequential(torch.nn.Conv2d(6, 4, 1), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 9, 3))
    kept_in = torch.tensor([0, 2, 5])
    inputs = torch.randn(8, 3, 3, 3)
    narrowed, _ = narrowed_copy(segment, inputs, 1.0, kept_in=kept_in, final=True)
    padded = torch.zeros(8, 6, 3, 3)
    padded[:, kept_in] = inputs
    torch.testing.assert_close(narrowed(inputs), segment(padded))


def test_the_narrowed_copy_trains_apart_from_the_dense_segment():
    segment = cnn_segment()
    narrowed, _ = narrowed_copy(segment, torch.randn(8, 4, 6, 6), 0.5)
    dense = {id(p) for p in segment.parameters()}
    assert not any(id(p) in dense for p in narrowed.parameters())


@pytest.mark.parametrize(("layer", "message"), [
    (torch.nn.Softmax(dim=1), "cannot narrow the channels through Softmax"),
    (torch.nn.Conv2d(8, 8, 1, groups=2), "grouped convolution"),
])
def test_layers_it_cannot_narrow_are_refused_by_name(layer, message):
    segment = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 1), layer, torch.nn.Conv2d(8, 4, 1), torch.nn.ReLU(),
                                  torch.nn.Conv2d(4, 2, 1))
    with pytest.raises(EdgecError, match=message):
        narrowed_copy(segment, torch.randn(4, 3, 5, 5), 0.5)


def test_a_width_outside_zero_to_one_is_refused():
    with pytest.raises(EdgecError, match="a child's width is 1.5"):
        narrowed_copy(cnn_segment(), torch.randn(2, 4, 6, 6), 1.5)


def dense_channels(narrowed_norm, dense_norm) -> list[int]:
    """The dense channels a narrowed BatchNorm kept (its running means are distinct)."""
    return [int((dense_norm.running_mean == m).nonzero()) for m in narrowed_norm.running_mean]


def test_residual_blocks_narrow_with_the_sum_on_one_channel_set():
    network, x = resnet(), torch.randn(32, 3, 8, 8)
    whole, _ = narrowed_copy(network, x, 1.0, final=True)
    torch.testing.assert_close(whole.eval()(x), network(x), rtol=1e-5, atol=1e-5)
    stem_kept = torch.tensor([0, 2, 3, 5, 6, 7])
    narrowed, kept = narrowed_copy(network[3:], network[:3](x)[:, stem_kept], 0.5, kept_in=stem_kept, final=True)
    identity, projection = narrowed[0], narrowed[1]
    assert kept is None and narrowed.eval()(network[:3](x)[:, stem_kept]).shape == (32, 10)
    # identity shortcut: the block's output channels are its input's; only the inner ones narrow
    assert dense_channels(identity.body[4], network[3].body[4]) == stem_kept.tolist()
    assert identity.body[0].out_channels == 4
    # projection: the body's last layers and the shortcut keep the same half of the channels
    body_out = dense_channels(projection.body[4], network[4].body[4])
    assert len(body_out) == 8 and body_out == dense_channels(projection.shortcut[1], network[4].shortcut[1])
    assert narrowed[4].in_features == 8  # the classifier reads the kept channels


def test_kept_counts_are_multiples_of_four_channels():
    from edgec.train.sigma_narrow import kept_count

    assert [kept_count(0.4, c) for c in (64, 32, 16, 10, 4, 3)] == [24, 12, 8, 4, 4, 3]
    assert [kept_count(0.05, 64), kept_count(1.0, 5), kept_count(0.9, 10)] == [4, 5, 8]
