"""Families of clocks that are one clock with its slots renamed, run as one.

The batch engine advances every replication of a chunk by one happening a
step, and processes each *kind* of happening present in a step with a few numpy
calls on the rows where it happens. A scenario with many clocks has many kinds
in every step, and each replication has about as many steps as firings, so the
Python cost of a replication grows as (clocks)² / (chunk size): what kept the
cost per replication from growing linearly with the number of clocks.

Scenarios with many clocks are mostly made of clocks written alike: "each
delegation decides", "each of the twenty points is settled", the same guard,
delay and effect over a fact of their own. Such clocks form a *family*: their
code (tests and effects, as the compiler generates it) is the same up to a
renaming of slot numbers. The engine processes the firings of all members of a
family in a step with one call, evaluating the first member's compiled code
with an environment that reads, for each row, the slot of the member that
fired there. The slots a family renames are stored as the rows of one block
per renamed slot (each member's slot array is a view of its row of the block),
so that reading or writing "the member's slot" is one fancy index.

Re-evaluation goes the same way for the member that fired, on the rows where
it fired (a clock is always re-evaluated after its own firing). What else a
firing may change goes the usual way, one call per clock: the union, over the
members, of the clocks each member's firing may change (re-evaluating a clock
whose inputs did not change changes nothing). A change that reaches every
member on many rows (say, of a fact every member's guard reads) is evaluated
member by member over contiguous arrays, which measured far cheaper than the
same work over gathered (row, member) pairs.

A family is formed only where that cannot change a row: one effect and no
options, no protocol trigger, no ``when:`` event woken, the same delay
distribution and the same protocol states, and renamed slots that are written
arrays of one type (or constants for every member), each slot in at most one
block, none kept for the blocking report. The rows are the same as one call per
member gives (tested), and draws come from each member's own stream.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

import numpy as np

MIN_MEMBERS = 4  # fewer: the per-member calls cost about as little as one call


@dataclass(frozen=True)
class Family:
    """Clocks ``members`` that run as one; ``rep`` (the first) holds the compiled code.

    ``var`` maps a slot the representative's code reads or writes to the block of
    the members' slots (a key of :attr:`Plan.blocks`), or, for slots that are
    constant for every member, to the index of a row of constants
    (:attr:`Plan.consts`) negated minus one."""

    members: np.ndarray  # clock indices, ascending
    rep: int
    var: dict[int, int]
    others: frozenset[int]  # the clocks a member's firing may change, besides itself
    # Whether ``others`` holds every member: then none needs re-evaluating on its own
    # after it fires (it is among the clocks any member's firing re-evaluates).
    covered: bool


@dataclass(frozen=True)
class Plan:
    """The families of a scenario and where their renamed slots live."""

    families: list[Family]
    blocks: list[tuple[int, ...]]  # per block: the slot of each member, in member order
    consts: list[tuple[int, ...]]  # per row of constants: the constant slot of each member
    fam_of_col: np.ndarray  # per key column (and the parked bin): family, or -1
    member_of_col: np.ndarray  # per key column: the member's index in its family


def template(code: str, refs: list[int]) -> str:
    """``code`` with every slot read ``s[N]`` made anonymous (its N appended to ``refs``,
    in a fixed order): two codes with equal templates differ only in slot numbers."""
    tree = ast.parse(code, mode="eval")
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Name)
            and node.value.id == "s"
            and isinstance(node.slice, ast.Constant)
            and isinstance(node.slice.value, int)
        ):
            refs.append(node.slice.value)
            node.slice = ast.Constant(-1)
    return ast.dump(tree)


def plan(be: Any, test_codes: list[list[str]]) -> Plan:
    """Find the families of the batch engine ``be`` (built up to its columns)."""
    C, K = be.C, be.K
    groups: dict[Any, list[tuple[int, list[int]]]] = {}
    for i in range(C):
        effects = be.clock_effects[i]
        if len(effects) != 1 or be.weights[i] != [1.0] or effects[0].trigger is not None:
            continue
        if be.wakes[be.col_clock + i]:
            continue
        refs: list[int] = []
        tests = tuple(template(c, refs) for c in test_codes[i])
        sets = []
        for a in effects[0].sets:
            refs.append(a.slot)
            allowed = None if a.allowed is None else tuple(a.allowed.tolist())
            sets.append((template(a.src, refs), a.low, a.high, allowed))
        key = (
            be.cs.clocks[i].kind,
            be.masks[i].tobytes(),
            be.delays[i].spec,
            tests,
            tuple(sets),
            tuple(refs.index(x) for x in refs),  # which reads are of one slot
        )
        groups.setdefault(key, []).append((i, refs))
    families: list[Family] = []
    blocks: list[tuple[int, ...]] = []
    consts: list[tuple[int, ...]] = []
    used: set[int] = set()  # slots already in a block
    fam_of_col = np.full(K + 1, -1, dtype=np.int64)
    member_of_col = np.zeros(K + 1, dtype=np.int64)
    for members in groups.values():
        if len(members) < MIN_MEMBERS:
            continue
        var = _renaming(be, members, used, blocks, consts)
        if var is None:
            continue
        f = len(families)
        clocks = np.array([i for i, _ in members], dtype=np.int64)
        others: set[int] = set()
        for j, i in enumerate(clocks.tolist()):
            fam_of_col[be.col_clock + i] = f
            member_of_col[be.col_clock + i] = j
            others |= be.dirty[be.col_clock + i] - {i}
        covered = all(i in others for i in clocks.tolist())
        families.append(Family(clocks, int(clocks[0]), var, frozenset(others), covered))
    return Plan(families, blocks, consts, fam_of_col, member_of_col)


def _renaming(
    be: Any,
    members: list[tuple[int, list[int]]],
    used: set[int],
    blocks: list[tuple[int, ...]],
    consts: list[tuple[int, ...]],
) -> dict[int, int] | None:
    """How the members rename the representative's slots (None: they cannot share code);
    new blocks and rows of constants are appended to ``blocks`` and ``consts``."""
    rep_refs = members[0][1]
    columns: dict[int, list[int]] = {}  # rep slot -> the slot of each member
    for _, refs in members:
        if len(refs) != len(rep_refs):
            return None
        seen: dict[int, int] = {}
        for x, y in zip(rep_refs, refs, strict=True):
            if seen.setdefault(x, y) != y:
                return None  # one slot of the representative is two of a member
        if len(set(seen.values())) != len(seen):
            return None  # two slots of the representative are one of a member
        for x, y in seen.items():
            columns.setdefault(x, []).append(y)
    written_targets = {a.slot for a in be.clock_effects[members[0][0]][0].sets}
    var: dict[int, int] = {}
    new_blocks: list[tuple[int, ...]] = []
    new_consts: list[tuple[int, ...]] = []
    for x, ys in columns.items():
        if all(y == x for y in ys):
            continue  # the same slot for every member
        if len(set(ys)) != len(ys) or used & set(ys):
            return None
        types = {be.types[y] for y in ys}
        if len(types) != 1:
            return None
        written = [y in be.written for y in ys]
        if all(written):
            if x in written_targets and any(y in be.tracked for y in ys):
                return None  # the blocking report keeps its old value: not done here
            var[x] = len(blocks) + len(new_blocks)
            new_blocks.append(tuple(ys))
        elif not any(written):
            var[x] = -1 - (len(consts) + len(new_consts))
            new_consts.append(tuple(ys))
        else:
            return None
    for block in new_blocks:
        used.update(block)
    blocks.extend(new_blocks)
    consts.extend(new_consts)
    return var


class FamilySub:
    """Slot values restricted to some rows, each row reading its member's slots."""

    __slots__ = ("slots", "rows", "cache", "var", "blocks", "consts", "member")

    def __init__(
        self,
        slots: list[Any],
        rows: np.ndarray,
        var: dict[int, int],
        blocks: list[np.ndarray],
        consts: list[np.ndarray],
        member: np.ndarray,
    ) -> None:
        self.slots, self.rows, self.var = slots, rows, var
        self.blocks, self.consts, self.member = blocks, consts, member
        self.cache: dict[int, Any] = {}

    def __getitem__(self, i: int) -> Any:
        v = self.cache.get(i)
        if v is None:
            b = self.var.get(i)
            if b is None:
                x = self.slots[i]
                v = x[self.rows] if isinstance(x, np.ndarray) else x
            elif b >= 0:
                v = self.blocks[b][self.member, self.rows]
            else:
                v = self.consts[-1 - b][self.member]
            self.cache[i] = v
        return v
