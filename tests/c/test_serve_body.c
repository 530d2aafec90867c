/* Request bodies (cf_serve_body.c): the limit on identity and gzip bodies,
 * and the room an announced Content-Length gets up front. */
#include "cf_test.h"

#include <stdlib.h>
#include <zlib.h>

#include "crucible/serve/cf_serve_body.h"

static void test_expected_length_is_reserved_once(void)
{
    cf_body b;
    CHECK(cf_body_init(&b, 0, 1 << 20) == CF_BODY_OK);
    CHECK(cf_body_expect(&b, 300000) == CF_BODY_OK);
    CHECK(b.out.cap >= 300001);
    char *room = b.out.p;
    static char chunk[30000];
    memset(chunk, 'x', sizeof chunk);
    for (int i = 0; i < 10; i++)
        CHECK(cf_body_feed(&b, chunk, sizeof chunk) == CF_BODY_OK);
    CHECK(cf_body_finish(&b) == CF_BODY_OK);
    CHECK(b.out.p == room); /* never moved: no copy while it arrived */
    CHECK(b.out.n == 300000 && b.out.p[300000] == '\0');
    cf_body_free(&b);
}

static void test_expect_is_bounded(void)
{
    cf_body b;
    /* over the limit: nothing reserved (the request is refused anyway) */
    CHECK(cf_body_init(&b, 0, 1000) == CF_BODY_OK);
    size_t had = b.out.cap; /* the thread's spare memory, if any */
    CHECK(cf_body_expect(&b, (size_t)had + 5000) == CF_BODY_OK);
    CHECK(b.out.cap == had);
    cf_body_free(&b);
    /* a huge announced length gets at most CF_BODY_EXPECT_MAX up front */
    CHECK(cf_body_init(&b, 0, (size_t)1 << 40) == CF_BODY_OK);
    CHECK(cf_body_expect(&b, (size_t)1 << 39) == CF_BODY_OK);
    CHECK(b.out.cap <= 2 * CF_BODY_EXPECT_MAX); /* cf_buf grows by doubling */
    cf_body_free(&b);
    /* a body longer than announced still arrives whole, within the limit */
    CHECK(cf_body_init(&b, 0, 100) == CF_BODY_OK);
    CHECK(cf_body_expect(&b, 10) == CF_BODY_OK);
    CHECK(cf_body_feed(&b, "0123456789abcdefghij", 20) == CF_BODY_OK);
    CHECK(cf_body_feed(&b, "0123456789", 10) == CF_BODY_OK);
    CHECK(cf_body_finish(&b) == CF_BODY_OK);
    CHECK_STR(b.out.p, "0123456789abcdefghij0123456789");
    CHECK(cf_body_feed(&b, (const char *)b.out.p, 71) == CF_BODY_TOO_LARGE);
    cf_body_free(&b);
}

static void test_gzip_ignores_expect_and_keeps_its_limit(void)
{
    static unsigned char plain[4096], packed[8192];
    memset(plain, 'a', sizeof plain);
    z_stream z;
    memset(&z, 0, sizeof z);
    CHECK(deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    z.next_in = plain;
    z.avail_in = sizeof plain;
    z.next_out = packed;
    z.avail_out = sizeof packed;
    CHECK(deflate(&z, Z_FINISH) == Z_STREAM_END);
    size_t n = sizeof packed - z.avail_out;
    deflateEnd(&z);

    cf_body b;
    CHECK(cf_body_init(&b, 1, 1000) == CF_BODY_OK);
    size_t had = b.out.cap;
    CHECK(cf_body_expect(&b, had + 100000) == CF_BODY_OK);
    CHECK(b.out.cap == had); /* the compressed length says nothing of the output */
    CHECK(cf_body_feed(&b, (const char *)packed, n) == CF_BODY_TOO_LARGE);
    cf_body_free(&b);

    CHECK(cf_body_init(&b, 1, sizeof plain) == CF_BODY_OK);
    CHECK(cf_body_expect(&b, n) == CF_BODY_OK);
    CHECK(cf_body_feed(&b, (const char *)packed, n) == CF_BODY_OK);
    CHECK(cf_body_finish(&b) == CF_BODY_OK);
    CHECK(b.out.n == sizeof plain && memcmp(b.out.p, plain, sizeof plain) == 0);
    cf_body_free(&b);
}

/* A thread's next body reuses the memory of its last one, empty. */
static void test_next_body_reuses_memory(void)
{
    cf_body b;
    CHECK(cf_body_init(&b, 0, 1 << 20) == CF_BODY_OK);
    CHECK(cf_body_expect(&b, 200000) == CF_BODY_OK);
    CHECK(cf_body_feed(&b, "first", 5) == CF_BODY_OK);
    char *mem = b.out.p;
    size_t cap = b.out.cap;
    cf_body_free(&b);
    CHECK(b.out.p == NULL);
    CHECK(cf_body_init(&b, 0, 1 << 20) == CF_BODY_OK);
    CHECK(b.out.p == mem && b.out.cap == cap && b.out.n == 0);
    CHECK(cf_body_feed(&b, "second", 6) == CF_BODY_OK);
    CHECK(cf_body_finish(&b) == CF_BODY_OK);
    CHECK_STR(b.out.p, "second");
    /* a body taken while the spare is out gets its own memory */
    cf_body other;
    CHECK(cf_body_init(&other, 0, 1 << 20) == CF_BODY_OK);
    CHECK(other.out.p == NULL);
    cf_body_free(&other);
    cf_body_free(&b);
}

int main(void)
{
    RUN(test_expected_length_is_reserved_once);
    RUN(test_expect_is_bounded);
    RUN(test_gzip_ignores_expect_and_keeps_its_limit);
    RUN(test_next_body_reuses_memory);
    return cf_test_done();
}
