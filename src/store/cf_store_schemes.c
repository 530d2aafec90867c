/* The storage scheme table: which backend opens which database URL.
 *
 * A new backend is its own files (src/store/<name>/) plus one row here;
 * cf_store_parse_url and cf_store_open read nothing else. Rows are tried
 * in order, the first whose prefix starts the URL wins; a row with a NULL
 * usage is an alias left out of the "expected ..." list in messages. */
#include "crucible/store/cf_store.h"

/* Each backend's entry points, defined in its open file (declared there
 * too, in its private header). */
int cf_store_sqlite_target(const char *url, char *out, size_t cap, cf_err *err);
int cf_store_sqlite_open(const char *path, const cf_store_opts *opts, cf_store **out, cf_err *err);
int cf_store_pg_open(const char *url, const cf_store_opts *opts, cf_store **out, cf_err *err);
int cf_store_clickhouse_open(const char *url, const cf_store_opts *opts, cf_store **out,
                             cf_err *err);

const cf_store_scheme cf_store_schemes[] = {
    {"sqlite:", "sqlite", "sqlite:PATH", cf_store_sqlite_target, cf_store_sqlite_open},
    {"postgres://", "postgres", "postgres://user:password@host:port/database", NULL,
     cf_store_pg_open},
    {"postgresql://", "postgres", NULL, NULL, cf_store_pg_open},
    {"clickhouse://", "clickhouse", "clickhouse://user:password@host:port/database", NULL,
     cf_store_clickhouse_open},
    {NULL, NULL, NULL, NULL, NULL}};
