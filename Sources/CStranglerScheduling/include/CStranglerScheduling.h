#ifndef C_STRANGLER_SCHEDULING_H
#define C_STRANGLER_SCHEDULING_H

#include <stdint.h>

/// Asks the kernel to give the calling thread scheduling slices of `nanoseconds` (Linux 6.12 and
/// later, EEVDF's custom slice; the policy, SCHED_OTHER or SCHED_BATCH, and the nice value are
/// kept). A thread with a shorter slice than the one running may preempt it on wakeup. With
/// `reset_on_fork`, threads it starts get the default slice. Returns 0, or the errno: ENOSYS off
/// Linux, EPERM for a thread of another policy. Kernels before 6.12 accept the call and ignore
/// the slice: read it back with c_strangler_thread_slice to know.
int c_strangler_set_thread_slice(uint64_t nanoseconds, int reset_on_fork);

/// The calling thread's custom slice in nanoseconds as the kernel reports it; 0 when it has
/// none, or the kernel has no custom slices.
uint64_t c_strangler_thread_slice(void);

#endif
