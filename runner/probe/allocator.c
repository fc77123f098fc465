/*
 * The allocator's own way to give its free memory back to the system, for release malloc-trim:
 * glibc's malloc_trim, or, where another allocator is preloaded (parameter allocator), its
 * equivalent: jemalloc's purge of every arena (mallctl "arena.<MALLCTL_ARENAS_ALL>.purge"),
 * tcmalloc's MallocExtension_ReleaseFreeMemory, mimalloc's mi_collect(force). Each is found by
 * name in the process (dlsym), so the probe links none of them; glibc's is the fallback.
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
