"""The metrics a sample carries: the one place their names, units and meanings are defined.

The probe reports totals per phase over `ops` blocks; alloclab's metrics are those totals
divided per block (`_per_op`) or per 4 KiB-or-whatever page touched (`_per_page`), so that
scenarios with different inner-loop counts compare directly.

Besides the phases, an iteration may carry observations (runner.core.observations): named whole
numbers the probe reports when the scenario makes them meaningful, each one more metric here.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from runner.core.model import PHASES, CheckSpec, Method
from runner.core.observation_types import Metric
from runner.core.observations import OBSERVATIONS, PHASE_TITLES
from runner.core.units import format_bytes, format_ns


def _phase_metrics(phase: str) -> list[Metric]:
    title = PHASE_TITLES[phase]
    return [
        Metric(f"{phase}_ns_per_op", "ns", f"time of the {title} phase per block",
               f"{title} time per block"),
        Metric(f"{phase}_ns_per_page", "ns", f"time of the {title} phase per page of a block",
               f"{title} time per page"),
        Metric(f"{phase}_minor_faults_per_op", "faults", f"minor page faults in {title} per block",
               f"{title} minor faults per block"),
        Metric(f"{phase}_minor_faults_per_page", "faults",
               f"minor page faults in {title} per page of a block",
               f"{title} minor faults per page"),
        Metric(f"{phase}_major_faults_per_op", "faults", f"major page faults in {title} per block",
               f"{title} major faults per block"),
        Metric(f"{phase}_major_faults_per_page", "faults",
               f"major page faults (reads from disk) in {title} per page of a block",
               f"{title} major faults per page"),
        Metric(f"{phase}_rss_growth_bytes_per_op", "bytes",
               f"resident set growth over {title} per block (negative: memory returned)",
               f"{title} RSS growth per block"),
    ]



METRICS: tuple[Metric, ...] = (
    *(m for phase in PHASES for m in _phase_metrics(phase)),
    Metric("total_ns_per_op", "ns", "allocate + first touch + second pass + free, per block",
           "total time per block"),
    Metric("reuse_ns_per_op", "ns",
           "free + second pass, per block, for workload reuse: releasing the memory by "
           "madvise and writing it again (empty for other workloads)",
           "reuse time per block"),
    Metric("single_pass_ns_per_op", "ns",
           "allocate + first touch + free, per block: one use of the memory (for read-file and "
           "mmap-file, reading the file once)",
           "one use: time per block"),
    Metric("single_pass_syscalls_per_op", "calls",
           "system calls the probe issued in allocate + first touch + free, per block: what "
           "reading the file once takes in calls (file backings, workload cycle)",
           "one use: system calls per block"),
    Metric("single_pass_kernel_entries_per_op", "entries",
           "system calls the probe issued plus minor and major page faults in allocate + first "
           "touch + free, per block: how often one use of the memory entered the kernel (file "
           "backings, workload cycle)",
           "one use: kernel entries per block"),
    Metric("total_kernel_entries_per_op", "entries",
           "system calls the probe issued plus minor and major page faults in all four phases, "
           "per block (file backings, workload cycle)",
           "all phases: kernel entries per block"),
    Metric("single_pass_io_read_bytes_per_op", "bytes",
           "bytes fetched from storage in allocate + first touch + free, per block (file "
           "backings, workload cycle)",
           "one use: bytes read from storage per block"),
    Metric("single_pass_io_write_bytes_per_op", "bytes",
           "bytes owed to storage (pages dirtied) in allocate + first touch + free, per block "
           "(file backings, workload cycle)",
           "one use: bytes owed to storage per block"),
    Metric("cached_per_touched_page", "pages per page",
           "pages brought into the page cache (cached_pages_added) per page one pass visits "
           "(touched_pages): about 1 for pread or MADV_RANDOM, more where read-ahead reads "
           "around a fault (file backings, workload cycle; empty where no page is visited)",
           "pages cached per page visited"),
    Metric("io_read_per_touched_page", "pages per page",
           "bytes read from storage in allocate + first touch + free, in pages, per page one "
           "pass visits (touched_pages): 1 for pread or MADV_RANDOM of a cold file, more where "
           "read-ahead reads around a fault; unlike cached_per_touched_page it also counts "
           "what a memory limit evicted before the pass ended and what was read again (file "
           "backings, workload cycle; empty where no page is visited)",
           "pages read from storage per page visited"),
    Metric("single_pass_ns_per_touched_page", "ns",
           "allocate + first touch + free per page one pass visits (touched_pages): the time "
           "to read one page of a sparse share of a file, set-up and tear-down included (file "
           "backings, and any backing with touch_share below 100%; empty where no page is "
           "visited)",
           "one use: time per page visited"),
    Metric("first_touch_rss_per_touched_page", "bytes",
           "resident set growth over first touch per page it visited (touched_pages): 4 KiB "
           "where each visit faults one page, up to 2 MiB where it faults a transparent huge "
           "page (workload cycle, touch_share below 100%)",
           "first-touch RSS per page visited"),
    Metric("anon_huge_per_requested_byte", "bytes per byte",
           "memory that became transparent huge pages (anon_huge_bytes) per byte requested: "
           "1 when the whole block did, less by the 2 MiB pages a block that is not 2 MiB "
           "aligned only partly covers",
           "THP bytes per byte requested"),
    Metric("fault_in_ns_per_op", "ns",
           "allocate + first touch as one window, per block: getting memory and faulting it "
           "in, wherever the faults land (populate moves them into allocate)",
           "fault-in time per block"),
    Metric("fault_in_ns_per_page", "ns",
           "allocate + first touch as one window, per page of a block: what the field calls "
           "page-fault cost",
           "fault-in time per page"),
    Metric("fault_in_minor_faults_per_page", "faults",
           "minor page faults in allocate and first touch together, per page of a block",
           "fault-in minor faults per page"),
    Metric("resident_per_requested_byte", "bytes per byte",
           "memory made resident by the cycle (allocate to second pass) per byte requested",
           "resident bytes per byte requested"),
    Metric("brk_growth_per_requested_byte", "bytes per byte",
           "growth of the program break over allocate per byte requested (0: not from brk)",
           "break growth per byte requested"),
    Metric("vm_size_growth_per_requested_byte", "bytes per byte",
           "growth of the virtual address space (VmSize) over allocate per byte requested",
           "address space per byte requested"),
    Metric("usable_per_requested_byte", "bytes per byte",
           "usable size malloc granted (malloc_usable_size) per byte requested, in the heap "
           "trace of a fresh image (1: exactly the request)",
           "usable bytes per byte requested"),
    Metric("brk_step_per_requested_byte", "bytes per byte",
           "median move of the program break among the malloc calls that moved it, per byte "
           "one call requested, in the heap trace of a fresh image (1: a call grows the heap "
           "by exactly its request)",
           "break move per byte requested"),
    Metric("vm_step_per_requested_byte", "bytes per byte",
           "median growth of the address space (VmSize) among the calls that grew it, per "
           "byte one call requested, in the heap trace of a fresh image (about 1: a mapping "
           "per block; many times 1: blocks carved out of memory mapped in large steps)",
           "address-space step per byte requested"),
    Metric("vm_call_growth_per_requested_byte", "bytes per byte",
           "median growth of the address space (VmSize) over every call of the heap trace "
           "(0 for a call that grew nothing), per byte one call requested: 1 when a typical "
           "call grows the address space by exactly its request",
           "growth per call per byte requested"),
    Metric("retained_per_requested_byte", "bytes per byte",
           "resident memory an iteration left behind after its free phase (resident set after "
           "free minus before allocate) per byte requested: about 1 when the blocks leak, 0 "
           "when their memory is reused or returned, 1/N when keep_every N keeps one block "
           "in N and the freed ones leave no page behind",
           "retained bytes per byte requested"),
    Metric("page_table_per_requested_byte", "bytes per byte",
           "page tables grown (VmPTE) per byte requested: 8 bytes per 4 KiB page touched is "
           "1/512",
           "page tables per byte requested"),
    Metric("free_returned_fraction", "fraction",
           "share of the memory the cycle made resident that the free phase gave back to the "
           "system (1: all of it, 0: none; empty when nothing became resident)",
           "share free gave back"),
    Metric("pause_returned_fraction", "fraction",
           "share of the memory the cycle made resident that is given back by the end of "
           "free_pause_ms: the free phase, then the program going on (1: all of it; empty "
           "without a pause)",
           "share given back after the pause"),
    Metric("rss_per_live_byte", "bytes per byte",
           "resident memory the iteration added by the end of second pass per byte its blocks "
           "asked for at their peak (peak_live_bytes; workload fragment): 1 when the program "
           "holds no more than the most it ever had live; the allocator's headers, rounding "
           "and the free memory it keeps between live blocks add to it",
           "resident bytes per peak live byte"),
    Metric("held_per_live_byte", "bytes per byte",
           "resident memory the process holds after an iteration's free phase, over what it "
           "held before its first, per byte the iteration's blocks asked for at their peak "
           "(workload fragment): 0 when every freed byte went back to the system, 1 when the "
           "program keeps one working set's memory for the next, N when N threads each keep "
           "their own (thread_turns)",
           "held bytes per peak live byte"),
    Metric("retained_per_kept_byte", "bytes per byte",
           "resident memory the iteration left behind after its free phase per byte the "
           "blocks it kept ask for (workload fragment, keep_every above 0): 1 when freeing "
           "gave back all but the kept blocks' own memory, more where they hold freed memory "
           "around them",
           "retained bytes per kept byte"),
    *(o.metric for o in OBSERVATIONS),
    Metric("latency_p999_per_p50", "times",
           "the 99.9th percentile latency over the median, in one iteration (latency: "
           "histogram): how many times its median the worst operation in a thousand takes",
           "p99.9 over median"),
    Metric("latency_max_per_p50", "times",
           "the largest latency over the median, in one iteration (latency: histogram)",
           "max over median"),
    Metric("oom_killed", "fraction",
           "1 for a process the kernel's OOM killer ended in its memory cgroup (memory_limit; "
           "status oom), 0 for one that ran to its end: how a scenario ended, as a value a "
           "check can judge (each such process counts once, with no sample of any other "
           "metric)",
           "OOM-killed"),
)
BY_NAME: Mapping[str, Metric] = {m.name: m for m in METRICS}


@dataclass(frozen=True)
class Direction:
    """How a change of a metric reads: the word for a rise, for a fall, and what rose or fell
    when the word alone does not say it ("2 more faults"; a time that rises is just slower)."""

    up: str
    down: str
    noun: str = ""

    def phrase(self, rose: bool) -> str:
        """'slower', 'fewer faults'."""
        return " ".join(part for part in (self.up if rose else self.down, self.noun) if part)


# By unit: whether a rise is good or bad is the reader's to judge (runner.analysis.compare gates on
# times and faults); these only name which way a value went.
DIRECTIONS: Mapping[str, Direction] = {
    "ns": Direction("slower", "faster"),
    "faults": Direction("more", "fewer", "faults"),
    "calls": Direction("more", "fewer", "calls"),
    "entries": Direction("more", "fewer", "kernel entries"),
    "pages": Direction("more", "fewer", "pages"),
    "blocks": Direction("more", "fewer", "blocks"),
    "mappings": Direction("more", "fewer", "mappings"),
    "bytes": Direction("more", "less", "memory"),
}
NEUTRAL_DIRECTION = Direction("higher", "lower")


def direction(name: str) -> Direction:
    """How a change of the metric `name` reads (higher/lower where its unit says no more)."""
    return DIRECTIONS.get(BY_NAME[name].unit, NEUTRAL_DIRECTION)


# Workload churn's allocate phase is the whole allocate-use-release pair, not an allocation:
# where every scenario shown is churn, its metrics are named for what they time.
CHURN_NAMES: Mapping[str, str] = {
    "allocate_ns_per_op": "time per allocate-use-release pair",
    "allocate_ns_per_page": "pair time per page",
    "allocate_minor_faults_per_op": "minor faults per pair",
    "allocate_minor_faults_per_page": "minor faults per page of a pair",
    "allocate_major_faults_per_op": "major faults per pair",
    "allocate_major_faults_per_page": "major faults per page of a pair",
    "allocate_rss_growth_bytes_per_op": "RSS growth per pair",
}


def short_name(metric: str, workloads: Collection[str] = ()) -> str:
    """A metric's short name where the scenarios shown run `workloads`: churn's pair names
    where all of them are churn (CHURN_NAMES), else the metric's own."""
    if set(workloads) == {"churn"} and metric in CHURN_NAMES:
        return CHURN_NAMES[metric]
    return BY_NAME[metric].short_name


def format_value(metric: str, value: float) -> str:
    """A metric value in its unit, three significant digits ("–" for NaN: no sample)."""
    if value != value:
        return "–"
    unit = BY_NAME[metric].unit
    if unit == "ns":
        return format_ns(value)
    if unit == "bytes":
        return format_bytes(value)
    return f"{value:.3g}"


# Metrics that are facts of the kernel and allocator, not timings: the same scenario gives the
# same value in every sample (page faults counted, flags, addresses, sizes). Checks judge them
# on every sample (runner.analysis.verdict, method exact): a fact that fails once fails.
DETERMINISTIC: frozenset[str] = frozenset({
    *(f"{phase}_minor_faults_{per}" for phase in PHASES for per in ("per_op", "per_page")),
    "fault_in_minor_faults_per_page",
    "brk_growth_per_requested_byte", "vm_size_growth_per_requested_byte",
    "alignment_bytes", "hugetlb_bytes_per_op", "protection_enforced", "brk_growth_bytes_per_op",
    "blocks_in_heap_per_op", "mappings", "vm_size_growth_bytes_per_op",
    "nonzero_bytes_at_allocate_per_op", "child_sees_parent", "parent_sees_child",
    "blocks_moved_per_op", "data_survived",
    # Counted by the probe, not timed: the heap trace, dirty blocks, system calls, limits.
    "nonzero_blocks_per_op", "brk_moves_per_op", "brk_step_median_bytes",
    "brk_step_per_requested_byte", "usable_bytes_per_op", "usable_per_requested_byte",
    "vm_grows_per_op", "vm_step_median_bytes", "vm_step_per_requested_byte",
    "vm_call_growth_median_bytes", "vm_call_growth_per_requested_byte",
    *(f"{phase}_syscalls_per_op" for phase in PHASES), "single_pass_syscalls_per_op",
    "read_buffer_page_offset_bytes",
    "mappings_until_refused", "map_errno", "max_map_count", "mappings_at_refusal_fraction",
    "rlimit_as_enforced",
    "peer_sees_writes", "peer_first_touch_minor_faults_per_op",
    "peer_second_pass_minor_faults_per_op",
    # Counted or checked by the probe: pages visited, kernel entries, what a mapping shows.
    "touched_pages_per_op", "single_pass_kernel_entries_per_op", "total_kernel_entries_per_op",
    "content_matches", "tail_zero", "sigbus_beyond_eof", "holes_zero", "sigbus_after_truncate",
    # glibc's chunk flags and whether code ran: facts of the allocator and the kernel.
    "blocks_mmapped_per_op", "blocks_in_thread_arena_per_op", "exec_ran", "exec_trapped",
    "joined_neighbour", "latency_count",
    # The hugetlb pool alloclab reserved, and where it runs dry.
    "hugetlb_pool_pages", "hugetlb_past_pool_refused", "hugetlb_sigbus_at_pool_end",
    # How a process ended: the kernel's decision, not a timing.
    "oom_killed",
})


def method_of(check: CheckSpec) -> Method:
    """The check's own method, else exact for deterministic metrics, statistical otherwise."""
    if check.method is not None:
        return check.method
    return "exact" if check.metric in DETERMINISTIC else "statistical"
