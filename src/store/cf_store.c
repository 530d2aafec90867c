/* Backend-independent part of the storage interface: URLs, queries, names. */
#include "crucible/store/cf_store.h"

#include <stdio.h>
#include <string.h>


void cf_query_init(cf_query *q)
{
    memset(q, 0, sizeof *q);
    q->exported = -1;
    q->limit = -1;
    q->since = CF_NO_TIME;
    q->until = CF_NO_TIME;
}

int cf_query_check_window(const cf_query *q, const char *what, cf_err *err)
{
    if (q->id.p || q->event_id.p || q->type.p || q->exported >= 0 || q->include_signals ||
        q->claim.p)
        return cf_fail(err, CF_EINVAL, "%s filters by deployment_id, since and until only", what);
    return 0;
}

int cf_query_check(cf_kind kind, const cf_query *q, cf_err *err)
{
    if (kind < 0 || kind >= CF_KIND_COUNT_)
        return cf_fail(err, CF_EINVAL, "unknown row kind");
    if (q->event_id.p && kind != CF_KIND_SIGNALS && kind != CF_KIND_CURATED)
        return cf_fail(err, CF_EINVAL, "%s cannot be filtered by event_id", cf_kind_name(kind));
    if (q->type.p && kind == CF_KIND_EVENTS)
        return cf_fail(err, CF_EINVAL, "%s cannot be filtered by type", cf_kind_name(kind));
    if (q->exported >= 0 && kind != CF_KIND_CURATED)
        return cf_fail(err, CF_EINVAL, "only curated examples have an exported flag");
    if (q->claim.p && kind != CF_KIND_CURATED)
        return cf_fail(err, CF_EINVAL, "only curated examples can be claimed for export");
    if (q->n_with_signal_types && kind != CF_KIND_EVENTS)
        return cf_fail(err, CF_EINVAL, "only events can be filtered by their signals");
    if (q->n_with_signal_types > CF_QUERY_MAX_SIGNAL_TYPES)
        return cf_fail(err, CF_EINVAL, "at most %d signal types in one query",
                       CF_QUERY_MAX_SIGNAL_TYPES);
    for (size_t i = 0; i < q->n_with_signal_types; i++)
        if (!q->with_signal_types[i].p)
            return cf_fail(err, CF_EINVAL, "signal type %zu is missing", i + 1);
    return 0;
}

static const char *const kind_names[CF_KIND_COUNT_] = {
    "events", "signals", "curated", "drift", "triggers"};

const char *cf_kind_name(cf_kind k)
{
    return (k >= 0 && k < CF_KIND_COUNT_) ? kind_names[k] : "?";
}

int cf_kind_from_name(const char *name, cf_kind *out)
{
    for (int k = 0; k < CF_KIND_COUNT_; k++)
        if (strcmp(name, kind_names[k]) == 0) {
            *out = (cf_kind)k;
            return 0;
        }
    return -1;
}

static const char *const signal_kind_names[CF_SIG_COUNT_] = {
    "thumbs_up", "thumbs_down", "regenerate", "edit", "copy", "share", "report", "other"};

const char *cf_signal_kind_name(cf_signal_kind k)
{
    return (k >= 0 && k < CF_SIG_COUNT_) ? signal_kind_names[k] : "?";
}

cf_signal_kind cf_signal_kind_of(cf_str type)
{
    for (int k = 0; k < CF_SIG_OTHER; k++)
        if (type.p && strlen(signal_kind_names[k]) == type.n
            && memcmp(signal_kind_names[k], type.p, type.n) == 0)
            return (cf_signal_kind)k;
    return CF_SIG_OTHER;
}

/* "expected A, B or C": the usage of every listed scheme row. */
static void expected_forms(char *out, size_t cap)
{
    size_t len = 0, total = 0, seen = 0;
    for (const cf_store_scheme *r = cf_store_schemes; r->prefix; r++)
        total += r->usage != NULL;
    for (const cf_store_scheme *r = cf_store_schemes; r->prefix && len < cap; r++) {
        if (!r->usage)
            continue;
        const char *sep = seen == 0 ? "" : seen + 1 == total ? " or " : ", ";
        int w = snprintf(out + len, cap - len, "%s%s", sep, r->usage);
        if (w < 0)
            break;
        len += (size_t)w;
        seen++;
    }
}

int cf_store_parse_url(const char *url, cf_store_url *out, cf_err *err)
{
    char forms[512] = "";
    memset(out, 0, sizeof *out);
    expected_forms(forms, sizeof forms);
    if (!url || !*url)
        return cf_fail(err, CF_EINVAL, "database URL is empty: expected %s", forms);
    for (const cf_store_scheme *r = cf_store_schemes; r->prefix; r++) {
        if (strncmp(url, r->prefix, strlen(r->prefix)) != 0)
            continue;
        out->scheme = r;
        if (r->target)
            return r->target(url, out->target, sizeof out->target, err);
        if (strlen(url) >= sizeof out->target)
            return cf_fail(err, CF_EINVAL, "database URL is too long (%zu bytes)", strlen(url));
        memcpy(out->target, url, strlen(url) + 1);
        return 0;
    }
    char shown[256];
    cf_store_redact_url(url, shown, sizeof shown);
    return cf_fail(err, CF_EINVAL, "unsupported database URL '%s': expected %s", shown, forms);
}

int cf_store_url_private(const cf_store_url *u)
{
    return strcmp(u->scheme->backend, "sqlite") == 0 && strcmp(u->target, ":memory:") == 0;
}

int cf_store_refuse_newer_schema(int found, int known, cf_err *err)
{
    return cf_fail(err, CF_EUNSUPPORTED,
                   "the database is at schema version %d, newer than this binary knows (%d):"
                   " it was migrated by a newer crucible-feedback; use that version (nothing"
                   " was written)",
                   found, known);
}

int cf_store_open(const char *url, const cf_store_opts *opts, cf_store **out, cf_err *err)
{
    cf_store_url u;
    *out = NULL;
    if (cf_store_parse_url(url, &u, err))
        return -1;
    return u.scheme->open(u.target, opts, out, err);
}

static const char *const STATUSES[] = {"running", "ok",      "halted",    "failed",
                                       "stopped", "skipped", "abandoned", NULL};

int cf_workflow_run_check(const cf_workflow_run *r, int need_id, cf_err *err)
{
    if (need_id && (!r->id.p || r->id.n == 0))
        return cf_fail(err, CF_EINVAL, "workflow run: id is required");
    if (!need_id && (!r->name.p || r->name.n == 0))
        return cf_fail(err, CF_EINVAL, "workflow run: name is required");
    if (!r->status.p)
        return cf_fail(err, CF_EINVAL, "workflow run: status is required");
    for (int i = 0; STATUSES[i]; i++) {
        if (strlen(STATUSES[i]) == r->status.n && memcmp(STATUSES[i], r->status.p, r->status.n) == 0)
            return 0;
    }
    return cf_fail(err, CF_EINVAL,
                   "workflow run: status '%.*s' is not one of running, ok, halted, failed, "
                   "stopped, skipped, abandoned",
                   (int)(r->status.n > 64 ? 64 : r->status.n), r->status.p);
}
