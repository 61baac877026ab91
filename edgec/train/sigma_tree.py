"""The Sigma-Branch tree: a dense ``nn.Sequential`` rebuilt as a binary tree of segments with a
cosine router at every inner node, so that one inference runs one root-to-leaf path.

Structure. ``splits`` are indices into the dense network, ``0 < s_1 < ... < s_D < len``. The
root runs the backbone ``dense[:s_1]``; a node at depth ``d`` (1 <= d <= D) runs a copy of
``dense[s_d:s_(d+1)]`` (the last one ends at the network's end); every node above depth ``D``
ends in a router choosing one of its two children. There are ``2^D`` leaves.

Routers (:class:`CosineRouter`). A router sees its node's output, pooled to one vector ``v``
per sample (the mean over spatial positions for a feature map), centred on the mean ``mu`` of
the calibration samples that reached the node (post-ReLU features all point into one orthant;
centred, their directions spread), and holds one weight row per child, initialised to the unit
centroids of a spherical 2-means of the centred vectors (:mod:`edgec.train.spherical_kmeans`).
Hard routing (eval mode, and deployment) takes ``argmax_j (w_j . v - w_j . mu)``: a fully
connected layer with a bias and a comparison, no normalisation. Soft routing (training) weighs
the children by ``softmax(cos(v - mu, w_j) / T)``.

Children (:func:`build_tree`). Each child is a copy of its dense segment narrowed to the
``widths[d - 1]`` fraction of the channels most active on its cluster
(:mod:`edgec.train.sigma_narrow`), reading the channels its parent kept; the leaves' last layer
(the classifier) keeps every output. The backbone stays whole.

Outputs. Soft: the mixture ``sum_leaves P(leaf) * leaf output`` (``P`` the product of the
routing probabilities along the path) and the leaf probabilities, for the fine-tune's loss.
Hard: each sample's output from its one leaf, and the leaf's index (leaves numbered left to
right, ``0 .. 2^D - 1``).
"""

from __future__ import annotations

import copy

import torch

from edgec.errors import EdgecError
from edgec.train.sigma_narrow import narrowed_copy
from edgec.train.spherical_kmeans import spherical_kmeans, unit_rows


def pooled(x: torch.Tensor) -> torch.Tensor:
    """One vector per sample: ``x`` ``[N, C]`` as is, a feature map ``[N, C, ...]`` averaged
    over its positions."""
    return x.mean(dim=tuple(range(2, x.dim()))) if x.dim() > 2 else x


class CosineRouter(torch.nn.Module):
    """Chooses one of ``len(centroids)`` children for features centred on ``center`` (see the
    module docstring); ``center`` is a buffer, the weights train."""

    def __init__(self, centroids: torch.Tensor, center: torch.Tensor):
        super().__init__()
        self.weight = torch.nn.Parameter(centroids.detach().clone())
        self.register_buffer("center", center.detach().clone())

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, children]``, ``w_j . v - w_j . mu``: the hard route is their argmax (a fully
        connected layer with a bias when exported)."""
        return torch.nn.functional.linear(pooled(x), self.weight, -(self.weight @ self.center))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Child 0 over child 1 for one sample: the condition of the exported ``If`` (the
        router's pooling and comparison then export under the router's name)."""
        scores = self.scores(x)
        return scores[0, 0] >= scores[0, 1]

    def probabilities(self, x: torch.Tensor, temperature: float) -> torch.Tensor:
        """``[N, children]`` soft routing weights."""
        cosine = unit_rows(pooled(x) - self.center) @ unit_rows(self.weight).T
        return torch.softmax(cosine / temperature, dim=1)


class SigmaNode(torch.nn.Module):
    """A segment, then (inner nodes) a router and two children."""

    def __init__(self, segment: torch.nn.Sequential, router: CosineRouter | None = None,
                 branches: tuple[SigmaNode, SigmaNode] | None = None):
        super().__init__()
        self.segment = segment
        self.router = router
        self.branches = torch.nn.ModuleList(branches or [])

    @property
    def leaves(self) -> int:
        return 1 if self.router is None else sum(child.leaves for child in self.branches)

    def soft(self, x: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(mixture output, leaf probabilities ``[N, leaves]``)."""
        h = self.segment(x)
        if self.router is None:
            return h, torch.ones(len(h), 1, dtype=h.dtype, device=h.device)
        weights = self.router.probabilities(h, temperature)
        outputs, leaf_probabilities = zip(*(child.soft(h, temperature) for child in self.branches), strict=True)
        shape = (-1,) + (1,) * (outputs[0].dim() - 1)
        mixture = sum(weights[:, j].reshape(shape) * out for j, out in enumerate(outputs))
        leaves = torch.cat([weights[:, j:j + 1] * p for j, p in enumerate(leaf_probabilities)], dim=1)
        return mixture, leaves

    def hard(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(each sample's output from its leaf, the leaf's index ``[N]``)."""
        h = self.segment(x)
        if self.router is None:
            return h, torch.zeros(len(h), dtype=torch.long, device=h.device)
        choice = self.router.scores(h).argmax(dim=1)
        output, leaf = None, torch.zeros(len(h), dtype=torch.long, device=h.device)
        offset = 0
        for j, child in enumerate(self.branches):
            taken = choice == j
            if bool(taken.any()):
                out, child_leaf = child.hard(h[taken])
                if output is None:
                    output = out.new_zeros((len(h), *out.shape[1:]))
                output[taken] = out
                leaf[taken] = child_leaf + offset
            offset += child.leaves
        return output, leaf


    def exported(self, x: torch.Tensor) -> torch.Tensor:
        """Hard routing of one sample as ``torch.cond`` per inner node (child 0 when its score is
        not below child 1's, as argmax breaks ties): ``torch.onnx.export`` makes each an ONNX
        ``If`` whose branches hold the children's graphs."""
        h = self.segment(x)
        if self.router is None:
            return h
        return torch.cond(self.router(h), self.branches[0].exported, self.branches[1].exported, (h,))


class SigmaBranchNet(torch.nn.Module):
    """The tree as one module: soft routing at ``temperature`` in training mode, hard routing
    in eval mode (``forward`` returns the output only; :meth:`route` the leaves). Under
    ``torch.onnx.export`` (one sample) it is the graph of :meth:`SigmaNode.exported`."""

    def __init__(self, root: SigmaNode, temperature: float = 1.0):
        super().__init__()
        self.root = root
        self.temperature = temperature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return self.root.soft(x, self.temperature)[0]
        if torch.compiler.is_exporting():
            if x.shape[0] != 1:
                raise EdgecError(f"a Sigma-Branch tree exports for one sample, not a batch of {x.shape[0]}",
                                 "export it with example inputs of batch size 1")
            return self.root.exported(x)
        return self.root.hard(x)[0]

    def route(self, x: torch.Tensor) -> torch.Tensor:
        """The leaf each sample of ``x`` takes under hard routing."""
        return self.root.hard(x)[1]

    def paths(self) -> list[list[SigmaNode]]:
        """Every root-to-leaf path, leaves left to right."""
        def walk(node: SigmaNode, above: list[SigmaNode]) -> list[list[SigmaNode]]:
            here = [*above, node]
            return [here] if node.router is None else [p for child in node.branches for p in walk(child, here)]
        return walk(self.root, [])

    def path_parameters(self) -> list[int]:
        """Parameters one inference reads on each path: its segments and the routers on it."""
        return [sum(p.numel() for node in path for module in (node.segment, node.router) if module is not None
                    for p in module.parameters()) for path in self.paths()]


def check_splits(dense: torch.nn.Sequential, splits: list[int]) -> None:
    """Raise unless ``splits`` are increasing indices strictly inside ``dense``."""
    if not splits or list(splits) != sorted(set(splits)) or splits[0] < 1 or splits[-1] >= len(dense):
        raise EdgecError(f"split points {list(splits)} do not divide a network of {len(dense)} layers",
                         f"give increasing layer indices between 1 and {len(dense) - 1}, one per tree level")


def build_tree(dense: torch.nn.Sequential, splits: list[int], inputs: torch.Tensor, widths: list[float],
               seed: int = 0) -> SigmaBranchNet:
    """The tree of ``dense`` (see the module docstring) initialised from ``inputs`` (calibration
    samples): routers from spherical 2-means of each node's outputs, children narrowed to
    ``widths[d - 1]`` on the samples routed to them."""
    check_splits(dense, splits)
    if len(widths) != len(splits):
        raise EdgecError(f"{len(widths)} widths for {len(splits)} tree levels", "give one width per level")
    bounds = [*splits, len(dense)]

    def build(segment: torch.nn.Sequential, x: torch.Tensor, kept: torch.Tensor | None, depth: int) -> SigmaNode:
        with torch.no_grad():
            h = segment(x)
        if depth == len(splits):
            return SigmaNode(segment)
        features = pooled(h)
        center = features.mean(dim=0)
        clusters = spherical_kmeans(features - center, 2, seed=seed + depth)
        dense_child = dense[bounds[depth]:bounds[depth + 1]]
        branches = []
        for j in range(2):
            members = h[clusters.assignment == j]
            child, child_kept = narrowed_copy(dense_child, members, widths[depth], kept, final=depth + 1 == len(splits))
            branches.append(build(child, members, child_kept, depth + 1))
        return SigmaNode(segment, CosineRouter(clusters.centroids, center), (branches[0], branches[1]))

    was_training = dense.training
    dense.eval()
    try:
        return SigmaBranchNet(build(copy.deepcopy(dense[:splits[0]]), inputs, None, 0))
    finally:
        dense.train(was_training)
