/* cf_lalloc: the Lua state's pooled allocator. Run under AddressSanitizer
 * too, where free blocks are poisoned: a read of a freed block, or a block
 * handed out twice, is reported there. */
#include "cf_test.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdint.h>
#include <stdlib.h>

#include "crucible/lua/cf_lalloc.h"
#include "crucible/lua/cf_runtime.h"

/* Under AddressSanitizer an impossible malloc gives NULL, as the C
 * library's does, instead of ending the test (test_failure_leaves_blocks);
 * ASAN_OPTIONS from the environment still applies on top. */
#if defined(__SANITIZE_ADDRESS__)
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1";
}
#endif

static void fill(unsigned char *p, size_t n, unsigned char seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(seed + i * 7);
}

static int intact(const unsigned char *p, size_t n, unsigned char seed)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(seed + i * 7))
            return 0;
    return 1;
}

/* Blocks of every size around the pooled bound keep their bytes through
 * resizes in both directions, across classes and across the bound. */
static void test_resize_keeps_contents(void)
{
    static const size_t sizes[] = {1, 15, 16, 17, 100, 512, 537, 1023, 1024, 1025, 4096, 70000};
    const size_t n = sizeof sizes / sizeof sizes[0];
    struct cf_lalloc *a = cf_lalloc_new();
    CHECK(a != NULL);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) {
            size_t from = sizes[i], to = sizes[j];
            unsigned char *p = cf_lalloc_f(a, NULL, LUA_TSTRING, from);
            CHECK(p != NULL);
            fill(p, from, (unsigned char)i);
            unsigned char *q = cf_lalloc_f(a, p, from, to);
            CHECK(q != NULL);
            CHECK(intact(q, from < to ? from : to, (unsigned char)i));
            fill(q, to, (unsigned char)j);
            CHECK(cf_lalloc_f(a, q, to, 0) == NULL);
        }
    }
    cf_lalloc_drop(a); /* the last hold: frees the slabs (a leak otherwise) */
}

/* A freed block is reused for the next block of its class; live blocks
 * never overlap. */
static void test_reuse_and_no_overlap(void)
{
    struct cf_lalloc *a = cf_lalloc_new();
    enum { N = 5000 };
    static unsigned char *blocks[N];
    for (int i = 0; i < N; i++) {
        size_t size = (size_t)(i % 64 + 1) * 16;
        blocks[i] = cf_lalloc_f(a, NULL, 0, size);
        CHECK(blocks[i] != NULL);
        fill(blocks[i], size, (unsigned char)i);
    }
    int ok = 1;
    for (int i = 0; i < N; i++)
        ok &= intact(blocks[i], (size_t)(i % 64 + 1) * 16, (unsigned char)i);
    CHECK(ok);
    size_t slabs = cf_lalloc_slabs(a);
    /* 5000 blocks of 64 sizes, 78 or 79 of each, a slab per size or more:
     * 76 slabs of 64 KB (40 if sizes shared slabs) */
    CHECK(slabs == 76);
    void *freed = blocks[10];
    cf_lalloc_f(a, freed, 11 * 16, 0);
    CHECK(cf_lalloc_f(a, NULL, 0, 11 * 16 - 5) == freed); /* same class */
    for (int i = 0; i < N; i++)
        cf_lalloc_f(a, blocks[i], (size_t)(i % 64 + 1) * 16, 0);
    /* every block back: the empty slabs went back to the C library but
     * sixteen, kept as spares */
    CHECK(cf_lalloc_slabs(a) == 16);
    for (int i = 0; i < N; i++)
        blocks[i] = cf_lalloc_f(a, NULL, 0, (size_t)(i % 64 + 1) * 16);
    CHECK(cf_lalloc_slabs(a) == slabs);
    ok = 1;
    for (int i = 0; i < N; i++) {
        fill(blocks[i], (size_t)(i % 64 + 1) * 16, (unsigned char)(i + 1));
        ok &= slabs == cf_lalloc_slabs(a);
    }
    for (int i = 0; i < N; i++)
        ok &= intact(blocks[i], (size_t)(i % 64 + 1) * 16, (unsigned char)(i + 1));
    CHECK(ok);
    for (int i = 0; i < N; i++)
        cf_lalloc_f(a, blocks[i], (size_t)(i % 64 + 1) * 16, 0);
    cf_lalloc_drop(a);
}

/* A burst of garbage is given back: of a hundred thousand blocks of one
 * size, the first thousand (all in the first slab) stay; freeing the rest
 * leaves that slab and sixteen spares. The blocks still live keep their
 * bytes; freeing them leaves the spares. */
static void test_burst_given_back(void)
{
    struct cf_lalloc *a = cf_lalloc_new();
    enum { N = 100000, KEEP = 1000 };
    static unsigned char *blocks[N];
    for (int i = 0; i < N; i++) {
        blocks[i] = cf_lalloc_f(a, NULL, 0, 48);
        fill(blocks[i], 48, (unsigned char)i);
    }
    /* 1364 blocks of 48 bytes to a slab (64 KB less its header) */
    CHECK(cf_lalloc_slabs(a) == (N + 1363) / 1364);
    for (int i = KEEP; i < N; i++)
        cf_lalloc_f(a, blocks[i], 48, 0);
    CHECK(cf_lalloc_slabs(a) == 17);
    int ok = 1;
    for (int i = 0; i < KEEP; i++)
        ok &= intact(blocks[i], 48, (unsigned char)i);
    CHECK(ok);
    for (int i = 0; i < KEEP; i++)
        cf_lalloc_f(a, blocks[i], 48, 0);
    CHECK(cf_lalloc_slabs(a) == 16);
    cf_lalloc_drop(a);
}

/* A request that cannot be met gives NULL and changes nothing: a new
 * block is not counted (the pool still frees itself), and a block that
 * could not be resized keeps its place, size and bytes. */
static void test_failure_leaves_blocks(void)
{
    struct cf_lalloc *a = cf_lalloc_new();
    size_t huge = (size_t)-1 / 2;
    CHECK(cf_lalloc_f(a, NULL, LUA_TTABLE, huge) == NULL);
    unsigned char *small = cf_lalloc_f(a, NULL, 0, 300);
    unsigned char *big = cf_lalloc_f(a, NULL, 0, 4000);
    fill(small, 300, 1);
    fill(big, 4000, 2);
    CHECK(cf_lalloc_f(a, small, 300, huge) == NULL); /* pooled, past the bound */
    CHECK(cf_lalloc_f(a, big, 4000, huge) == NULL);  /* realloc'd */
    CHECK(intact(small, 300, 1));
    CHECK(intact(big, 4000, 2));
    cf_lalloc_drop(a);
    cf_lalloc_f(a, big, 4000, 0);
    cf_lalloc_f(a, small, 300, 0); /* the last block: frees the pool */
}

/* The pool outlives its creator's hold while blocks are live, and frees
 * itself with the last one (LeakSanitizer checks that it did). */
static void test_last_block_frees_pool(void)
{
    struct cf_lalloc *a = cf_lalloc_new();
    void *p = cf_lalloc_f(a, NULL, 0, 64);
    void *big = cf_lalloc_f(a, NULL, 0, 5000);
    cf_lalloc_drop(a);
    cf_lalloc_f(a, big, 5000, 0);
    cf_lalloc_f(a, p, 64, 0); /* frees the pool */
    CHECK(p != NULL && big != NULL);
}

/* A state on the pool: strings and tables made and dropped by the
 * hundred thousand, the collector run, the state closed by lua_close. */
static void test_lua_state(void)
{
    lua_State *L = cf_runtime_new();
    CHECK(L != NULL);
    const char *code =
        "local n, keep = 0, {}\n"
        "for i = 1, 200000 do\n"
        "  local t = { id = tostring(i), text = string.rep(string.char(65 + i % 26), i % 900), i = i }\n"
        "  n = n + #t.text\n"
        "  if i % 1000 == 0 then keep[#keep + 1] = t end\n"
        "end\n"
        "collectgarbage()\n"
        "for _, t in ipairs(keep) do\n"
        "  assert(t.text == string.rep(string.char(65 + t.i % 26), t.i % 900), t.id)\n"
        "end\n"
        "return n";
    CHECK(luaL_dostring(L, code) == LUA_OK);
    CHECK(lua_tointeger(L, -1) == 89830200);
    lua_close(L);
}

/* Warnings are off until "@on", as with luaL_newstate. */
static void test_warnings_and_panic_installed(void)
{
    lua_State *L = cf_runtime_new();
    CHECK(luaL_dostring(L, "warn('@on'); warn('@off'); return 1") == LUA_OK);
    CHECK(lua_atpanic(L, NULL) != NULL);
    lua_close(L);
}

int main(void)
{
    RUN(test_resize_keeps_contents);
    RUN(test_reuse_and_no_overlap);
    RUN(test_burst_given_back);
    RUN(test_failure_leaves_blocks);
    RUN(test_last_block_frees_pool);
    RUN(test_lua_state);
    RUN(test_warnings_and_panic_installed);
    return cf_test_done();
}
