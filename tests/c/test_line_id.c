/* Derived line ids (cf_line_id.h): stable across versions (a change would
 * make every re-run of bulk ingestion store its lines again), distinct for
 * a different source, line number or text, UUIDs of version 8. */
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
 * layout described in cf_line_id.c (tag with its NUL, then big-endian
 * 8-byte lengths and numbers). */
static void test_known_answers(void)
{
    char id[37];
    id_of("/data/events.jsonl", 1, LINE, id);
    CHECK_STR(id, "453f723a-d39b-8d23-9169-9056bd406ff9");
    id_of("", 0, "", id);
    CHECK_STR(id, "601d387f-413f-838b-b9ab-600644908225");
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

int main(void)
{
    test_known_answers();
    test_distinct_and_stable();
    return cf_test_done();
}
