/* Passwords out of messages: cf_store_redact_url over every form libpq and
 * libcurl accept, cf_store_url_secrets, and cf_store_scrub over passwords
 * of every short length, substrings of the message, and runs of '*'. */
#include "cf_test.h"

#include <stdlib.h>

#include "crucible/store/cf_store.h"

static void check_redact(const char *url, const char *want)
{
    char out[256];
    cf_store_redact_url(url, out, sizeof out);
    CHECK_STR(out, want);
}

static void test_redact_forms(void)
{
    check_redact("postgres://u:SECRET@h:5432/db", "postgres://u:***@h:5432/db");
    check_redact("postgres://me:p@ss:w@rd@host/db?x=1", "postgres://me:***@host/db?x=1");
    check_redact("postgres://u@h/db", "postgres://u@h/db");
    check_redact("postgres://h/db", "postgres://h/db");
    check_redact("postgres://u:@h/db", "postgres://u:@h/db");
    check_redact("postgresql://u:S@h1:5432,h2:5433/db", "postgresql://u:***@h1:5432,h2:5433/db");
    check_redact("postgres://u@h/db?password=SECRET", "postgres://u@h/db?password=***");
    check_redact("postgres://u@h/db?sslmode=disable&password=SE%26CRET&application_name=x",
                 "postgres://u@h/db?sslmode=disable&password=***&application_name=x");
    check_redact("postgres://u@h/db?pass%77ord=SECRET", "postgres://u@h/db?pass%77ord=***");
    check_redact("postgres://u@h/db?sslpassword=SECRET#f", "postgres://u@h/db?sslpassword=***#f");
    check_redact("postgres://u@h/db?PASSWORD=SECRET", "postgres://u@h/db?PASSWORD=***");
    check_redact("postgres://u@h/db?passwordx=1&xpassword=2", "postgres://u@h/db?passwordx=1&xpassword=2");
    check_redact("host=h password=SECRET dbname=d", "host=h password=*** dbname=d");
    check_redact("host=h password = 'SE CR\\'ET' dbname=d", "host=h password = *** dbname=d");
    check_redact("password=SECRET", "password=***");
    check_redact("https://user:SECRET@hooks.example/x?a=1", "https://user:***@hooks.example/x?a=1");
    check_redact("https://hooks.example/x@y", "https://hooks.example/x@y");
    check_redact("request to http://u:SECRET@127.0.0.1:1/x failed: refused",
                 "request to http://u:***@127.0.0.1:1/x failed: refused");
    check_redact("sqlite:./crucible.db", "sqlite:./crucible.db");
    check_redact("the URL's host, port, user, password and database",
                 "the URL's host, port, user, password and database");
    /* bounded: truncated, never past cap */
    char small[12];
    memset(small, 'x', sizeof small);
    cf_store_redact_url("postgres://u:SECRET@h/db", small, 8);
    CHECK_STR(small, "postgre");
    CHECK(small[8] == 'x');
    cf_store_redact_url("postgres://u:SECRET@h/db", small, 0);
    CHECK(small[0] == 'p');
}

static void test_url_secrets(void)
{
    char *s[8];
    size_t n = 0;
    CHECK(cf_store_url_secrets("postgres://u:p%40ss@h/db?password=two&sslpassword=x%20y", s, 8, &n)
          == 0);
    CHECK(n == 5);
    if (n == 5) {
        CHECK_STR(s[0], "p%40ss");
        CHECK_STR(s[1], "p@ss");
        CHECK_STR(s[2], "two");
        CHECK_STR(s[3], "x%20y");
        CHECK_STR(s[4], "x y");
    }
    for (size_t i = 0; i < n; i++)
        free(s[i]);
    CHECK(cf_store_url_secrets("postgres://u:@h/db", s, 8, &n) == 0 && n == 0);
    CHECK(cf_store_url_secrets("postgres://u:a@h/db?password=b", s, 1, &n) == 0 && n == 1);
    for (size_t i = 0; i < n; i++)
        free(s[i]);
}

#define MSG "cannot connect to PostgreSQL at 127.0.0.1:1 (postgres://u:***@127.0.0.1:1/db): " \
            "connection to server at \"127.0.0.1\", port 1 failed: Connection refused  Is the " \
            "server running on that host and accepting TCP/IP connections?"

static size_t scrub(char *buf, size_t cap, const char *text, const char *secret)
{
    snprintf(buf, cap, "%s", text);
    return cf_store_scrub(buf, cap, secret);
}

/* Passwords of 0 to 5 bytes, of '*' runs and substrings of the message:
 * the message keeps its words, the URL's *** stays ***. */
static void test_scrub_leaves_words(void)
{
    const char *secrets[] = {"", "a", "ab", "abc", "abcd", "abcde", "*", "**", "***",
                             "st", "Po", "ostg", "eSQL", "Connection", "127", NULL};
    char buf[512];
    for (int i = 0; secrets[i]; i++) {
        size_t hits = scrub(buf, sizeof buf, MSG, secrets[i]);
        int whole_word = strcmp(secrets[i], "Connection") == 0;
        int ip = strcmp(secrets[i], "127") == 0;
        int stars = strcmp(secrets[i], "***") == 0;
        if (!whole_word && !ip && !stars) {
            CHECK_STR(buf, MSG);
            CHECK(hits == 0);
        }
        CHECK(strstr(buf, "PostgreSQL") != NULL);
        CHECK(strstr(buf, "postgres://u:***@127") != NULL || ip);
    }
    CHECK(scrub(buf, sizeof buf, MSG, "Connection") == 1);
    CHECK(strstr(buf, "failed: *** refused") != NULL);
    /* the password "127" is a token in 127.0.0.1: scrubbed there too */
    CHECK(scrub(buf, sizeof buf, MSG, "127") == 3);
    CHECK(strstr(buf, "at ***.0.0.1:1 (") != NULL);
    CHECK(scrub(buf, sizeof buf, MSG, "***") == 1);
    CHECK_STR(buf, MSG);
}

static void test_scrub_replaces_tokens(void)
{
    char buf[128];
    CHECK(scrub(buf, sizeof buf, "user a said a", "a") == 2);
    CHECK_STR(buf, "user *** said ***");
    CHECK(scrub(buf, sizeof buf, "\"x\" and (x) x", "x") == 3);
    CHECK_STR(buf, "\"***\" and (***) ***");
    CHECK(scrub(buf, sizeof buf, "value \"pa\" for port", "pa") == 1);
    CHECK_STR(buf, "value \"***\" for port");
    CHECK(scrub(buf, sizeof buf, "*", "*") == 1);
    CHECK_STR(buf, "***");
    CHECK(scrub(buf, sizeof buf, "* ** *", "*") == 2);
    CHECK_STR(buf, "*** ** ***");
    CHECK(scrub(buf, sizeof buf, "p@ss: p@ss.", "p@ss") == 2);
    CHECK_STR(buf, "***: ***.");
    CHECK(scrub(buf, sizeof buf, "", "x") == 0 && buf[0] == '\0');
    CHECK(cf_store_scrub(buf, sizeof buf, NULL) == 0);
}

/* A one-byte password everywhere grows the message threefold: the output
 * stops at the buffer, terminated, and never holds the password. */
static void test_scrub_bounded(void)
{
    char buf[64];
    char text[64];
    for (size_t i = 0; i + 1 < sizeof text; i++)
        text[i] = i % 2 ? ' ' : 'q';
    text[sizeof text - 1] = '\0';
    for (size_t cap = 1; cap <= sizeof buf; cap++) {
        char big[80];
        memset(big, '#', sizeof big);
        snprintf(big, cap, "%s", text);
        cf_store_scrub(big, cap, "q");
        CHECK(strlen(big) < cap);
        CHECK(big[cap] == '#' || cap == sizeof big);
        CHECK(strchr(big, 'q') == NULL);
    }
    snprintf(buf, sizeof buf, "%s", text);
    CHECK(cf_store_scrub(buf, sizeof buf, "q") > 0 && strlen(buf) == sizeof buf - 1);
}

int main(void)
{
    RUN(test_redact_forms);
    RUN(test_url_secrets);
    RUN(test_scrub_leaves_words);
    RUN(test_scrub_replaces_tokens);
    RUN(test_scrub_bounded);
    return cf_test_done();
}
