/*
 * Running a hugetlb pool dry (hugetlb_pool): the runner reserves exactly N free 2 MiB pages for
 * this process and says so in ALLOCLAB_HUGETLB_POOL (runner/machine/hugetlb_pool.py). After
 * cycle's free phase, untimed, with the measured blocks gone and the pool whole again, the probe
 * asks for one page more than the pool holds, twice: as an ordinary MAP_HUGETLB mapping, which
 * the kernel must refuse at mmap (it reserves a hugetlb mapping's pages when it is made: ENOMEM),
 * and with MAP_NORESERVE, which it grants, so that the pool runs dry at a fault instead: writing
 * the pool's pages succeeds and the write of the page past them raises SIGBUS. Both outcomes are
 * observations of the scenario, not a crash of the probe.
 */
#include "probe.h"

const char HUGETLB_POOL_VARIABLE[] = "ALLOCLAB_HUGETLB_POOL";

/* The pool alloclab reserved for this process, in 2 MiB pages; 0 when it reserved none. */
static size_t alloclab_pool_pages(void)
{
    const char *text = getenv(HUGETLB_POOL_VARIABLE);
    if (text == NULL)
        return 0;
    char *end;
    unsigned long long pages = strtoull(text, &end, 10);
    if (*text == '\0' || *end != '\0' || pages == 0 || pages > SIZE_MAX / HUGE_PAGE_BYTES - 1)
        usage_error("%s=%s: not a number of 2 MiB pages", HUGETLB_POOL_VARIABLE, text);
    return (size_t)pages;
}

/* Free 2 MiB pages no mapping has reserved: free_hugepages - resv_hugepages. */
static uint64_t unreserved_pool_pages(void)
{
    static const char *const names[2] = {"free_hugepages", "resv_hugepages"};
    uint64_t value[2] = {0, 0};
    for (int i = 0; i < 2; i++) {
        char path[128], text[32];
        snprintf(path, sizeof path, "/sys/kernel/mm/hugepages/hugepages-2048kB/%s", names[i]);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            system_error(path);
        ssize_t got = read(fd, text, sizeof text - 1);
        close(fd);
        if (got <= 0)
            system_error(path);
        text[got] = '\0';
        value[i] = (uint64_t)strtoull(text, NULL, 10);
    }
    return value[0] > value[1] ? value[0] - value[1] : 0;
}

static sigjmp_buf dry_jump;

static void on_dry(int signal_number)
{
    (void)signal_number;
    siglongjmp(dry_jump, 1);
}

/* Pages of `p` written, one byte each from the first, before a write raised SIGBUS (all
 * `pages` when none did). volatile: the count survives the jump back. */
static __attribute__((noinline)) size_t pages_written_before_sigbus(unsigned char *p,
                                                                     size_t pages)
{
    volatile size_t written = 0;
    struct sigaction action, previous;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_dry;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGBUS, &action, &previous) != 0)
        system_error("sigaction");
    if (sigsetjmp(dry_jump, 1) == 0)
        for (; written < pages; written++)
            ((volatile unsigned char *)p)[written * HUGE_PAGE_BYTES] = 1;
    if (sigaction(SIGBUS, &previous, NULL) != 0)
        system_error("sigaction");
    return written;
}

static void *map_huge(size_t pages, int extra_flags)
{
    return mmap(NULL, pages * HUGE_PAGE_BYTES, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB | extra_flags, -1, 0);
}

void observe_hugetlb_pool(struct iteration_result *out)
{
    size_t pool = alloclab_pool_pages();
    if (pool == 0)
        return;
    uint64_t free_pages = unreserved_pool_pages();
    observe(out, OBS_HUGETLB_POOL_PAGES, free_pages);
    size_t past = (size_t)free_pages + 1;

    void *p = map_huge(past, 0);
    int refused = p == MAP_FAILED && errno == ENOMEM;
    if (p != MAP_FAILED && munmap(p, past * HUGE_PAGE_BYTES) != 0)
        system_error("munmap");
    observe(out, OBS_HUGETLB_PAST_POOL_REFUSED, (uint64_t)refused);

    p = map_huge(past, MAP_NORESERVE);
    uint64_t dry_at_end = 0;
    if (p != MAP_FAILED) {
        dry_at_end = pages_written_before_sigbus(p, past) == free_pages;
        if (munmap(p, past * HUGE_PAGE_BYTES) != 0)
            system_error("munmap");
    }
    observe(out, OBS_HUGETLB_SIGBUS_AT_POOL_END, dry_at_end);
}
