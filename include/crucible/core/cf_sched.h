/*
 * What the scheduler and the pipeline runner need from the process: a stop
 * request that SIGTERM sets (deferred through cf_shutdown_set_stop, so the
 * running pipeline stage finishes first), and a sleep that a stop request
 * or a signal cuts short.
 */
#ifndef CRUCIBLE_CF_SCHED_H
#define CRUCIBLE_CF_SCHED_H

#include "crucible/core/cf_common.h"

/* Arms the watch: the next SIGTERM requests a stop instead of ending the
 * process. *armed_now is 1 when this call armed it, 0 when it already
 * was or a stop is already pending (the caller then does not own it).
 * 0 or -1. */
int cf_stop_watch(int *armed_now, cf_err *err);
/* Disarms it (a later SIGTERM ends the process as usual). */
void cf_stop_unwatch(void);
/* Whether the watch is armed. */
int cf_stop_watching(void);
/* Requests a stop as SIGTERM does (tests, a program's own shutdown). */
void cf_stop_request(void);
/* Whether a stop was requested since the last cf_stop_reset. */
int cf_stop_requested(void);
void cf_stop_reset(void);

typedef enum cf_wake {
    CF_WAKE_TIME,        /* the deadline passed */
    CF_WAKE_STOP,        /* a stop was requested */
    CF_WAKE_INTERRUPTED  /* a signal (SIGINT) interrupted the wait */
} cf_wake;

/* Sleeps until the wall clock (cf_now_us) reaches deadline_us, a stop is
 * requested, or a signal arrives. A wall clock set back or forward is
 * followed (the wait is re-checked at least every second). */
cf_wake cf_sleep_until(int64_t deadline_us);

#endif
