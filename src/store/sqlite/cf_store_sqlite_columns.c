/*
 * SQLite backend: column scans over inference events (cf_store_open_columns).
 * Only the requested columns are read; a metadata key is looked up with
 * json_each and a bound key, so any key text (quotes, dots, SQL) is plain
 * data. The SQL text is assembled from constant fragments only.
 */
#include "cf_store_sqlite_int.h"

#include <stdlib.h>
#include <string.h>

#define MAX_COLUMNS 64

static const char *const column_sql[] = {
    [CF_COL_PROMPT] = "prompt",
    [CF_COL_RESPONSE] = "response",
    [CF_COL_MODEL_VERSION] = "model_version_id",
    [CF_COL_LATENCY] = "latency_ms",
    [CF_COL_TOKENS] = "token_count",
    [CF_COL_QUALITY] = "quality_score",
    [CF_COL_INSERTED_AT] = "inserted_at",
    [CF_COL_METADATA_KEY] =
        "(SELECT CASE j.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false'"
        " WHEN 'null' THEN NULL WHEN 'object' THEN json(j.value) WHEN 'array' THEN json(j.value)"
        " ELSE j.value END FROM json_each(CASE WHEN json_valid(metadata) THEN metadata"
        " ELSE '{}' END) AS j WHERE j.key = ?)",
};

typedef struct sq_colscan {
    cf_colscan base;
    sq_store *s;
    sqlite3_stmt *st;
} sq_colscan;

static int cs_next(cf_colscan *base, cf_colval *vals, cf_err *err)
{
    sq_colscan *c = (sq_colscan *)base;
    int rc = sq_step_row(c->s, &c->st, "reading event columns", err);
    if (rc <= 0)
        return rc;
    for (size_t i = 0; i < base->ncols; i++) {
        cf_colval *v = &vals[i];
        memset(v, 0, sizeof *v);
        switch (sqlite3_column_type(c->st, (int)i)) {
        case SQLITE_INTEGER:
            v->type = CF_COLVAL_INT;
            v->i = sqlite3_column_int64(c->st, (int)i);
            v->d = (double)v->i;
            break;
        case SQLITE_FLOAT:
            v->type = CF_COLVAL_REAL;
            v->d = sqlite3_column_double(c->st, (int)i);
            break;
        case SQLITE_NULL:
            v->type = CF_COLVAL_NULL;
            break;
        default:
            v->type = CF_COLVAL_TEXT;
            v->s = sq_col_str(c->st, (int)i);
            break;
        }
    }
    return 1;
}

static void cs_close(cf_colscan *base)
{
    sq_colscan *c = (sq_colscan *)base;
    sqlite3_finalize(c->st);
    free(c);
}

static const cf_colscan_vt cs_vt = {cs_next, cs_close};

static int append(char *buf, size_t cap, size_t *len, const char *frag)
{
    size_t n = strlen(frag);
    if (*len + n + 1 > cap)
        return -1;
    memcpy(buf + *len, frag, n + 1);
    *len += n;
    return 0;
}

int sq_open_columns(cf_store *base, const cf_query *q, const cf_column *cols, size_t ncols,
                    cf_colscan **out, cf_err *err)
{
    sq_store *s = (sq_store *)base;
    *out = NULL;
    if (ncols == 0 || ncols > MAX_COLUMNS)
        return cf_fail(err, CF_EINVAL, "a column scan needs 1 to %d columns, got %zu",
                       MAX_COLUMNS, ncols);
    char sql[16384];
    size_t len = 0;
    int bad = append(sql, sizeof sql, &len, "SELECT ");
    for (size_t i = 0; i < ncols; i++) {
        if ((unsigned)cols[i].kind > CF_COL_METADATA_KEY)
            return cf_fail(err, CF_EINVAL, "column %zu: unknown column kind", i + 1);
        if (cols[i].kind == CF_COL_METADATA_KEY && !cols[i].key.p)
            return cf_fail(err, CF_EINVAL, "column %zu: a metadata column needs a key", i + 1);
        bad |= append(sql, sizeof sql, &len, i ? ", " : "");
        bad |= append(sql, sizeof sql, &len, column_sql[cols[i].kind]);
    }
    bad |= append(sql, sizeof sql, &len, " FROM inference_events WHERE 1");
    if (q->deployment_id.p)
        bad |= append(sql, sizeof sql, &len, " AND deployment_id = ?");
    if (q->since != CF_NO_TIME)
        bad |= append(sql, sizeof sql, &len, " AND inserted_at >= ?");
    if (q->until != CF_NO_TIME)
        bad |= append(sql, sizeof sql, &len, " AND inserted_at < ?");
    bad |= append(sql, sizeof sql, &len,
                  q->descending ? " ORDER BY inserted_at DESC, seq DESC LIMIT ? OFFSET ?"
                                : " ORDER BY inserted_at, seq LIMIT ? OFFSET ?");
    if (bad)
        return cf_fail(err, CF_EINVAL, "column scan query too long");
    sq_colscan *c = calloc(1, sizeof *c);
    if (!c)
        return cf_fail(err, CF_ENOMEM, "out of memory opening a column scan");
    c->base.vt = &cs_vt;
    c->base.ncols = ncols;
    c->s = s;
    if (sqlite3_prepare_v2(s->db, sql, -1, &c->st, NULL) != SQLITE_OK) {
        free(c);
        return sq_fail(s, err, "preparing a column scan");
    }
    int k = 1;
    for (size_t i = 0; i < ncols; i++)
        if (cols[i].kind == CF_COL_METADATA_KEY)
            sq_bind_str(c->st, k++, cols[i].key);
    if (q->deployment_id.p)
        sq_bind_str(c->st, k++, q->deployment_id);
    if (q->since != CF_NO_TIME)
        sqlite3_bind_int64(c->st, k++, q->since);
    if (q->until != CF_NO_TIME)
        sqlite3_bind_int64(c->st, k++, q->until);
    sqlite3_bind_int64(c->st, k++, q->limit < 0 ? -1 : q->limit);
    sqlite3_bind_int64(c->st, k, q->offset > 0 ? q->offset : 0);
    *out = &c->base;
    return 0;
}
