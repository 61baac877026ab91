"""Spherical k-means, the split rule of Sigma-Branch's nodes: clusters by direction, centroids
that work as router weights on the raw features, determinism and clear errors."""

from __future__ import annotations

import pytest

from conftest import require_torch

torch = require_torch()

from hypothesis import assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from edgec.errors import EdgecError  # noqa: E402
from edgec.train.spherical_kmeans import spherical_kmeans, unit_rows  # noqa: E402


def two_cones(count: int = 40, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Samples around two directions, at lengths from 0.1 to 10 (length must not matter)."""
    generator = torch.Generator().manual_seed(seed)
    axes = torch.tensor([[1.0, 0.2, 0.0, 0.1], [0.0, 0.1, 1.0, 0.3]])
    labels = torch.arange(count) % 2
    noise = 0.05 * torch.randn(count, 4, generator=generator)
    lengths = torch.logspace(-1, 1, count)[torch.randperm(count, generator=generator)]
    return (axes[labels] + noise) * lengths[:, None], labels


def test_clusters_follow_direction_not_length():
    features, labels = two_cones()
    clusters = spherical_kmeans(features, seed=3)
    assignment = clusters.assignment
    assert torch.equal(assignment, labels) or torch.equal(assignment, 1 - labels)
    assert clusters.sizes() == [20, 20]
    torch.testing.assert_close(clusters.centroids.norm(dim=1), torch.ones(2))


def test_centroids_route_raw_features_as_the_clusters_do():
    features, _ = two_cones(60, seed=1)
    clusters = spherical_kmeans(features)
    assert torch.equal((features @ clusters.centroids.T).argmax(dim=1), clusters.assignment)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), count=st.integers(2, 50), k=st.integers(2, 4))
def test_converged_assignment_is_the_argmax_of_the_dot_products(seed, count, k):
    assume(count >= k)
    features = torch.randn(count, 5, generator=torch.Generator().manual_seed(seed)).abs()  # post-ReLU-like
    clusters = spherical_kmeans(features, k=k, seed=seed, iterations=500)
    assert all(size > 0 for size in clusters.sizes())
    if clusters.iterations < 500:  # converged: a fixed point of assign / re-centre
        similarity = unit_rows(features.double()) @ clusters.centroids.double().T
        best = similarity.max(dim=1).values
        chosen = similarity.gather(1, clusters.assignment[:, None]).squeeze(1)
        torch.testing.assert_close(chosen, best)


def test_the_same_seed_gives_the_same_clusters():
    features, _ = two_cones(30, seed=2)
    first, second = spherical_kmeans(features, seed=7), spherical_kmeans(features, seed=7)
    assert torch.equal(first.assignment, second.assignment)
    assert torch.equal(first.centroids, second.centroids)


@pytest.mark.parametrize(("features", "message"), [
    (torch.ones(1, 3), "1 samples cannot form 2 clusters"),
    (torch.ones(6, 3) * torch.arange(1, 7)[:, None], "fewer than 2 distinct directions"),
    (torch.ones(4, 3, 2), "wants features [N, C]"),
])
def test_bad_inputs_name_the_problem(features, message):
    with pytest.raises(EdgecError, match=message.replace("[", r"\[").replace("]", r"\]")):
        spherical_kmeans(features)
