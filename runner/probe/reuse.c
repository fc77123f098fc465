/*
 * The reuse workload: the blocks written, released by madvise (MADV_DONTNEED or MADV_FREE,
 * which keep the mappings), then written again. What MADV_FREE is for: the kernel may keep
 * the pages until memory runs short, so memory used again soon after costs no fault and no
 * zeroing, where after MADV_DONTNEED every page faults in afresh.
 */
#include "probe.h"

/* reuse: allocate and first touch as cycle does them, the free phase (the release), then the
 * access pattern again on the released blocks, timed in the second_pass slot; the blocks are
 * unmapped after, untimed. No observation is taken between the release and the write, but in
 * a memory cgroup (memory_limit): there, untimed, an anonymous region as large as the blocks
 * is written and unmapped (pressure), then the share of the blocks' pages reading zero is
 * counted (released_zero_ppm: pages the kernel discarded), before the second pass. */
void run_reuse(const struct context *c, const struct scenario *s, unsigned char value,
               struct iteration_result *out)
{
    const struct blocks *b = &c->blocks;
    size_t page = b->page_bytes;
    struct phase_start start;
    out->rss_before_bytes = resident_bytes(page);

    start_phase(&start);
    allocate_blocks(b, s);
    stop_phase(&start, page, &out->phases[PHASE_ALLOCATE]);

    start_phase(&start);
    uint64_t checksum = touch_blocks(b, s, page, value);
    stop_phase(&start, page, &out->phases[PHASE_FIRST_TOUCH]);

    start_phase(&start);
    release_blocks(b, s);
    stop_phase(&start, page, &out->phases[PHASE_FREE]);
    if (in_memory_cgroup()) {
        /* memory_limit: pressure, then what the release left readable (cgroup.c) */
        press_memory(b->ops * b->map_bytes, page);
        observe(out, OBS_RELEASED_ZERO_PPM, zero_pages_ppm(b));
    }

    start_phase(&start);
    checksum += touch_blocks(b, s, page, (unsigned char)(value + 1));
    stop_phase(&start, page, &out->phases[PHASE_SECOND_PASS]);
    finish_release(b, s);
    out->checksum = checksum;
}
