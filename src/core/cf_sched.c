/* Stop requests and interruptible sleeps for the scheduler (cf_sched.h). */
#include "crucible/core/cf_sched.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "crucible/core/cf_shutdown.h"

static atomic_int stop_flag;
static atomic_int watching;
static pthread_mutex_t wake_mu = PTHREAD_MUTEX_INITIALIZER;
static int wake_pipe[2] = {-1, -1};

/* The self-pipe a stop request writes to, created once. */
static int wake_fds(cf_err *err)
{
    pthread_mutex_lock(&wake_mu);
    int rc = 0;
    if (wake_pipe[0] < 0) {
        if (pipe(wake_pipe)) {
            rc = cf_fail(err, CF_EIO, "cannot create the wake-up pipe: %s", strerror(errno));
        } else {
            for (int i = 0; i < 2; i++) {
                fcntl(wake_pipe[i], F_SETFD, FD_CLOEXEC);
                fcntl(wake_pipe[i], F_SETFL, fcntl(wake_pipe[i], F_GETFL) | O_NONBLOCK);
            }
        }
    }
    pthread_mutex_unlock(&wake_mu);
    return rc;
}

void cf_stop_request(void)
{
    atomic_store(&stop_flag, 1);
    if (wake_pipe[1] >= 0) {
        char c = 'S';
        if (write(wake_pipe[1], &c, 1) < 0) {
            /* full pipe: a wake-up is already pending */
        }
    }
}

/* Runs on the termination thread when SIGTERM arrives while armed. */
static void on_stop(void *ud)
{
    (void)ud;
    atomic_store(&watching, 0);
    cf_stop_request();
}

int cf_stop_watch(int *armed_now, cf_err *err)
{
    *armed_now = 0;
    if (wake_fds(err))
        return -1;
    /* already watched, or a stop is pending: its owner handles it */
    if (atomic_load(&watching) || atomic_load(&stop_flag))
        return 0;
    if (cf_shutdown_set_stop(on_stop, NULL, err))
        return -1;
    atomic_store(&watching, 1);
    *armed_now = 1;
    return 0;
}

void cf_stop_unwatch(void)
{
    if (atomic_exchange(&watching, 0))
        cf_shutdown_clear_stop();
}

int cf_stop_watching(void)
{
    return atomic_load(&watching);
}

int cf_stop_requested(void)
{
    return atomic_load(&stop_flag);
}

void cf_stop_reset(void)
{
    atomic_store(&stop_flag, 0);
    if (wake_pipe[0] >= 0) {
        char buf[64];
        while (read(wake_pipe[0], buf, sizeof buf) > 0) {
        }
    }
}

cf_wake cf_sleep_until(int64_t deadline_us)
{
    /* without the pipe (no descriptors left) a stop is seen within a second */
    int have_pipe = wake_fds(NULL) == 0;
    for (;;) {
        if (atomic_load(&stop_flag))
            return CF_WAKE_STOP;
        int64_t left = deadline_us - cf_now_us();
        if (left <= 0)
            return CF_WAKE_TIME;
        /* at most a second at a time, so a changed wall clock is noticed */
        int ms = left >= 1000000 ? 1000 : (int)((left + 999) / 1000);
        struct pollfd p = {.fd = have_pipe ? wake_pipe[0] : -1, .events = POLLIN};
        int rc = poll(&p, 1, ms);
        if (rc < 0 && errno == EINTR)
            return atomic_load(&stop_flag) ? CF_WAKE_STOP : CF_WAKE_INTERRUPTED;
        if (rc > 0) {
            char buf[64];
            while (read(wake_pipe[0], buf, sizeof buf) > 0) {
            }
        }
    }
}
