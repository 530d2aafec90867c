/*
 * Scores above the vtable (cf_store.h, "scores"): the checks every
 * backend relies on and the id a score is written with, so the rules and
 * the messages are the same on each backend.
 */
#include "crucible/store/cf_store.h"

#include <math.h>
#include <string.h>

#include "crucible/core/cf_buf.h"
#include "crucible/core/cf_uuid.h"

void cf_score_query_init(cf_score_query *q)
{
    memset(q, 0, sizeof *q);
    q->since = CF_NO_TIME;
    q->until = CF_NO_TIME;
    q->limit = -1;
}

static int is(cf_str s, const char *word)
{
    size_t n = strlen(word);
    return s.p && s.n == n && memcmp(s.p, word, n) == 0;
}

/* A required text field: present, UTF-8, no NUL. */
static int check_text(cf_str v, const char *field, int required, cf_err *err)
{
    if (!v.p)
        return required ? cf_fail(err, CF_EINVAL, "score.%s: missing required field", field) : 0;
    size_t ok = cf_utf8_check(v.p, v.n);
    if (ok != v.n)
        return cf_fail(err, CF_EINVAL, "score.%s: not valid UTF-8 (bad byte at offset %zu)",
                       field, ok);
    if (memchr(v.p, '\0', v.n))
        return cf_fail(err, CF_EINVAL, "score.%s: contains a NUL character", field);
    return 0;
}

static int check_value(const cf_score *s, cf_err *err)
{
    if (is(s->data_type, "NUMERIC")) {
        if (!isfinite(s->value))
            return cf_fail(err, CF_EINVAL, "score.value: NUMERIC needs a finite number");
        return 0;
    }
    if (is(s->data_type, "BOOLEAN")) {
        if (s->value != 0.0 && s->value != 1.0)
            return cf_fail(err, CF_EINVAL, "score.value: BOOLEAN is stored as 1 or 0");
        return 0;
    }
    if (is(s->data_type, "CATEGORICAL") || is(s->data_type, "TEXT"))
        return check_text(s->string_value, "string_value", 1, err);
    return cf_fail(err, CF_EINVAL,
                   "score.data_type: expected NUMERIC, BOOLEAN, CATEGORICAL or TEXT");
}

int cf_score_check(const cf_score *s, cf_err *err)
{
    if (check_text(s->id, "id", 0, err)
        || check_text(s->inference_event_id, "inference_event_id", 1, err)
        || check_text(s->name, "name", 1, err) || check_text(s->data_type, "data_type", 1, err)
        || check_text(s->string_value, "string_value", 0, err)
        || check_text(s->comment, "comment", 0, err) || check_text(s->source, "source", 1, err))
        return -1;
    if (s->name.n == 0)
        return cf_fail(err, CF_EINVAL, "score.name: must not be empty");
    if (!is(s->source, "human") && !is(s->source, "llm") && !is(s->source, "code"))
        return cf_fail(err, CF_EINVAL, "score.source: expected human, llm or code");
    return check_value(s, err);
}

int cf_store_insert_score(cf_store *s, const cf_score *score, char id[37], cf_err *err)
{
    if (cf_score_check(score, err))
        return -1;
    cf_score row = *score;
    char gen[37];
    if (row.id.p) {
        size_t n = row.id.n < 36 ? row.id.n : 36;
        memcpy(gen, row.id.p, n);
        gen[n] = '\0';
    } else {
        if (cf_uuid7(gen))
            return cf_fail(err, CF_EIO, "cannot generate an id: the system random source failed");
        row.id = (cf_str){gen, 36};
    }
    if (s->vt->insert_score(s, &row, err))
        return -1;
    if (id)
        memcpy(id, gen, 37);
    return 0;
}
