/* Internal to the store room: the lifecycle SQL every SQL backend shares
 * (cf_store_lifecycle.c builds it, <b>_lifecycle.c runs it). Values are
 * placeholders with their values kept in order, or, for a backend that
 * sends literals (ClickHouse), quoted by the backend's own function. */
#ifndef CRUCIBLE_CF_LIFE_SQL_H
#define CRUCIBLE_CF_LIFE_SQL_H

#include "crucible/core/cf_buf.h"
#include "crucible/store/cf_store.h"

#define CF_LIFE_MAX_PARAMS (CF_LIFE_MAX_USERS + CF_LIFE_MAX_EXCEPT + 8)

typedef struct cf_life_sql {
    cf_buf b;
    char style;      /* '?': ?N (SQLite); '$': $N (PostgreSQL); 'q': literals */
    /* PostgreSQL: how a time parameter is written (one %s: the placeholder);
     * NULL: the placeholder itself (times are integers). */
    const char *time_fmt;
    int (*quote)(cf_buf *, cf_str);  /* style 'q' */
    int np;
    cf_colval p[CF_LIFE_MAX_PARAMS]; /* the values of ?1.. / $1.., INT or TEXT */
    unsigned char is_time[CF_LIFE_MAX_PARAMS]; /* INT values that are times (us) */
} cf_life_sql;

/* An empty statement of the style; cf_buf_free(&q->b) when done. */
void cf_life_sql_init(cf_life_sql *q, char style);
void cf_life_sql_reset(cf_life_sql *q);
/* A value: its placeholder (or literal) appended, its value kept. */
int cf_life_sql_str(cf_life_sql *q, cf_str v);
int cf_life_sql_int(cf_life_sql *q, int64_t v);
int cf_life_sql_time(cf_life_sql *q, int64_t us);

/* The time column of a table lifecycle purges ("inserted_at", runs:
 * "started_at"). */
const char *cf_life_time_column(const char *table);
/* Appends the condition (no WHERE) selecting the rows p purges from
 * p->table; columns unqualified. Events kept for their exported curated
 * examples are left out through subqueries on curated_examples and
 * curated_export_marks (exported is a truth value on each backend). */
int cf_life_where(cf_life_sql *q, const cf_purge *p);
/* Appends a query for the ids of dependent dep's parent rows among the
 * events whose ids event_ids (a subquery) yields: event_ids itself for a
 * child of inference_events. */
int cf_life_parent_ids(cf_life_sql *q, size_t dep, const char *event_ids);
/* The index in cf_life_deps of the row for table, or -1. */
int cf_life_dep_index(const char *table);

#endif
