/* Shared by the report room's files (not a public header). */
#ifndef CRUCIBLE_CF_REPORT_INT_H
#define CRUCIBLE_CF_REPORT_INT_H

#include "crucible/report/cf_report.h"

typedef struct cf_report_dvec {
    double *v;
    size_t n, cap;
} cf_report_dvec;

/* The samples the percentiles are taken from: per bucket and overall. */
typedef struct cf_report_samples {
    cf_report_dvec *lat, *qual;
    cf_report_dvec all_lat, all_q;
} cf_report_samples;

int cf_report_dvec_push(cf_report_dvec *d, double v);
void cf_report_samples_free(cf_report_samples *sm, size_t nbuckets);

/* The index of name among names[0..*n) (added when new, while there is
 * room; past CF_REPORT_MAX_NAMES the "other" entry), counting the row at
 * time t. -1 when out of memory. */
long cf_report_name_index(cf_report_name *names, size_t *n, cf_str name, int64_t t);

/* Folds the window's curated examples into the buckets. */
int cf_report_fold_rows(cf_store *s, const cf_report_opts *o, cf_report *r, cf_err *err);

#endif
