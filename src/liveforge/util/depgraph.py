"""Dependency graphs, given as a mapping from each name to the names it depends on: their
topological order (graphlib's) and the closure of some names. Build steps and the packages of
an extra component use the same two functions; each caller names a cycle in its own words.
"""

from __future__ import annotations

import graphlib

TYPE_CHECKING = False  # typing's, without importing typing
if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Mapping


class DependencyCycle(ValueError):
    """The graph has a cycle: ``cycle`` lists it, its first name repeated at the end."""

    def __init__(self, cycle: list[str]):
        super().__init__("dependency cycle: " + " -> ".join(cycle))
        self.cycle = cycle


def topo_order(graph: Mapping[str, Collection[str]]) -> list[str]:
    """Every name (and every name depended on) after the names it depends on, in graphlib's
    order: the same for the same mapping. A cycle raises :class:`DependencyCycle`."""
    try:
        return list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        raise DependencyCycle(list(exc.args[1])) from None


def closure(graph: Mapping[str, Collection[str]], roots: Iterable[str]) -> set[str]:
    """``roots`` and everything they depend on, directly or not (names the graph does not hold
    are left out)."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name not in seen and name in graph:
            seen.add(name)
            todo.extend(graph[name])
    return seen
