/* JSON acceptance as jansson's json_loads(s, 0, NULL) decides it, without
 * building the document (cf_otlp_jvalid.c): the streaming message reader
 * (cf_otlp_jmsgs.c) reads only the texts this accepts, so a text jansson
 * refuses is never taken for messages. */
#ifndef CF_OTLP_JVALID_H
#define CF_OTLP_JVALID_H

/* 1 when text (NUL-terminated) is a document jansson loads, else 0. */
int cf_otlp_jvalid(const char *text);
/* p just after a string's opening quote: just after its closing quote
 * when the string is one jansson takes, else NULL. end: the text's end
 * (its NUL). */
const unsigned char *cf_otlp_jvalid_string(const unsigned char *p, const unsigned char *end);

#endif
