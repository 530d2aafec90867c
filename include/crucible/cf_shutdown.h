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

#include "crucible/cf_common.h"

typedef void (*cf_drain_fn)(void *ud);

/* Registers fn(ud). The first registration installs the SIGTERM handler,
 * the thread and the atexit hook. 0 or -1. */
int cf_shutdown_register(cf_drain_fn fn, void *ud, cf_err *err);
/* Removes it; waits when a drain is running. Harmless when absent. */
void cf_shutdown_unregister(cf_drain_fn fn, void *ud);

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
