/*
 * Exporters: curated examples to JSONL, CSV, Parquet or a HuggingFace
 * dataset directory; preference pairs (DPO, KTO, OpenAI chat) from user
 * signals. Everything streams: a store cursor feeds a row writer, one row
 * in memory at a time (Parquet: one row group).
 *
 * An export writes under a temporary name, fsyncs and renames into place
 * (cf_out), and only then marks the rows exported, in one transaction; if
 * marking fails the published file is taken back. So a reader never sees
 * half a file, and a crash or a full disk leaves no file at the final path
 * and no row marked.
 */
#ifndef CRUCIBLE_CF_EXPORT_H
#define CRUCIBLE_CF_EXPORT_H

#include <stdint.h>

#include "crucible/core/cf_buf.h"
#include "crucible/core/cf_out.h"
#include "crucible/export/cf_parquet.h"
#include "crucible/store/cf_store.h"

/* ---- rows and writers ------------------------------------------------------ */

/* The signal types counted per row (the columns signals_<type>). */
#define CF_EXPORT_SIGNAL_TYPES 7
extern const char *const cf_export_signal_types[CF_EXPORT_SIGNAL_TYPES];

/* A curated example as exporters see it, with what traces it back to
 * production: its inference event's model version, time, quality score,
 * metadata and signal counts (filled only when a column or the format
 * needs them, cf_export_cols_need_event; absent when the event is gone). */
typedef struct cf_export_row {
    cf_str id;                 /* the curated example's id */
    cf_str prompt;
    cf_str response;
    cf_str source;             /* curation_source */
    double score;              /* curation_score; NaN: absent */
    cf_str inference_event_id;
    cf_str deployment_id;
    cf_str model_version_id;   /* the event's; NULL: absent */
    int64_t created_at;        /* the event's inserted_at (us); CF_NULL_INT: absent */
    double quality_score;      /* the event's; NaN: absent */
    cf_str metadata;           /* the event's metadata JSON; NULL: absent */
    int64_t signals[CF_EXPORT_SIGNAL_TYPES]; /* CF_NULL_INT: no event */
} cf_export_row;

/* ---- columns of curated exports (cf_export_columns.c) --------------------- */

typedef struct cf_export_column {
    const char *name;
    cf_pq_type type;           /* also how JSONL and CSV write it (times: ISO 8601 UTC) */
    int from_event;            /* 1: read from the inference event */
    const char *hf_dtype;      /* the HuggingFace feature dtype */
} cf_export_column;

#define CF_EXPORT_MAX_COLUMNS 32

/* A choice of columns, in output order: indexes into the column table. */
typedef struct cf_export_cols {
    unsigned char idx[CF_EXPORT_MAX_COLUMNS];
    size_t n;                  /* 0: every column (cf_export_cols_get) */
} cf_export_cols;

size_t cf_export_column_count(void);
const cf_export_column *cf_export_column_at(size_t i); /* NULL past the end */
/* The index of the column named name (n bytes), -1 if none. */
int cf_export_column_find(const char *name, size_t n);
/* c itself, or every column in table order when c is NULL or empty. */
const cf_export_cols *cf_export_cols_get(const cf_export_cols *c);
/* 1 when a column of c comes from the inference event. */
int cf_export_cols_need_event(const cf_export_cols *c);
/* The value of column col of r. */
void cf_export_value(const cf_export_row *r, size_t col, cf_pq_value *v);
/* Reads r's inference event (with its signals) into r's event fields;
 * *cur holds the event's strings until the next call or
 * cf_cursor_close(*cur). */
int cf_export_trace(cf_store *s, cf_cursor **cur, cf_export_row *r, cf_err *err);

typedef struct cf_row_writer cf_row_writer;
struct cf_row_writer {
    int (*row)(cf_row_writer *, const cf_export_row *, cf_err *);
    int (*finish)(cf_row_writer *, cf_err *);  /* trailer (Parquet footer, dataset card) */
    void (*destroy)(cf_row_writer *);
    /* Optional: bytes written so far, for a writer whose bytes do not all
     * go through the cf_out it was opened on (a directory); NULL:
     * cf_out_bytes of that cf_out. */
    uint64_t (*bytes)(cf_row_writer *);
};

/* The writers take the columns to write (cols NULL: every column). */
/* JSONL: one object per line, {"prompt":...,"response":...,...}; times as
 * ISO 8601 UTC strings. */
int cf_jsonl_writer(cf_row_writer **w, cf_out *out, const cf_export_cols *cols, cf_err *err);
/* CSV (RFC 4180): a header of the column names; CRLF line ends; fields
 * with quotes, commas, CR or LF quoted (quotes doubled); an empty string
 * is "" and NULL an empty field. */
int cf_csv_writer(cf_row_writer **w, cf_out *out, const cf_export_cols *cols, cf_err *err);
/* Parquet: strings UTF-8, scores double, counts int64, times
 * TIMESTAMP(MICROS, UTC). */
int cf_parquet_row_writer(cf_row_writer **w, cf_out *out, const cf_pq_opts *opts,
                          const cf_export_cols *cols, cf_err *err);
/* OpenAI / TRL chat (SFT): {"messages":[system?, user turns..., assistant]}
 * per line (cf_export_chat.c). */
int cf_chat_writer(cf_row_writer **w, cf_out *out, cf_err *err);

/* HuggingFace dataset directory inside dir (a temporary directory being
 * built): data/train-00000-of-00001.parquet and .jsonl, dataset_info.json,
 * README.md (dataset card: counts per source, export time, deployment,
 * filters). */
typedef struct cf_hf_info {
    cf_str deployment_id;
    int64_t export_time_us;
    const char *filters;       /* human-readable, e.g. "not yet exported; limit 100" */
    cf_str batch_id;
    const cf_export_cols *cols; /* NULL: every column */
} cf_hf_info;
int cf_hf_writer(cf_row_writer **w, const char *dir, const cf_pq_opts *opts,
                 const cf_hf_info *info, cf_err *err);
/* What cf_hf_writer writes, relative to the directory, NULL-ended. */
extern const char *const cf_hf_owns[];

/* ---- exports ------------------------------------------------------------------- */

typedef struct cf_exporter cf_exporter;

/* Called every few thousand rows and at the end. */
typedef void (*cf_progress_fn)(void *ud, int64_t done, int64_t total, uint64_t bytes);

/* The longest export batch id accepted (bytes). */
#define CF_EXPORT_BATCH_ID_MAX 256

/* Where an export may write, checked before anything is written
 * (cf_export_target.c): path "-" is standard output (never for a
 * directory format); otherwise the path must not be the database file
 * db_path (when not NULL) or its -wal, -shm or -journal file (same device
 * and inode), and its parent directory must exist unless mkdir is set.
 * cf_out refuses the rest (a path that exists and is not a regular file,
 * or for directories one holding files an export did not write). */
int cf_export_check_target(const char *path, int is_dir, int mkdir, const char *db_path,
                           cf_err *err);
/* 1 when path means standard output ("-"). */
int cf_export_to_stdout(const char *path);
/* Opens out for path: standard output, a directory or a file. */
int cf_export_open_out(cf_out *out, const char *path, int is_dir, cf_err *err);

typedef struct cf_export_opts {
    const cf_exporter *format; /* a curated row of the registry (cf_exporter_find) */
    const char *path;          /* final path (a directory when format->directory); "-": stdout */
    int unique;                /* 1: never replace an existing path, pick PATH_2.EXT ... */
    int mkdir;                 /* 1: create missing parent directories */
    const char *db_path;       /* the database file, never written over (NULL: none) */
    cf_str deployment_id;      /* required */
    int include_exported;      /* 1: every curated example, 0: those not exported yet */
    int64_t limit;             /* < 0: no limit */
    cf_str batch_id;           /* required: recorded on the exported rows */
    cf_pq_opts parquet;        /* Parquet and HuggingFace */
    cf_export_cols columns;    /* n 0: every column */
    int64_t export_time_us;    /* the dataset card's export time; 0: now */
    cf_progress_fn progress;   /* optional */
    void *progress_ud;
    /* 1: regenerate the file of batch_id (cf_export_regenerate below):
     * write the rows already exported with that batch id, claim and mark
     * nothing, replace the path even with no row left. */
    int regenerate;
    /* regenerate: the rows the file must hold (< 0: any number); another
     * count fails before anything is published */
    int64_t expect_rows;
} cf_export_opts;

void cf_export_opts_init(cf_export_opts *o);

typedef struct cf_export_result {
    int64_t count;             /* rows written */
    int64_t marked;            /* rows marked exported */
    uint64_t bytes;            /* bytes written */
    char *path;                /* the final path (malloc'd); NULL when nothing was written */
    int64_t already_exported;  /* curated, nothing to write: the rows exported before */
    int64_t claimed_elsewhere; /* curated, nothing to write: the rows another export's
                                * live claim holds (it is writing them) */
} cf_export_result;

void cf_export_result_free(cf_export_result *r);

/* Exports the deployment's curated examples, oldest first. With no row
 * to write, writes nothing at all (the path is left as it was): 0 with
 * count 0, path NULL, already_exported counted (include_exported: 0) and
 * claimed_elsewhere the rows other exports hold. */
int cf_export_curated(cf_store *s, const cf_export_opts *o, cf_export_result *res, cf_err *err);
/* With o->regenerate: writes the file of an earlier export again from the
 * rows the store still holds with o->batch_id (in the deployment, oldest
 * first), in the same format with the same columns and options, and
 * replaces o->path with it (never "-", never a unique name). What the path
 * held stays until the new file or directory is complete, and stays as it
 * was when anything fails (a write, a count other than o->expect_rows, a
 * directory holding files an export did not write). An empty batch gives
 * an empty file (or dataset) with the same columns. */

typedef struct cf_pairs_opts {
    const cf_exporter *format; /* a pairs row of the registry (cf_exporter_find) */
    const char *path;          /* "-": standard output */
    int unique;
    int mkdir;                 /* as cf_export_opts */
    const char *db_path;
    cf_str deployment_id;      /* required */
    int64_t limit;             /* events (< 0: no limit) */
    int64_t since, until;      /* events' inserted_at window (CF_NO_TIME: unbounded) */
    int include_exported;      /* 1: every pair, 0: those not exported yet */
    cf_progress_fn progress;
    void *progress_ud;
} cf_pairs_opts;

void cf_pairs_opts_init(cf_pairs_opts *o);

/* Writes training pairs from the deployment's events that have the
 * signals the format needs, oldest event first; only the pairs not
 * exported before unless include_exported (cf_export_pairs_mark.c).
 * With no pair to write, writes nothing at all: 0 with count 0, path NULL
 * and already_exported the pairs skipped as exported before. */
int cf_export_pairs(cf_store *s, const cf_pairs_opts *o, cf_export_result *res, cf_err *err);

/* ---- what pairs exports have written (cf_export_pairs_mark.c) ---------------
 * A pairs export is marked by its start time T, kept per deployment and
 * format in the store's settings (key "export.pairs.<format>.<deployment>"):
 * it wrote every pair as the signals recorded before T make it. The next
 * export writes an event's pair only when the signals recorded from the
 * mark on make it appear or change (a first edit; a thumbs vote flipped),
 * and uses only the signals recorded before its own start; so each pair
 * is written once. Only an export of every event (no limit, since or
 * until) moves the mark. */
typedef struct cf_pairs_mark {
    int64_t since;             /* the last mark (CF_NO_TIME: none, or include_exported) */
    int64_t now;               /* this export's start */
    cf_signal *sigs;           /* scratch: an event's signals before a time */
    size_t cap;
    cf_buf old;                /* scratch: the pair as of the last mark */
} cf_pairs_mark;

/* Reads the mark (unless o->include_exported); now = the current time. */
int cf_pairs_mark_begin(cf_store *s, const cf_pairs_opts *o, cf_pairs_mark *m, cf_err *err);
/* The line of event e into b as of m->now, left empty when e gives none
 * or (*skipped = 1) when it is the one written as of the last mark. */
int cf_pairs_mark_line(cf_pairs_mark *m, const cf_pairs_opts *o, const cf_event *e, cf_buf *b,
                       int *skipped, cf_err *err);
/* Records m->now as the mark when the export covered every event. */
int cf_pairs_mark_commit(cf_store *s, const cf_pairs_opts *o, const cf_pairs_mark *m,
                         cf_err *err);
void cf_pairs_mark_free(cf_pairs_mark *m);

/* ---- the registry of formats ------------------------------------------------ */

typedef enum cf_export_kind {
    CF_EXPORT_CURATED, /* curated examples through a row writer; cf_export_curated */
    CF_EXPORT_PAIRS    /* one line per event with signals; cf_export_pairs */
} cf_export_kind;

/* One export format: a row of the table in cf_export_registry.c. Lua's
 * crucible._export.formats() lists the rows, and the configuration, the
 * pipeline stage, cf.export and the CLI take their formats from it. */
struct cf_exporter {
    const char *name;        /* as given in options, the config and --format */
    const char *alias;       /* another name that finds this row (NULL: none) */
    const char *extension;   /* ending of the default path ("" for a directory) */
    const char *description; /* one line, for help texts */
    cf_export_kind kind;
    int directory;           /* curated: 1 writes a directory (cf_out_open_dir) */
    int columns;             /* curated: 1 writes the chosen columns (cf_export_opts.columns) */
    int needs_event;         /* curated: 1 reads each row's inference event whatever the columns */
    /* directory: the entries it writes, relative to the directory,
     * NULL-ended (cf_out.owns): an existing directory holding anything
     * else is never replaced */
    const char *const *owns;
    /* curated: opens the row writer on out, the temporary file (or
     * directory, out->tmp) that the driver publishes. */
    int (*open_writer)(cf_row_writer **w, cf_out *out, const cf_export_opts *o, cf_err *err);
    /* pairs: the events must have a signal of one of these types */
    const cf_str *signal_types;
    size_t n_signal_types;
    /* pairs: the line (with its newline) for event e into b, left empty
     * when the event gives no pair; b is empty on entry. */
    int (*pair_line)(const cf_event *e, cf_buf *b, cf_err *err);
};

/* The table, in order (the order of listings and help texts). */
const cf_exporter *cf_exporter_at(size_t i); /* NULL past the end */
size_t cf_exporter_count(void);
/* The row named (or aliased) name (n bytes), NULL if none. */
const cf_exporter *cf_exporter_find(const char *name, size_t n);
/* The first row of that kind: the default format of the *_opts_init. */
const cf_exporter *cf_exporter_first(cf_export_kind kind);

/* The open_writer of each curated format, the pair_line of each pairs one. */
int cf_jsonl_open(cf_row_writer **w, cf_out *out, const cf_export_opts *o, cf_err *err);
int cf_csv_open(cf_row_writer **w, cf_out *out, const cf_export_opts *o, cf_err *err);
int cf_parquet_open(cf_row_writer **w, cf_out *out, const cf_export_opts *o, cf_err *err);
int cf_hf_open(cf_row_writer **w, cf_out *out, const cf_export_opts *o, cf_err *err);
int cf_chat_open(cf_row_writer **w, cf_out *out, const cf_export_opts *o, cf_err *err);
int cf_pairs_dpo_line(const cf_event *e, cf_buf *b, cf_err *err);
int cf_pairs_kto_line(const cf_event *e, cf_buf *b, cf_err *err);
int cf_pairs_openai_line(const cf_event *e, cf_buf *b, cf_err *err);
/* For pair_line functions: fails naming the event when v is not UTF-8. */
int cf_pairs_check_utf8(const cf_event *e, const char *field, cf_str v, cf_err *err);

/* Draws a progress bar on f ("\r[#####.....]  45%  450000/1000000 rows
 * 120.3 MB"); final = 1 ends the line. At most ten redraws a second
 * unless final. */
typedef struct cf_progress_bar {
    void *f;                   /* FILE * */
    int64_t last_us;
    int64_t start_us;
    int drawn;
} cf_progress_bar;
void cf_progress_draw(cf_progress_bar *bar, int64_t done, int64_t total, uint64_t bytes,
                      int final);

#endif
