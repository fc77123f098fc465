"""How big a scenario is: the memory one block takes, the inner-loop count `auto` stands for,
and the memory one probe process needs at its peak (what runner.machine.guard weighs against
what is free)."""

from __future__ import annotations

from collections.abc import Mapping

from runner.core.choices import FILE_BACKINGS, FRAGMENT_SMALLEST_BYTES, HUGE_PAGE_BYTES
from runner.core.kinds import Value

AUTO_OPS_TARGET_BYTES = 16 << 20


AUTO_OPS_MAX = 65536
# Workload fragment's memory per byte its blocks ask for at most: the allocator's headers,
# rounding and free memory kept between live blocks (1.06 to 1.33 measured), and the live
# bytes' wander above their mean from round to round (a few percent).
FRAGMENT_OVERHEAD = 2


def block_bytes(backing: str, size_bytes: int) -> int:
    """Memory one block really takes: a hugetlb block is rounded up to whole huge pages."""
    if backing == "mmap-hugetlb":
        return -(-size_bytes // HUGE_PAGE_BYTES) * HUGE_PAGE_BYTES
    return size_bytes


def fragment_mean_bytes(size_bytes: int) -> float:
    """The mean size of a block workload fragment draws up to `size_bytes`: each octave from
    16 << k to 32 << k (the last cut at size) as likely, and within it each size (the probe's
    draw_size in fragment.c)."""
    octaves = 1
    while (FRAGMENT_SMALLEST_BYTES << octaves) < size_bytes and octaves < 48:
        octaves += 1
    means = [(low + min(2 * low, size_bytes)) / 2
             for low in (FRAGMENT_SMALLEST_BYTES << k for k in range(octaves))]
    return sum(means) / octaves


def resolve_ops(ops: int, size_bytes: int, backing: str = "") -> int:
    """The inner-loop count: as given, or for 'auto' (0) enough blocks to cover 16 MiB."""
    if ops:
        return ops
    blocks = -(-AUTO_OPS_TARGET_BYTES // block_bytes(backing, size_bytes))  # rounded up
    return max(1, min(AUTO_OPS_MAX, blocks))


def blocks_handled(ops: int, threads: int, workload: str) -> int:
    """The blocks one iteration's phases handle, which every `_per_op` metric divides by: the
    `ops` blocks (cycle's threads share them out), but for workload churn, whose threads each run
    `ops` allocate-use-release pairs of their own, ops x threads pairs, and for workload
    fragment, whose threads each keep `ops` blocks of their own, ops x threads blocks."""
    return ops * threads if workload in ("churn", "fragment") else ops


def reserves_untouched(params: Mapping[str, Value]) -> bool:
    """Whether a scenario maps blocks with MAP_NORESERVE that nothing ever writes or reads
    (workload cycle: no access, populate, advice, check_zero, recycling, host warming or exec
    check): such blocks take no memory however large they are, which is what they are for."""
    quiet = {"access": "none", "populate": "none", "advice": "none", "check_zero": False,
             "history": "fresh", "host_warm": False, "workload": "cycle"}
    return (bool(params["noreserve"]) and params["protection"] != "exec"
            and all(params[key] == value for key, value in quiet.items()))


def scenario_memory_bytes(size_bytes: int, ops: int, backing: str = "", workload: str = "cycle",
                          grow_factor: int = 2, grow_steps: int = 1, threads: int = 1) -> int:
    """Memory one probe process needs at its peak: every block of the inner loop at once; for
    fork a second copy (the child's), for resize the old and the grown blocks of the last
    growth step together, for churn one block per thread (but the data file of a file backing,
    which holds every block), for fragment ops blocks of its mean size per thread and what the
    allocator keeps beside them, for ipc
    one message on each side (its peer's process included)."""
    blocks = block_bytes(backing, size_bytes) * ops
    if workload == "limits":  # mappings that are never touched
        return 0
    if workload == "fork":
        return 2 * blocks
    if workload == "ipc":  # one message buffer, and the peer's copy (a pipe's, or private)
        return 2 * block_bytes(backing, size_bytes)
    if workload == "churn" and backing not in FILE_BACKINGS:
        return block_bytes(backing, size_bytes) * threads  # one block alive in each thread
    if workload == "fragment":  # ops blocks of mixed sizes in each thread (a working set each)
        return int(FRAGMENT_OVERHEAD * ops * threads * fragment_mean_bytes(size_bytes))
    if workload == "resize":
        return (1 + grow_factor) * int(grow_factor ** (grow_steps - 1)) * blocks
    return blocks
