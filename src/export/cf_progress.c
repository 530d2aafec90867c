/* A progress bar for long exports, drawn on a terminal's stderr. */
#include <inttypes.h>
#include <stdio.h>

#include "crucible/export/cf_export.h"

void cf_progress_draw(cf_progress_bar *bar, int64_t done, int64_t total, uint64_t bytes,
                      int final)
{
    FILE *f = bar->f;
    int64_t now = cf_now_us();
    if (!bar->start_us)
        bar->start_us = now;
    if (!final && bar->drawn && now - bar->last_us < 100000)
        return;
    bar->last_us = now;
    bar->drawn = 1;
    char line[160];
    double mb = (double)bytes / 1e6;
    double secs = (double)(now - bar->start_us) / 1e6;
    if (total > 0) {
        int pct = (int)(done * 100 / total);
        if (pct > 100)
            pct = 100;
        char bar_s[31];
        int fill = pct * 30 / 100;
        for (int i = 0; i < 30; i++)
            bar_s[i] = i < fill ? '#' : '.';
        bar_s[30] = '\0';
        snprintf(line, sizeof line, "\r[%s] %3d%%  %" PRId64 "/%" PRId64 " rows  %.1f MB  %.1fs",
                 bar_s, pct, done, total, mb, secs);
    } else {
        snprintf(line, sizeof line, "\r%" PRId64 " rows  %.1f MB  %.1fs", done, mb, secs);
    }
    fputs(line, f);
    if (final)
        fputc('\n', f);
    fflush(f);
}
