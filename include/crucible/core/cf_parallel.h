/*
 * Running n like jobs at once: job 0 on the calling thread, the others on
 * threads of their own, all joined before cf_parallel returns. A job whose
 * thread cannot start runs on the calling thread after job 0, so the work
 * is always done. Jobs share nothing the caller did not give them.
 */
#ifndef CRUCIBLE_CF_PARALLEL_H
#define CRUCIBLE_CF_PARALLEL_H

#include <stddef.h>

/* The most jobs cf_parallel runs at once. */
#define CF_PARALLEL_MAX 4

/* The threads worth starting on this machine: its online processors, from
 * 1 to max (and to CF_PARALLEL_MAX). */
unsigned cf_parallel_threads(unsigned max);

/* Runs fn(jobs + i * size) for i in [0, n), n at most CF_PARALLEL_MAX. */
void cf_parallel(void *(*fn)(void *), void *jobs, size_t size, unsigned n);

#endif
