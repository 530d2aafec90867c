/* The storage scheme table drives URL parsing and opening: every registered
 * row is reached by its prefix, and an unknown scheme's error lists them. */
#include "cf_test.h"

#include "crucible/store/cf_store.h"

static void test_each_row_reached_by_its_prefix(void)
{
    size_t rows = 0;
    for (const cf_store_scheme *r = cf_store_schemes; r->prefix; r++) {
        char url[256];
        snprintf(url, sizeof url, "%shost/db", r->prefix);
        cf_store_url u;
        cf_err err;
        CHECK(cf_store_parse_url(url, &u, &err) == 0);
        CHECK(u.scheme == r);
        CHECK(r->open != NULL && r->backend != NULL);
        rows++;
    }
    CHECK(rows >= 4);
}

static void test_unknown_scheme_lists_registered(void)
{
    cf_store_url u;
    cf_err err;
    CHECK(cf_store_parse_url("mysql://u:secret@h/db", &u, &err) == -1 && err.code == CF_EINVAL);
    CHECK(strstr(err.msg, "secret") == NULL);
    for (const cf_store_scheme *r = cf_store_schemes; r->prefix; r++)
        if (r->usage)
            CHECK(strstr(err.msg, r->usage) != NULL);
    cf_store *s = NULL;
    CHECK(cf_store_open("mysql://h/db", NULL, &s, &err) == -1 && s == NULL);
    CHECK(strstr(err.msg, "sqlite:PATH") != NULL);
    CHECK(cf_store_parse_url("", &u, &err) == -1 && strstr(err.msg, "sqlite:PATH") != NULL);
}

/* Which URLs name a database that only the connection opening it sees. */
static void test_private_databases(void)
{
    static const struct {
        const char *url;
        int private_;
    } cases[] = {{"sqlite::memory:", 1},          {"sqlite:/tmp/x.db", 0},
                 {"sqlite:x.db", 0},
                 {"postgres://u@h/db", 0},        {"clickhouse://u@h:8123/db", 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cf_store_url u;
        cf_err err;
        CHECK(cf_store_parse_url(cases[i].url, &u, &err) == 0);
        CHECK(cf_store_url_private(&u) == cases[i].private_);
    }
    cf_store_url u;
    cf_err err;
    CHECK(cf_store_parse_url("sqlite:", &u, &err) == -1); /* no path: never a store */
}

static void test_open_goes_through_the_row(void)
{
    cf_store_url u;
    cf_err err;
    CHECK(cf_store_parse_url("sqlite::memory:", &u, &err) == 0);
    CHECK_STR(u.scheme->backend, "sqlite");
    cf_store *s = NULL;
    CHECK(cf_store_open("sqlite::memory:", NULL, &s, &err) == 0 && s != NULL);
    if (s)
        CHECK_STR(s->vt->name, "sqlite");
    cf_store_close(s);
    cf_store_url alias;
    CHECK(cf_store_parse_url("postgresql://h/db", &alias, &err) == 0);
    CHECK_STR(alias.scheme->backend, "postgres");
    CHECK_STR(alias.target, "postgresql://h/db");
    CHECK(cf_store_parse_url("postgres://h/db", &u, &err) == 0);
    CHECK(u.scheme != alias.scheme && u.scheme->open == alias.scheme->open);
    CHECK(cf_store_parse_url("clickhouse://h", &u, &err) == 0);
    CHECK_STR(u.scheme->backend, "clickhouse");
}

int main(void)
{
    RUN(test_each_row_reached_by_its_prefix);
    RUN(test_unknown_scheme_lists_registered);
    RUN(test_private_databases);
    RUN(test_open_goes_through_the_row);
    return cf_test_done();
}
