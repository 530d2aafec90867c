/* Derived line ids (cf_line_id.h): stable across versions (a change would
 * make every re-run of bulk ingestion store its lines again), distinct for
 * a different source, line number or text, ascending with the line number,
 * UUIDs of version 8. */
#include "cf_test.h"

#include <string.h>

#include "crucible/core/cf_uuid.h"
#include "crucible/ingest/cf_line_id.h"

static const char LINE[] = "{\"deployment_id\":\"d\",\"prompt\":\"p\",\"response\":\"r\"}";

static void id_of(const char *source, uint64_t line, const char *text, char out[37])
{
    cf_err err;
    cf_line_ids *ids = cf_line_ids_new(source, strlen(source), &err);
    CHECK(ids != NULL);
    if (!ids)
        return;
    CHECK(cf_line_id(ids, line, text, strlen(text), out, &err) == 0);
    cf_line_ids_free(ids);
}

/* Known answers, computed independently with Python's hashlib over the
 * layout described in cf_line_id.h (tag with its NUL, then big-endian
 * 8-byte lengths and numbers; the source's 32 bits, the line's 40, the
 * line digest's 50, around the version and variant fields). */
static void test_known_answers(void)
{
    char id[37];
    id_of("/data/events.jsonl", 1, LINE, id);
    CHECK_STR(id, "9463cf93-0000-8000-8005-7e562a2d1880");
    id_of("", 0, "", id);
    CHECK_STR(id, "3a4cff16-0000-8000-8000-4a2d07545e5f");
    id_of("/data/events.jsonl", 2, LINE, id);
    CHECK_STR(id, "9463cf93-0000-8000-8009-b04ef9192987");
    id_of("/data/events.jsonl", 1099511627775, LINE, id); /* the largest line number kept whole */
    CHECK_STR(id, "9463cf93-ffff-8fff-bffe-0a2b3058d057");
}

static void test_distinct_and_stable(void)
{
    char a[37], b[37];
    cf_err err;
    cf_line_ids *ids = cf_line_ids_new("src", 3, &err);
    CHECK(ids != NULL);
    if (!ids)
        return;
    /* one context gives the same id each time, lines in any order */
    CHECK(cf_line_id(ids, 7, LINE, sizeof LINE - 1, a, &err) == 0);
    CHECK(cf_line_id(ids, 8, LINE, sizeof LINE - 1, b, &err) == 0);
    CHECK(strcmp(a, b) != 0); /* the same text on another line */
    CHECK(cf_line_id(ids, 7, LINE, sizeof LINE - 1, b, &err) == 0);
    CHECK_STR(b, a);
    CHECK(cf_line_id(ids, 7, LINE, sizeof LINE - 2, b, &err) == 0);
    CHECK(strcmp(a, b) != 0); /* other bytes */
    cf_line_ids_free(ids);
    id_of("src2", 7, LINE, b);
    CHECK(strcmp(a, b) != 0); /* another source */
    /* the parts cannot run into each other: ("ab", "c") is not ("a", "bc") */
    id_of("ab", 1, "c", a);
    id_of("a", 1, "bc", b);
    CHECK(strcmp(a, b) != 0);
    CHECK(strlen(a) == 36 && cf_uuid_valid(a, 36));
    CHECK(a[14] == '8' && strchr("89ab", a[19]) != NULL);
}

/* One source's ids ascend with its line numbers, whatever the lines hold:
 * the store's id index takes them at one place. */
static void test_ascending(void)
{
    char prev[37] = "", id[37];
    cf_err err;
    cf_line_ids *ids = cf_line_ids_new("/logs/a.jsonl", 13, &err);
    CHECK(ids != NULL);
    if (!ids)
        return;
    static const uint64_t lines[] = {1, 2, 3, 255, 256, 4095, 4096, 65536, 1u << 24, 1ull << 32};
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        const char *text = i % 2 ? "zzzz" : "";
        CHECK(cf_line_id(ids, lines[i], text, strlen(text), id, &err) == 0);
        CHECK(cf_uuid_valid(id, 36));
        CHECK(strcmp(prev, id) < 0);
        memcpy(prev, id, sizeof id);
    }
    cf_line_ids_free(ids);
}

int main(void)
{
    test_known_answers();
    test_distinct_and_stable();
    test_ascending();
    return cf_test_done();
}
