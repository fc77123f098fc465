/*
 * The allocator's own way to give its free memory back to the system, for release malloc-trim:
 * glibc's malloc_trim, or, where another allocator is preloaded (parameter allocator), its
 * equivalent: jemalloc's purge of every arena (mallctl "arena.<MALLCTL_ARENAS_ALL>.purge"),
 * tcmalloc's MallocExtension_ReleaseFreeMemory, mimalloc's mi_collect(force). Each is found by
 * name in the process (dlsym), so the probe links none of them; glibc's is the fallback.
 * And, for free_pause_ms, the calls a program that goes on makes into its allocator.
 */
#include "probe.h"

#ifdef __GLIBC__
#include <dlfcn.h>
#endif

#define JEMALLOC_ARENAS_ALL 4096 /* MALLCTL_ARENAS_ALL: every arena at once */

typedef int (*mallctl_fn)(const char *, void *, size_t *, void *, size_t);
typedef void (*release_fn)(void);
typedef void (*collect_fn)(_Bool);

void allocator_trim(void)
{
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 34)
    mallctl_fn mallctl = (mallctl_fn)dlsym(RTLD_DEFAULT, "mallctl");
    if (mallctl != NULL) {
        char name[32];
        snprintf(name, sizeof name, "arena.%d.purge", JEMALLOC_ARENAS_ALL);
        if (mallctl(name, NULL, NULL, NULL, 0) != 0)
            system_error("mallctl (jemalloc's arena purge)");
        return;
    }
    release_fn release = (release_fn)dlsym(RTLD_DEFAULT, "MallocExtension_ReleaseFreeMemory");
    if (release != NULL) {
        release();
        return;
    }
    collect_fn collect = (collect_fn)dlsym(RTLD_DEFAULT, "mi_collect");
    if (collect != NULL) {
        collect(1);
        return;
    }
#endif
    malloc_trim(0);
}

/* free_pause_ms: a program that goes on after a free keeps calling its allocator. jemalloc and
 * mimalloc give freed memory back late, from inside their own calls, reading their clocks then
 * (neither runs a thread of its own by default): a program that sleeps without calling them
 * gives them no chance, and one that calls them only after the sleep gives jemalloc none
 * either, as its decay counts a page's age from the first of its calls that sees it freed.
 * So, untimed: every PAUSE_STEP_MS, PAIRS_PER_STEP malloc/free pairs of PAIR_BYTES, one block
 * at a time, then the sleep (nanosleep, restarted on EINTR), the sleeps adding up to the
 * pause; at the end the free of a block of HOLD_BYTES held since the start, and one more round
 * of pairs. The sizes:
 * - PAIR_BYTES, 48 KiB: above jemalloc's thread cache (32 KiB), so each call reaches its arena
 *   and ticks its decay, which runs about once in 1000 ticks and at most 4164 apart
 *   (ticker_geom): a step's 256 ticks run it every 170 ms at least. Below glibc's 128 KiB mmap
 *   threshold, and one block at a time: glibc reuses one chunk at the top of its heap, so the
 *   pairs make a page or two resident, its headers.
 * - HOLD_BYTES, 132 KiB: mimalloc 2.0 serves it from a page of its own (above its 128 KiB
 *   medium objects) and frees that page as the block is freed, which decommits every freed
 *   span of its segment whose decommit_delay (25 ms) has run out. Pages it takes for the pairs
 *   would not: taking a span that waits to be decommitted restarts the segment's delay, and the
 *   pairs reuse their one page. Under glibc the held block is a mapping of its own at first
 *   (from the 128 KiB mmap threshold; unmapping it raises the threshold to its size). */
#define PAUSE_STEP_MS 10
#define PAIRS_PER_STEP 128
#define PAIR_BYTES ((size_t)48 << 10)
#define HOLD_BYTES ((size_t)132 << 10)

static void make_pairs(void)
{
    for (int i = 0; i < PAIRS_PER_STEP; i++) {
        void *block = malloc(PAIR_BYTES);
        if (block == NULL)
            system_error("malloc (free_pause_ms's pairs)");
        ESCAPE(block);
        free(block);
    }
}

void allocator_go_on(size_t milliseconds)
{
    void *held = malloc(HOLD_BYTES);
    if (held == NULL)
        system_error("malloc (the block free_pause_ms holds)");
    ESCAPE(held);
    for (size_t slept = 0; slept < milliseconds; slept += PAUSE_STEP_MS) {
        make_pairs();
        size_t left = milliseconds - slept;
        pause_for(left < PAUSE_STEP_MS ? left : PAUSE_STEP_MS);
    }
    free(held);
    make_pairs();
}
