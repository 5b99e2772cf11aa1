"""Planning a run's parts: which checks each part of a fanned-out run executes (a pure
function of the connector's checks; engine/parts.py runs the parts)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from connectors.base import Check, Collector


@dataclass(frozen=True)
class PartPlan:
    """The checks one part runs, and which of them are sharded: their shardable collectors
    read only the part's shard, and the run's closing part merges their results."""

    check_ids: list[str]
    sharded: list[str] = field(default_factory=list)


def plan_parts(checks: Sequence[Check], parts: int) -> list[PartPlan]:
    """Split a run's checks into at most `parts` parts, declaration order kept in each.

    Checks that share a collector stay together, so each collector runs once a run; checks
    whose collectors are all shardable run in every part, each part reading its own shard of
    the resources. The other groups are balanced over the parts by how many collectors they
    run (largest first, onto the lightest).
    """
    parent: dict[Collector, Collector] = {}

    def root(c: Collector) -> Collector:
        while parent.setdefault(c, c) is not c:
            c = parent[c]
        return c

    for chk in checks:
        for other in chk.needs[1:]:
            parent[root(other)] = root(chk.needs[0])
    components: dict[Collector, list[Check]] = {}
    for chk in checks:
        components.setdefault(root(chk.needs[0]), []).append(chk)
    collectors = {top: {c for chk in group for c in chk.needs}
                  for top, group in components.items()}
    order = {chk.id: n for n, chk in enumerate(checks)}

    def ids(group: Sequence[Check]) -> list[str]:
        return sorted((chk.id for chk in group), key=order.__getitem__)

    sharded = [chk for top, group in components.items() if parts > 1
               and all(c.shardable for c in collectors[top]) for chk in group]
    whole = [top for top in components if not set(components[top]) & set(sharded)]
    count = parts if sharded else max(1, min(parts, len(whole)))
    bins: list[list[Check]] = [[] for _ in range(count)]
    load = [0] * count
    for top in sorted(whole, key=lambda t: -len(collectors[t])):  # stable: ties keep order
        lightest = load.index(min(load))
        bins[lightest].extend(components[top])
        load[lightest] += len(collectors[top])
    return [PartPlan(ids([*group, *sharded]), ids(sharded)) for group in bins
            if group or sharded]
