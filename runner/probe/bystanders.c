/*
 * Bystanders: threads of the process that run while it measures and touch no memory of the
 * scenario (they spin). A CPU running a thread of the process holds the address space's TLB
 * entries, so each munmap or MADV_DONTNEED the measuring thread makes must also flush that
 * CPU's TLB (an interprocessor interrupt, then a wait for its answer): the cost "freeing
 * memory costs more when other threads run" is about, apart from any lock threads would share
 * by allocating too.
 */
#include "probe.h"

static atomic_int stop_spinning;

static void *spin(void *unused)
{
    (void)unused;
    while (!atomic_load_explicit(&stop_spinning, memory_order_relaxed))
        ; /* on a CPU of its own, holding the process's address space */
    return NULL;
}

void start_bystanders(size_t count)
{
    for (size_t i = 0; i < count; i++) {
        pthread_t thread;
        int error = pthread_create(&thread, NULL, spin, NULL);
        if (error != 0) {
            errno = error;
            system_error("pthread_create (a bystander)");
        }
        pthread_detach(thread); /* they spin until the process exits */
    }
}
