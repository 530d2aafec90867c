/*
 * Graceful termination: on SIGTERM, and at exit() when the Lua state was
 * not closed (os.exit(code, false)), every registered drain function runs
 * (the ingestion buffers write what they hold) before the process ends.
 *
 * SIGTERM is handled by a dedicated thread (the signal handler only
 * writes to a pipe): it runs the drains, then restores the previous
 * disposition and raises SIGTERM again, so the exit status still says
 * "terminated by SIGTERM". When SIGTERM was ignored at the first
 * registration, it stays ignored. SIGINT is not handled here: it raises
 * "interrupted!" in Lua, and closing the state flushes.
 */
#ifndef CRUCIBLE_CF_SHUTDOWN_H
#define CRUCIBLE_CF_SHUTDOWN_H

#include "crucible/core/cf_common.h"

typedef void (*cf_drain_fn)(void *ud);

/* Registers fn(ud). The first registration installs the SIGTERM handler,
 * the thread and the atexit hook. 0 or -1. */
int cf_shutdown_register(cf_drain_fn fn, void *ud, cf_err *err);
/* Removes it; waits when a drain is running. Harmless when absent. */
void cf_shutdown_unregister(cf_drain_fn fn, void *ud);

/* Deferred termination (the scheduler, pipeline runs): while a stop
 * handler is set, the next SIGTERM calls fn(ud) on the termination thread
 * instead of draining and ending the process, and clears the handler, so
 * a second SIGTERM drains and ends the process as usual. fn must be
 * async-safe with respect to the main thread (set a flag, write a pipe).
 * Installs the SIGTERM handling like cf_shutdown_register. Setting a
 * handler replaces the previous one. 0 or -1. */
typedef void (*cf_stop_fn)(void *ud);
int cf_shutdown_set_stop(cf_stop_fn fn, void *ud, cf_err *err);
/* Removes the stop handler (harmless when none is set). */
void cf_shutdown_clear_stop(void);
/* Ends the process the way SIGTERM does here, from the calling thread:
 * runs the drains, restores the previous SIGTERM disposition and raises
 * it (for a program that deferred a SIGTERM and has now stopped). When
 * SIGTERM is ignored, the drains run and the call returns. */
void cf_shutdown_terminate(void);

/* Blocks SIGTERM and SIGINT in the calling thread (while it flushes on
 * close) and restores them. */
typedef struct cf_sigblock {
    unsigned char saved[128];
} cf_sigblock;
void cf_signals_block(cf_sigblock *b);
void cf_signals_restore(const cf_sigblock *b);

/* Starts a thread with every signal blocked (flushers, the drain thread). */
int cf_thread_start(void *thread_out, void *(*fn)(void *), void *arg);

#endif
