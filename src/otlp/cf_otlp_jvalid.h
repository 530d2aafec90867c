/* JSON acceptance as jansson's json_loads(s, 0, NULL) decides it, without
 * building the document (cf_otlp_jvalid.c): the streaming message reader
 * (cf_otlp_jmsgs.c) reads only the texts this accepts, so a text jansson
 * refuses is never taken for messages. */
#ifndef CF_OTLP_JVALID_H
#define CF_OTLP_JVALID_H

#include <stddef.h>

/* 1 when text (NUL-terminated) is a document jansson loads, else 0. */
int cf_otlp_jvalid(const char *text);

/* The tape of a document the check accepted: its values and keys nested
 * at most CF_OTLP_JTAPE_DEPTH containers deep, in the order they are
 * written, so that a reader goes past one without walking it again (an
 * object's tokens are key, value, key, value...). The top value is
 * token 0. */
#define CF_OTLP_JTAPE_DEPTH 5
typedef struct cf_otlp_jtok {
    const unsigned char *at, *end; /* its first byte, just past its last */
    size_t next; /* the token after it and (a container) its recorded contents */
} cf_otlp_jtok;
typedef struct cf_otlp_jtape {
    cf_otlp_jtok *t;
    size_t n, cap; /* t: the caller's array of cap tokens until it grows */
    int heap;      /* t was allocated here */
} cf_otlp_jtape;
/* cf_otlp_jvalid(text), and the tape of text read into tp (its tokens
 * appended): 1, 0 (not a document; tp holds no meaning), or -1 when out
 * of memory. */
int cf_otlp_jtape_read(const char *text, cf_otlp_jtape *tp);
/* What tp allocated freed (the caller's array is left alone). */
void cf_otlp_jtape_free(cf_otlp_jtape *tp);
/* p just after a string's opening quote: just after its closing quote
 * when the string is one jansson takes, else NULL. end: the text's end
 * (its NUL). */
const unsigned char *cf_otlp_jvalid_string(const unsigned char *p, const unsigned char *end);

#endif
