/* Like jobs at once on threads (see cf_parallel.h). */
#include "crucible/core/cf_parallel.h"

#include <pthread.h>
#include <unistd.h>

unsigned cf_parallel_threads(unsigned max)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (max > CF_PARALLEL_MAX)
        max = CF_PARALLEL_MAX;
    if (cpus < 1 || max < 1)
        return 1;
    return (unsigned long)cpus < max ? (unsigned)cpus : max;
}

void cf_parallel(void *(*fn)(void *), void *jobs, size_t size, unsigned n)
{
    pthread_t tid[CF_PARALLEL_MAX];
    int started[CF_PARALLEL_MAX] = {0};
    char *at = jobs;
    if (n > CF_PARALLEL_MAX)
        n = CF_PARALLEL_MAX;
    for (unsigned i = 1; i < n; i++)
        started[i] = pthread_create(&tid[i], NULL, fn, at + i * size) == 0;
    if (n > 0)
        fn(at);
    for (unsigned i = 1; i < n; i++) {
        if (started[i])
            pthread_join(tid[i], NULL);
        else
            fn(at + i * size);
    }
}
