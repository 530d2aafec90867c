/*
 * A spill file of vectors: (id, vector) records written once, in order, to
 * an unlinked temporary file, then read back in order, whole or in parts
 * that threads read at once. Diverse selection keeps every prompt's vector
 * here between the pass that sums them and the pass that ranks them.
 *
 * A vector is given as floats, or as an integer lattice of an embedder
 * that has them (cf_embed.h): the file keeps a lattice's integers, four
 * bits each when they all fit (most prompts' do: an eighth of the floats'
 * bytes), else a byte each, else four, and a read gives the floats
 * cf_embed_lattice_normalize makes of them, the very vector the embedder
 * gives. Fewer bytes matter: writing the file costs mostly the kernel
 * filling fresh pages of its cache.
 */
#ifndef CRUCIBLE_CF_VSPILL_H
#define CRUCIBLE_CF_VSPILL_H

#include <stdint.h>

#include "crucible/core/cf_common.h"

typedef struct cf_vspill cf_vspill;

/* A spill of vectors of dim values. Returns 0, or -1 with err set. */
int cf_vspill_open(size_t dim, cf_vspill **out, cf_err *err);
void cf_vspill_close(cf_vspill *s);

int cf_vspill_put_floats(cf_vspill *s, cf_str id, const float *x, cf_err *err);
int cf_vspill_put_lattice(cf_vspill *s, cf_str id, const int32_t *m, cf_err *err);
int64_t cf_vspill_count(const cf_vspill *s);

/* Ends the writing (further puts fail). */
int cf_vspill_finish(cf_vspill *s, cf_err *err);

/* Each record of part `part` of `parts` (consecutive runs of records, of
 * about equal counts, in order) to fn, which returns 0 to go on or -1 to
 * stop (then this returns -1 and err is fn's to set). Parts of one
 * finished spill may be read by threads at once. */
typedef int (*cf_vspill_fn)(void *ud, cf_str id, const float *x, cf_err *err);
int cf_vspill_read(cf_vspill *s, unsigned part, unsigned parts, cf_vspill_fn fn, void *ud,
                   cf_err *err);

#endif
