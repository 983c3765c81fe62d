#include "CStranglerScheduling.h"

#include <errno.h>
#include <string.h>

#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>

/* struct sched_attr from linux/sched/types.h (glibc before 2.41 has no wrapper). */
struct strangler_sched_attr {
    uint32_t size;
    uint32_t sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime;
    uint64_t sched_deadline;
    uint64_t sched_period;
};

#define STRANGLER_SCHED_FLAG_RESET_ON_FORK 0x01
#define STRANGLER_SCHED_OTHER 0
#define STRANGLER_SCHED_BATCH 3

int c_strangler_set_thread_slice(uint64_t nanoseconds, int reset_on_fork) {
    struct strangler_sched_attr current;
    memset(&current, 0, sizeof current);
    /* Keep the thread's nice value: setattr sets it too. */
    if (syscall(SYS_sched_getattr, 0, &current, sizeof current, 0) != 0) return errno;
    /* Custom slices are for the fair policies; a thread run otherwise (chrt) is left alone. */
    if (current.sched_policy != STRANGLER_SCHED_OTHER && current.sched_policy != STRANGLER_SCHED_BATCH) return EPERM;
    struct strangler_sched_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.size = sizeof attr;
    attr.sched_policy = current.sched_policy;
    attr.sched_flags = reset_on_fork ? STRANGLER_SCHED_FLAG_RESET_ON_FORK : 0;
    attr.sched_nice = current.sched_nice;
    attr.sched_runtime = nanoseconds;
    if (syscall(SYS_sched_setattr, 0, &attr, 0) != 0) return errno;
    return 0;
}

uint64_t c_strangler_thread_slice(void) {
    struct strangler_sched_attr current;
    memset(&current, 0, sizeof current);
    if (syscall(SYS_sched_getattr, 0, &current, sizeof current, 0) != 0) return 0;
    return current.sched_runtime;
}
#else
int c_strangler_set_thread_slice(uint64_t nanoseconds, int reset_on_fork) {
    (void)nanoseconds;
    (void)reset_on_fork;
    return ENOSYS;
}

uint64_t c_strangler_thread_slice(void) { return 0; }
#endif
