/* UUIDv7 generation (RFC 9562, method 3: a 12-bit counter in rand_a keeps ids
 * from this process strictly increasing within one millisecond). */
#include "crucible/core/cf_uuid.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

int cf_random_bytes(void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += got;
        n -= (size_t)got;
    }
    return 0;
}

/* Random bytes are drawn from the kernel in blocks to keep the syscall off
 * the per-id path. */
static pthread_mutex_t uuid_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned char pool[4096];
static size_t pool_pos = sizeof pool;
static uint64_t last_ms;
static unsigned counter;

static int take_random(unsigned char *out, size_t n)
{
    if (pool_pos + n > sizeof pool) {
        if (cf_random_bytes(pool, sizeof pool))
            return -1;
        pool_pos = 0;
    }
    memcpy(out, pool + pool_pos, n);
    pool_pos += n;
    return 0;
}

static void format_uuid(const unsigned char b[16], char out[CF_UUID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}

int cf_uuid7_at(uint64_t ms, char out[CF_UUID_LEN + 1])
{
    unsigned char b[16];
    pthread_mutex_lock(&uuid_lock);
    if (take_random(b + 6, 10)) {
        pthread_mutex_unlock(&uuid_lock);
        return -1;
    }
    if (ms > last_ms) {
        last_ms = ms;
        counter = ((unsigned)b[6] << 8 | b[7]) & 0x7ff; /* random start, room to count */
    } else {
        /* Same millisecond (or the clock stepped back): keep increasing. */
        ms = last_ms;
        if (++counter > 0xfff) {
            last_ms = ++ms;
            counter = 0;
        }
    }
    pthread_mutex_unlock(&uuid_lock);
    for (int i = 5; i >= 0; i--) {
        b[i] = (unsigned char)(ms & 0xff);
        ms >>= 8;
    }
    b[6] = (unsigned char)(0x70 | ((counter >> 8) & 0x0f));
    b[7] = (unsigned char)(counter & 0xff);
    b[8] = (unsigned char)(0x80 | (b[8] & 0x3f));
    format_uuid(b, out);
    return 0;
}

int cf_uuid7(char out[CF_UUID_LEN + 1])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    return cf_uuid7_at(ms, out);
}

int cf_uuid_valid(const char *s, size_t n)
{
    if (n != CF_UUID_LEN)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return 0;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return 0;
        }
    }
    return 1;
}
