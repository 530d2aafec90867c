/* Graceful termination on SIGTERM and at exit (see cf_shutdown.h). */
#include "crucible/core/cf_shutdown.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_DRAINS 64

typedef struct drain {
    cf_drain_fn fn;
    void *ud;
} drain;

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static drain drains[MAX_DRAINS];
static int ndrains;
static int installed;
static int term_pipe[2] = {-1, -1};
static struct sigaction old_term;
static cf_stop_fn stop_fn;
static void *stop_ud;

_Static_assert(sizeof(sigset_t) <= sizeof(((cf_sigblock *)0)->saved), "sigset_t fits");

int cf_thread_start(void *thread_out, void *(*fn)(void *), void *arg)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create((pthread_t *)thread_out, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc == 0 ? 0 : -1;
}

void cf_signals_block(cf_sigblock *b)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, (sigset_t *)(void *)b->saved);
}

void cf_signals_restore(const cf_sigblock *b)
{
    pthread_sigmask(SIG_SETMASK, (const sigset_t *)(const void *)b->saved, NULL);
}

static void run_drains(void)
{
    pthread_mutex_lock(&reg_mu);
    /* newest first, like close handlers */
    for (int i = ndrains - 1; i >= 0; i--)
        drains[i].fn(drains[i].ud);
    ndrains = 0;
    pthread_mutex_unlock(&reg_mu);
}

static void on_sigterm(int sig)
{
    (void)sig;
    int saved = errno;
    char c = 'T';
    if (write(term_pipe[1], &c, 1) < 0) {
        /* nothing async-signal-safe left to do */
    }
    errno = saved;
}

static void *term_thread(void *arg)
{
    (void)arg;
    char c;
    for (;;) {
        ssize_t got = read(term_pipe[0], &c, 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got != 1)
            return NULL;
        /* a deferred stop takes this SIGTERM (once); the next one ends us */
        pthread_mutex_lock(&reg_mu);
        cf_stop_fn fn = stop_fn;
        void *ud = stop_ud;
        stop_fn = NULL;
        stop_ud = NULL;
        pthread_mutex_unlock(&reg_mu);
        if (!fn)
            break;
        fn(ud);
    }
    run_drains();
    /* end the way SIGTERM would have ended us */
    sigaction(SIGTERM, &old_term, NULL);
    kill(getpid(), SIGTERM);
    return NULL;
}

static void at_exit(void)
{
    run_drains();
}

static int install(cf_err *err)
{
    struct sigaction cur;
    sigaction(SIGTERM, NULL, &cur);
    if (cur.sa_handler == SIG_IGN) {
        installed = 1; /* respect an ignored SIGTERM (nohup and friends) */
        atexit(at_exit);
        return 0;
    }
    if (pipe(term_pipe))
        return cf_fail(err, CF_EIO, "cannot create the termination pipe: %s", strerror(errno));
    fcntl(term_pipe[0], F_SETFD, FD_CLOEXEC);
    fcntl(term_pipe[1], F_SETFD, FD_CLOEXEC);
    pthread_t t;
    if (cf_thread_start(&t, term_thread, NULL)) {
        close(term_pipe[0]);
        close(term_pipe[1]);
        term_pipe[0] = term_pipe[1] = -1;
        return cf_fail(err, CF_EIO, "cannot start the termination thread");
    }
    pthread_detach(t);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigterm;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, &old_term);
    atexit(at_exit);
    installed = 1;
    return 0;
}

int cf_shutdown_set_stop(cf_stop_fn fn, void *ud, cf_err *err)
{
    pthread_mutex_lock(&reg_mu);
    int rc = 0;
    if (!installed)
        rc = install(err);
    if (rc == 0) {
        stop_fn = fn;
        stop_ud = ud;
    }
    pthread_mutex_unlock(&reg_mu);
    return rc;
}

void cf_shutdown_clear_stop(void)
{
    pthread_mutex_lock(&reg_mu);
    stop_fn = NULL;
    stop_ud = NULL;
    pthread_mutex_unlock(&reg_mu);
}

void cf_shutdown_terminate(void)
{
    run_drains();
    pthread_mutex_lock(&reg_mu);
    int handled = installed && term_pipe[0] >= 0;
    pthread_mutex_unlock(&reg_mu);
    if (!handled) {
        struct sigaction cur;
        sigaction(SIGTERM, NULL, &cur);
        if (cur.sa_handler == SIG_IGN)
            return;
    } else {
        sigaction(SIGTERM, &old_term, NULL);
    }
    raise(SIGTERM);
}

int cf_shutdown_register(cf_drain_fn fn, void *ud, cf_err *err)
{
    pthread_mutex_lock(&reg_mu);
    int rc = 0;
    if (!installed)
        rc = install(err);
    if (rc == 0) {
        if (ndrains == MAX_DRAINS)
            rc = cf_fail(err, CF_EUNSUPPORTED, "too many open ingestion buffers (at most %d)",
                         MAX_DRAINS);
        else
            drains[ndrains++] = (drain){fn, ud};
    }
    pthread_mutex_unlock(&reg_mu);
    return rc;
}

void cf_shutdown_unregister(cf_drain_fn fn, void *ud)
{
    pthread_mutex_lock(&reg_mu);
    for (int i = 0; i < ndrains; i++) {
        if (drains[i].fn == fn && drains[i].ud == ud) {
            memmove(&drains[i], &drains[i + 1], (size_t)(ndrains - i - 1) * sizeof *drains);
            ndrains--;
            break;
        }
    }
    pthread_mutex_unlock(&reg_mu);
}
