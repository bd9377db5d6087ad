"""Finding a way around walls: a navigation grid with precomputed next hops.

Players walk in straight lines between waypoints; this module supplies the
waypoints. Nodes sit on a regular grid over the free floor, edges join
nodes a player can walk between in a straight line, and all-pairs shortest
paths (``scipy.sparse.csgraph``) give the next hop from any node to any
other. Built once per map and cached, so a path query is a few array
lookups.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Final

import numpy as np
import numpy.typing as npt

from gamebus.sim.arrays import FloatArray
from gamebus.sim.world import GameMap, get_map, walkable_many

__all__ = ["NavGrid", "nav_grid"]


_SPACING_M: Final = 3.0
_LINK_M: Final = 6.5  # join nodes up to two grid steps apart (diagonals included)
_CELL_M: Final = 0.5  # resolution of the nearest-node lookup table


@dataclass(frozen=True)
class NavGrid:
    """The free nodes of a map and the next hop between every pair of them."""

    nodes: FloatArray  # (n, 2)
    next_hop: npt.NDArray[np.int32]  # (n, n): first node after i on the way to j, -1 if none
    nearest_table: npt.NDArray[np.int32]  # nearest node of each _CELL_M cell

    def nearest(self, xy: FloatArray) -> int:
        """The node nearest to ``xy`` (to the centre of its small lookup cell)."""
        rows, cols = self.nearest_table.shape
        cx = min(max(int(xy[0] / _CELL_M), 0), rows - 1)
        cy = min(max(int(xy[1] / _CELL_M), 0), cols - 1)
        return int(self.nearest_table[cx, cy])

    def next_waypoint(self, game_map: GameMap, here: FloatArray, goal: FloatArray) -> FloatArray:
        """Where to walk next on the way from ``here`` to ``goal``.

        The goal itself when it is in a straight line, else the farthest of
        the next few path nodes that is.
        """
        a, b = self.nearest(here), self.nearest(goal)
        chain = []
        node = a
        for _ in range(5):
            node = int(self.next_hop[node, b]) if node != b else -1
            if node < 0:
                break
            chain.append(node)
        points = np.vstack([goal[None, :], self.nodes[chain]]) if chain else goal[None, :]
        ok = walkable_many(game_map, np.broadcast_to(here, points.shape), points)
        if ok[0]:
            return goal
        for k in range(len(chain), 0, -1):
            if ok[k] and ok[1 : k + 1].all():
                return self.nodes[chain[k - 1]]
        return self.nodes[a]


def _build(game_map: GameMap) -> NavGrid:
    # scipy is imported here, on first use, to keep `gamebus --help` fast.
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import shortest_path

    xs = np.arange(_SPACING_M / 2, game_map.size_x_m, _SPACING_M)
    ys = np.arange(_SPACING_M / 2, game_map.size_y_m, _SPACING_M)
    grid = np.array([(x, y) for x in xs for y in ys])
    nodes = grid[~game_map.blocked_many(grid, radius_m=0.6)]
    n = len(nodes)
    i, j = np.triu_indices(n, 1)
    d = np.hypot(*(nodes[i] - nodes[j]).T)
    near = d <= _LINK_M
    i, j, d = i[near], j[near], d[near]
    ok = walkable_many(game_map, nodes[i], nodes[j], radius_m=0.5)
    i, j, d = i[ok], j[ok], d[ok]
    graph = csr_matrix((np.r_[d, d], (np.r_[i, j], np.r_[j, i])), shape=(n, n))
    _, pred = shortest_path(graph, directed=False, return_predecessors=True)
    # pred[s, t] is the node before t on the way from s; the next hop from a
    # to b is the node before a on the way from b.
    next_hop = pred.T.astype(np.int32)
    next_hop[next_hop < 0] = -1
    cx = (np.arange(int(np.ceil(game_map.size_x_m / _CELL_M))) + 0.5) * _CELL_M
    cy = (np.arange(int(np.ceil(game_map.size_y_m / _CELL_M))) + 0.5) * _CELL_M
    centres = np.stack(np.meshgrid(cx, cy, indexing="ij"), axis=-1).reshape(-1, 2)
    d2 = ((centres[:, None, :] - nodes[None, :, :]) ** 2).sum(axis=2)
    table = d2.argmin(axis=1).astype(np.int32).reshape(len(cx), len(cy))
    return NavGrid(nodes=nodes, next_hop=next_hop, nearest_table=table)


@cache
def nav_grid(map_name: str) -> NavGrid:
    """The navigation grid of the named map (built on first use, then cached)."""
    return _build(get_map(map_name))
