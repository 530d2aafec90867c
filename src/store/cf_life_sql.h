/* Internal to the store room: the lifecycle SQL every SQL backend shares
 * (cf_store_lifecycle.c builds it, <b>_lifecycle.c runs it). Values are
 * placeholders with their values kept in order, or, for a backend that
 * sends literals (ClickHouse), quoted by the backend's own function. */
#ifndef CRUCIBLE_CF_LIFE_SQL_H
#define CRUCIBLE_CF_LIFE_SQL_H

#include "crucible/core/cf_buf.h"
#include "crucible/store/cf_store.h"

/* the purge's filters, a batch's bounds and a deletion record's 8 columns */
#define CF_LIFE_MAX_PARAMS (CF_LIFE_MAX_USERS + CF_LIFE_MAX_EXCEPT + 16)

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
 * child of inference_events. event_ids NULL: the events p selects
 * (cf_life_where, its values kept in q). */
int cf_life_parent_ids(cf_life_sql *q, size_t dep, const char *event_ids, const cf_purge *p);
/* Batches walk an index range. A purge of one deployment's events,
 * signals or drift results goes along the (deployment_id, time) index in
 * (time, seq) order; any other by seq (the rowid on SQLite). A batch is
 * every selected row up to its last one, its bound. */
int cf_life_time_ordered(const cf_purge *p);
typedef struct cf_life_bound {
    int set;         /* 0: fewer rows left than a batch holds: all of them */
    int64_t at, seq; /* the last row's time (us; seq order: its seq) and seq */
    /* PostgreSQL: the batch starts after the previous batch's last row
     * (lo_at, lo_seq), so its index scan does not walk again the entries
     * of the rows already deleted (still in the index until vacuumed). A
     * row inserted during the purge with a time before that is left, as
     * one inserted just after the purge would be. */
    int has_lo;
    int64_t lo_at, lo_seq;
} cf_life_bound;
/* Appends the query for a batch's bound: the (rows)th row p selects in
 * that order (after b's lo when it has one), as (time or seq, seq);
 * time_expr reads the time column as microseconds (the column itself when
 * it holds them). */
int cf_life_bound_sql(cf_life_sql *q, const cf_purge *p, const cf_life_bound *b, int64_t rows,
                      const char *time_expr);
/* Appends the condition (no WHERE) selecting the batch up to b (NULL or
 * unset: every row p selects, after b's lo when it has one). In (time, seq) order the bound's time
 * replaces the cut-off (it is before it) so the index range ends there;
 * PostgreSQL compares (time, seq) as a row, which its index takes as a
 * range, and starts after lo when b has one. */
int cf_life_batch_where(cf_life_sql *q, const cf_purge *p, const cf_life_bound *b);
/* The next batch's rows after one of rows took took_ns: as many as
 * would take target_ns at that speed, from half to twice rows, at most
 * 16x p->batch_rows and at least 1. */
int64_t cf_life_next_size(const cf_purge *p, int64_t rows, int64_t took_ns, int64_t target_ns);
/* The index in cf_life_deps of the row for table, or -1. */
int cf_life_dep_index(const char *table);
/* Whether dependent dep points at inference events themselves (not at
 * another dependent's rows). */
int cf_life_dep_of_events(size_t dep);

#endif
