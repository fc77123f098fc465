/*
 * Locked memory: the RLIMIT_MEMLOCK a scenario asks for (memlock_limit), the mlock calls it
 * refuses, and how much of the process is locked.
 *
 * Root holds CAP_IPC_LOCK, which lets mlock pass any limit, so a limit alone would show
 * nothing there: the probe also drops the capability from its effective set (it keeps it in
 * the permitted set, and nothing of the run needs it). The limit is set before anything is
 * mapped, so every block's mlock counts against it.
 */
#include "probe.h"

#include <linux/capability.h>
#include <sys/syscall.h>

static atomic_uint_fast64_t refusals;

static void drop_ipc_lock(void)
{
    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
    if (syscall(SYS_capget, &header, data) != 0)
        system_error("capget");
    data[CAP_TO_INDEX(CAP_IPC_LOCK)].effective &= ~CAP_TO_MASK(CAP_IPC_LOCK);
    if (syscall(SYS_capset, &header, data) != 0)
        system_error("capset");
}

void apply_memlock_limit(const struct scenario *s)
{
    if (s->memlock_limit_bytes == 0)
        return;
    struct rlimit limit;
    if (getrlimit(RLIMIT_MEMLOCK, &limit) != 0)
        system_error("getrlimit(RLIMIT_MEMLOCK)");
    limit.rlim_cur = s->memlock_limit_bytes;
    if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < limit.rlim_cur)
        skip("memlock_limit %zu bytes is above this process's hard RLIMIT_MEMLOCK (%llu)",
             s->memlock_limit_bytes, (unsigned long long)limit.rlim_max);
    if (setrlimit(RLIMIT_MEMLOCK, &limit) != 0)
        system_error("setrlimit(RLIMIT_MEMLOCK)");
    drop_ipc_lock();
}

void count_mlock_refusal(void)
{
    atomic_fetch_add_explicit(&refusals, 1, memory_order_relaxed);
}

/* The refusals since the last call (each iteration's own). */
uint64_t mlock_refusals(void)
{
    return atomic_exchange_explicit(&refusals, 0, memory_order_relaxed);
}

/* Pages the process holds locked in memory: faulted and locked (smaps_rollup's Locked). */
uint64_t locked_bytes(void)
{
    return proc_kib_field("/proc/self/smaps_rollup", "\nLocked:");
}

/* The locked ranges as they count against RLIMIT_MEMLOCK, touched or not (status's VmLck). */
uint64_t vm_locked_bytes(void)
{
    return proc_kib_field("/proc/self/status", "\nVmLck:");
}
