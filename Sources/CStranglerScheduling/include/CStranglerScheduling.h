#ifndef C_STRANGLER_SCHEDULING_H
#define C_STRANGLER_SCHEDULING_H

#include <stdint.h>

/// Asks the kernel to give the calling thread scheduling slices of `nanoseconds` (Linux 6.12 and
/// later, EEVDF's custom slice; SCHED_OTHER is kept). A thread with a shorter slice than the one
/// running preempts it on wakeup. With `reset_on_fork`, threads it starts get the default slice.
/// Returns 0, or the errno (ENOSYS off Linux, EINVAL on kernels without custom slices).
int c_strangler_set_thread_slice(uint64_t nanoseconds, int reset_on_fork);

/// The calling thread's slice in nanoseconds as the kernel reports it, or 0 when unknown.
uint64_t c_strangler_thread_slice(void);

#endif
