/*
 * The registry of export formats: one row per format. Everything that
 * names formats reads this table: the Lua binding (crucible._export, its
 * formats() listing and its format options), and through it the
 * configuration's export.format, the export_feedback stage's schema,
 * cf.export / cf.export_preference_pairs and `crucible-feedback export`.
 *
 * Adding a format: write its writer in a file of its own (a curated
 * format: open_writer returning a cf_row_writer, see cf_export_csv.c; a
 * pairs format: pair_line, see cf_export_pairs_lines.c), list the file in
 * CMakeLists.txt and add its row here.
 */
#include <string.h>

#include "crucible/export/cf_export.h"

static const cf_str EDIT[] = {{"edit", 4}};
static const cf_str THUMBS[] = {{"thumbs_up", 9}, {"thumbs_down", 11}};

#define SIGNALS(a) .signal_types = (a), .n_signal_types = sizeof(a) / sizeof((a)[0])

/* In the reference's order: jsonl, parquet, csv first. */
static const cf_exporter TABLE[] = {
    {.name = "jsonl", .extension = ".jsonl", .kind = CF_EXPORT_CURATED, .columns = 1,
     .open_writer = cf_jsonl_open, .description = "curated examples, one JSON object per line"},
    {.name = "parquet", .extension = ".parquet", .kind = CF_EXPORT_CURATED, .columns = 1,
     .open_writer = cf_parquet_open, .description = "curated examples as a Parquet file"},
    {.name = "csv", .extension = ".csv", .kind = CF_EXPORT_CURATED, .columns = 1,
     .open_writer = cf_csv_open, .description = "curated examples as CSV (RFC 4180)"},
    {.name = "huggingface", .extension = "", .kind = CF_EXPORT_CURATED, .directory = 1,
     .columns = 1, .open_writer = cf_hf_open, .owns = cf_hf_owns,
     .description = "curated examples as a HuggingFace dataset directory"},
    {.name = "openai-chat", .alias = "messages", .extension = "_chat.jsonl",
     .kind = CF_EXPORT_CURATED, .needs_event = 1, .open_writer = cf_chat_open,
     .description = "curated examples as chat {messages: system?, user, assistant} (SFT)"},
    {.name = "dpo", .extension = "_preferences.jsonl", .kind = CF_EXPORT_PAIRS, SIGNALS(EDIT),
     .pair_line = cf_pairs_dpo_line,
     .description = "DPO pairs {prompt, chosen, rejected} from edit signals"},
    {.name = "kto", .extension = "_kto.jsonl", .kind = CF_EXPORT_PAIRS, SIGNALS(THUMBS),
     .pair_line = cf_pairs_kto_line,
     .description = "KTO rows {prompt, completion, label} from thumbs signals"},
    {.name = "openai", .extension = "_openai.jsonl", .kind = CF_EXPORT_PAIRS, SIGNALS(EDIT),
     .pair_line = cf_pairs_openai_line,
     .description = "OpenAI chat {messages: user, edited answer} from edit signals"},
};

#define NTABLE (sizeof TABLE / sizeof TABLE[0])

size_t cf_exporter_count(void)
{
    return NTABLE;
}

const cf_exporter *cf_exporter_at(size_t i)
{
    return i < NTABLE ? &TABLE[i] : NULL;
}

const cf_exporter *cf_exporter_find(const char *name, size_t n)
{
    for (size_t i = 0; i < NTABLE; i++)
        if ((strlen(TABLE[i].name) == n && memcmp(TABLE[i].name, name, n) == 0) ||
            (TABLE[i].alias && strlen(TABLE[i].alias) == n && memcmp(TABLE[i].alias, name, n) == 0))
            return &TABLE[i];
    return NULL;
}

const cf_exporter *cf_exporter_first(cf_export_kind kind)
{
    for (size_t i = 0; i < NTABLE; i++)
        if (TABLE[i].kind == kind)
            return &TABLE[i];
    return NULL;
}
