/* The error body of the OTLP routes (cf_otlp_route.h): google.rpc.Status,
 * as protobuf for a protobuf request, else as JSON. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cf_otlp_submit.h"
#include "crucible/otlp/cf_otlp_route.h"
#include "google/rpc/status.pb-c.h"

/* The google.rpc.Code of an HTTP status (the reverse of gRPC's
 * HTTP-to-code table; 413 is RESOURCE_EXHAUSTED, as gRPC answers a message
 * over its size limit). */
int cf_otlp_rpc_code(int status)
{
    switch (status) {
    case 400:
    case 415:
        return 3; /* INVALID_ARGUMENT */
    case 401:
        return 16; /* UNAUTHENTICATED */
    case 403:
        return 7; /* PERMISSION_DENIED */
    case 404:
        return 5; /* NOT_FOUND */
    case 405:
        return 12; /* UNIMPLEMENTED */
    case 408:
        return 4; /* DEADLINE_EXCEEDED */
    case 413:
    case 429:
        return 8; /* RESOURCE_EXHAUSTED */
    case 500:
        return 13; /* INTERNAL */
    case 503:
        return 14; /* UNAVAILABLE */
    default:
        return 2; /* UNKNOWN */
    }
}

void cf_otlp_pack(cf_serve_resp *r, const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    if (cf_buf_reserve(&r->body, n + 1) == 0) {
        protobuf_c_message_pack(m, (uint8_t *)r->body.p);
        r->body.n = n;
    }
    r->content_type = "application/x-protobuf";
}

static void status_pb(cf_serve_resp *r, int code, char *msg)
{
    Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
    st.code = code;
    st.message = msg;
    cf_otlp_pack(r, &st.base);
}

void cf_otlp_error_msg(cf_serve_resp *r, const char *media, int status, const char *msg)
{
    r->status = status;
    r->body.n = 0;
    int code = cf_otlp_rpc_code(status);
    if (media && strcmp(media, "application/x-protobuf") == 0) {
        /* a protobuf string is UTF-8: cut at a bad byte (or a cut character) */
        char text[1024];
        snprintf(text, sizeof text, "%s", msg);
        text[cf_utf8_check(text, strlen(text))] = '\0';
        status_pb(r, code, text);
        return;
    }
    char head[48];
    snprintf(head, sizeof head, "{\"code\":%d,\"message\":", code);
    cf_buf_str(&r->body, head);
    cf_buf_json_string_lossy(&r->body, msg, strlen(msg));
    cf_buf_str(&r->body, "}\n");
    r->content_type = NULL;
}

void cf_otlp_error(cf_serve_resp *r, const char *media, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        msg[0] = '\0';
    cf_otlp_error_msg(r, media, status, msg);
}
