"""How big a scenario is: the memory a process needs at its peak, per workload, and what `auto`
ops stands for."""

from __future__ import annotations

from runner.core.choices import HUGE_PAGE_BYTES
from runner.core.sizing import (
    blocks_handled,
    fragment_mean_bytes,
    resolve_ops,
    scenario_memory_bytes,
)

MiB = 1 << 20


def test_limits_needs_no_memory_for_its_untouched_blocks() -> None:
    assert scenario_memory_bytes(MiB, 4, "mmap-anon", "limits") == 0


def test_fork_and_resize_need_more_memory_than_their_blocks() -> None:
    assert scenario_memory_bytes(MiB, 4, "malloc", "fork") == 8 * MiB
    assert scenario_memory_bytes(MiB, 4, "malloc", "resize", 3) == 16 * MiB
    # a chain's peak is its last step: 512 MiB grown to 1 GiB beside it
    assert scenario_memory_bytes(MiB, 1, "malloc", "resize", 2, 10) == 1536 * MiB
    assert scenario_memory_bytes(MiB, 4, "malloc") == 4 * MiB


def test_churn_needs_one_block_but_a_file_backing_its_whole_file() -> None:
    assert scenario_memory_bytes(MiB, 64, "malloc", "churn") == MiB
    assert scenario_memory_bytes(4096, 3, "mmap-hugetlb", "churn") == HUGE_PAGE_BYTES
    assert scenario_memory_bytes(MiB, 64, "mmap-file", "churn") == 64 * MiB


def test_churn_threads_each_hold_a_block_and_handle_ops_of_them() -> None:
    """Each of churn's threads runs ops pairs with one block alive; cycle's threads share the
    ops blocks, so their count is what the phases handle whatever the threads."""
    assert scenario_memory_bytes(MiB, 64, "malloc", "churn", threads=3) == 3 * MiB
    assert scenario_memory_bytes(MiB, 64, "malloc", "cycle", threads=3) == 64 * MiB
    assert blocks_handled(64, 3, "churn") == 192
    assert blocks_handled(64, 3, "cycle") == 64
    assert blocks_handled(64, 1, "churn") == 64


def test_hugetlb_blocks_count_as_whole_huge_pages() -> None:
    assert scenario_memory_bytes(4096, 3, "mmap-hugetlb") == 3 * HUGE_PAGE_BYTES
    assert scenario_memory_bytes(4096, 3, "mmap-anon") == 3 * 4096
    # ops auto covers 16 MiB of what the blocks really take
    assert resolve_ops(0, 4096, "mmap-hugetlb") == 8
    assert resolve_ops(0, 4096, "mmap-anon") == 4096


def test_fragment_needs_twice_its_threads_working_sets_of_mean_sized_blocks() -> None:
    """Sizes from 16 bytes up, each octave as likely: to 64 KiB, 12 octaves of mean 1.5 x 16 x
    2^k; a size that cuts the last octave short lowers its mean; 16 bytes is all 16. The peak
    is twice the blocks' bytes (the allocator keeps 1.06-1.33 times them) in every thread."""
    assert fragment_mean_bytes(64 * 1024) == 1.5 * 16 * (2**12 - 1) / 12
    assert fragment_mean_bytes(48) == ((16 + 32) / 2 + (32 + 48) / 2) / 2
    assert fragment_mean_bytes(16) == 16
    mean = fragment_mean_bytes(64 * 1024)
    assert scenario_memory_bytes(64 * 1024, 4096, "malloc", "fragment", threads=4) == int(
        2 * 4096 * 4 * mean)
    assert blocks_handled(4096, 4, "fragment") == 4 * 4096
