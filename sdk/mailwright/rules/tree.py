"""Walking a rule tree: paths, leaves, depth, references to other segments."""

from __future__ import annotations

from typing import TypeAlias

from mailwright.rules.ast import And, Condition, Not, Or, Rule, SegmentMembership

Path: TypeAlias = tuple[int, ...]
"""Where a node sits: the child indexes from the root (``()`` is the root; a Not's child is 0)."""


def children(node: Rule) -> tuple[Rule, ...]:
    if isinstance(node, And | Or):
        return node.conditions
    if isinstance(node, Not):
        return (node.condition,)
    return ()


def walk(rule: Rule) -> list[tuple[Path, Rule]]:
    """Every node with its path, parents before children, without recursion."""
    out: list[tuple[Path, Rule]] = []
    stack: list[tuple[Path, Rule]] = [((), rule)]
    while stack:
        path, node = stack.pop()
        out.append((path, node))
        kids = children(node)
        for i in range(len(kids) - 1, -1, -1):
            stack.append(((*path, i), kids[i]))
    return out


def depth(rule: Rule) -> int:
    """Levels of the tree: a lone condition is 1, ``a and b`` is 2."""
    return max(len(path) for path, _ in walk(rule)) + 1


def conditions(rule: Rule) -> list[Condition]:
    """The leaves, in reading order."""
    return [n for _, n in walk(rule) if not isinstance(n, And | Or | Not)]


def segment_references(rule: Rule) -> frozenset[str]:
    return frozenset(n.segment for n in conditions(rule) if isinstance(n, SegmentMembership))
