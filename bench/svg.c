/* SPDX-License-Identifier: MIT */
/*
 * svg.c -- `--svg FILE`: one self-contained SVG (no scripts, no external fonts or styles) that
 * a browser or an XML parser reads as is. Left: throughput bars (median pages/s, whiskers from
 * min to max of the repeats). Right: per-page latency p50 / p99 / p99.9 on a log axis.
 */
#include "report.h"

#include "runner.h"

#include <atomio.h>

#include <errno.h>
#include <math.h>
#include <string.h>

#define ROW_H   30
#define TOP     78
#define LABEL_W 190
#define PANEL_W 330
#define GAP     150 /* room for the value labels right of the longest bar */

/* xml_text() -- s with the five XML specials escaped. */
static void
xml_text(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&':
            fputs("&amp;", f);
            break;
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        case '\'':
            fputs("&apos;", f);
            break;
        default:
            if ((unsigned char)*s >= 0x20)
                fputc(*s, f);
        }
    }
}

static const char *
row_color(const struct report_row *r)
{
    if (r->is_baseline)
        return "#8c9db5";
    switch (r->requested_path) {
    case ATOMIO_PATH_AUTO:
        return "#6a3d9a";
    case ATOMIO_PATH_DIRECT_ATOMIC:
        return "#1f78b4";
    case ATOMIO_PATH_BUFFERED_ATOMIC:
        return "#33a02c";
    case ATOMIO_PATH_DOUBLEWRITE:
        return "#e6842a";
    default:
        return "#7f7f7f";
    }
}

/* nice_max() -- a round axis maximum >= v (1, 2, 5 x 10^k). */
static double
nice_max(double v)
{
    if (!(v > 0))
        return 1;
    double p = pow(10, floor(log10(v)));
    for (double m = 1; m <= 10; m = m == 1 ? 2 : m == 2 ? 5 : 10)
        if (m * p >= v)
            return m * p;
    return 10 * p;
}

int
report_svg(const char *path, const struct report *rep)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -errno;
    unsigned n = rep->nrows;
    int width = LABEL_W + PANEL_W + GAP + PANEL_W + 40;
    int height = TOP + (int)n * ROW_H + 70;
    double pmax = 0, lmin = INFINITY, lmax = 0;
    for (unsigned i = 0; i < n; i++) {
        struct agg a = row_agg(&rep->rows[i], FIG(pages_per_s));
        if (a.valid && a.max > pmax)
            pmax = a.max;
        size_t offs[3] = {FIG(lat_page_p50_us), FIG(lat_page_p99_us), FIG(lat_page_p999_us)};
        for (int q = 0; q < 3; q++) {
            struct agg l = row_agg(&rep->rows[i], offs[q]);
            if (l.valid && l.median > 0) {
                if (l.median < lmin)
                    lmin = l.median;
                if (l.median > lmax)
                    lmax = l.median;
            }
        }
    }
    double step = nice_max(pmax / 4);
    int nticks = (int)ceil(pmax / step);
    if (nticks < 1)
        nticks = 1;
    pmax = step * nticks;
    double lo = isfinite(lmin) ? pow(10, floor(log10(lmin))) : 1;
    double hi = lmax > 0 ? pow(10, ceil(log10(lmax))) : 10;
    if (hi <= lo)
        hi = lo * 10;

    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n",
            width, height, width, height);
    fprintf(f, "<title>atomio-bench %s</title>\n", rep->command);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"#ffffff\"/>\n");
    char desc[400];
    wl_describe(rep->c, desc, sizeof(desc));
    fprintf(f, "<text x=\"10\" y=\"20\" font-size=\"15\" font-weight=\"bold\">atomio-bench %s: ",
            rep->command);
    xml_text(f, rep->c->file);
    if (rep->have_caps) {
        fputs(" (", f);
        xml_text(f, fs_type_name(rep->caps.fs_type));
        fputs(")", f);
    }
    fprintf(f, "</text>\n<text x=\"10\" y=\"38\" fill=\"#444\" font-size=\"11\">");
    xml_text(f, desc);
    if (rep->repeat > 1)
        fprintf(f, "; median of %u interleaved runs", rep->repeat);
    fprintf(f, "</text>\n");

    double unsafe_pps = NAN;
    for (unsigned i = 0; i < n; i++) {
        if (!rep->rows[i].is_baseline && rep->rows[i].requested_path == ATOMIO_PATH_UNSAFE) {
            struct agg u = row_agg(&rep->rows[i], FIG(pages_per_s));
            if (u.valid && u.median > 0)
                unsafe_pps = u.median;
        }
    }
    int x0 = LABEL_W, x1 = LABEL_W + PANEL_W + GAP;
    fprintf(f,
            "<text x=\"%d\" y=\"%d\" font-weight=\"bold\">Throughput, pages/s "
            "(whiskers: min-max)</text>\n",
            x0, TOP - 18);
    fprintf(f,
            "<text x=\"%d\" y=\"%d\" font-weight=\"bold\">Latency per page, us (log)"
            "</text>\n",
            x1, TOP - 18);
    /* legend with the marker shapes themselves */
    int lx = x1 + 190, ly = TOP - 22;
    fprintf(f,
            "<circle cx=\"%d\" cy=\"%d\" r=\"4\" fill=\"#444\"/>"
            "<text x=\"%d\" y=\"%d\">p50</text>\n",
            lx, ly, lx + 7, ly + 4);
    fprintf(f,
            "<rect x=\"%d\" y=\"%d\" width=\"8\" height=\"8\" fill=\"#444\"/>"
            "<text x=\"%d\" y=\"%d\">p99</text>\n",
            lx + 40, ly - 4, lx + 51, ly + 4);
    fprintf(f,
            "<path d=\"M%d %dl5 9h-10z\" fill=\"#444\"/>"
            "<text x=\"%d\" y=\"%d\">p99.9</text>\n",
            lx + 88, ly - 5, lx + 96, ly + 4);
    /* axes and grid */
    int ybot = TOP + (int)n * ROW_H;
    for (int t = 0; t <= nticks; t++) {
        double v = step * t;
        double x = x0 + PANEL_W * (double)t / nticks;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/>\n", x,
                TOP - 4, x, ybot);
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" fill=\"#444\">%.0f</text>\n",
                x, ybot + 16, v);
    }
    for (double d = lo; d <= hi * 1.0001; d *= 10) {
        double x = x1 + PANEL_W * (log10(d) - log10(lo)) / (log10(hi) - log10(lo));
        fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/>\n", x,
                TOP - 4, x, ybot);
        /* %g would print 1e+06; below 1 us keep the fraction */
        if (d >= 1)
            fprintf(f,
                    "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" fill=\"#444\">%.0f"
                    "</text>\n",
                    x, ybot + 16, d);
        else
            fprintf(f,
                    "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" fill=\"#444\">%.3g"
                    "</text>\n",
                    x, ybot + 16, d);
    }
    for (unsigned i = 0; i < n; i++) {
        const struct report_row *r = &rep->rows[i];
        int y = TOP + (int)i * ROW_H;
        const char *col = row_color(r);
        char name[64];
        snprintf(name, sizeof(name), "%s", r->name);
        for (unsigned k = 0; k < r->nruns; k++)
            if (!r->runs[k].err && r->runs[k].path_actual[0] &&
                r->requested_path == ATOMIO_PATH_AUTO) {
                snprintf(name, sizeof(name), "AUTO \xe2\x86\x92 %s", r->runs[k].path_actual);
                break;
            }
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>\n", x0 - 8,
                y + ROW_H / 2 + 4, name);
        struct agg a = row_agg(r, FIG(pages_per_s));
        if (!a.valid) {
            fprintf(f, "<text x=\"%d\" y=\"%d\" fill=\"#b00\">failed</text>\n", x0 + 4,
                    y + ROW_H / 2 + 4);
            continue;
        }
        double w = PANEL_W * a.median / pmax;
        fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/>\n", x0,
                y + 5, w, ROW_H - 10, col);
        double wl = x0 + PANEL_W * a.min / pmax, wh = x0 + PANEL_W * a.max / pmax;
        int ym = y + ROW_H / 2;
        fprintf(f,
                "<path d=\"M%.1f %dH%.1fM%.1f %dV%dM%.1f %dV%d\" stroke=\"#222\" "
                "fill=\"none\"/>\n",
                wl, ym, wh, wl, ym - 5, ym + 5, wh, ym - 5, ym + 5);
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" fill=\"#222\">%.0f", wh + 4, ym + 4, a.median);
        if (isfinite(unsafe_pps))
            fprintf(f, "<tspan dx=\"4\" fill=\"#777\">(%.2f\xc3\x97 UNSAFE)</tspan>",
                    a.median / unsafe_pps);
        fprintf(f, "</text>\n");
        size_t offs[3] = {FIG(lat_page_p50_us), FIG(lat_page_p99_us), FIG(lat_page_p999_us)};
        double px[3];
        int have = 0;
        for (int q = 0; q < 3; q++) {
            struct agg l = row_agg(r, offs[q]);
            px[q] = NAN;
            if (l.valid && l.median > 0) {
                double v = l.median < lo ? lo : l.median;
                px[q] = x1 + PANEL_W * (log10(v) - log10(lo)) / (log10(hi) - log10(lo));
                have++;
            }
        }
        if (!have) {
            fprintf(f, "<text x=\"%d\" y=\"%d\" fill=\"#888\">no per-page latency</text>\n", x1 + 4,
                    ym + 4);
            continue;
        }
        if (isfinite(px[0]) && isfinite(px[2]))
            fprintf(f,
                    "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"%s\" "
                    "stroke-width=\"2\"/>\n",
                    px[0], ym, px[2], ym, col);
        if (isfinite(px[0]))
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%d\" r=\"5\" fill=\"%s\"/>\n", px[0], ym, col);
        if (isfinite(px[1]))
            fprintf(f, "<rect x=\"%.1f\" y=\"%d\" width=\"9\" height=\"9\" fill=\"%s\"/>\n",
                    px[1] - 4.5, ym - 4, col);
        if (isfinite(px[2]))
            fprintf(f, "<path d=\"M%.1f %dl5 9h-10z\" fill=\"%s\"/>\n", px[2], ym - 5, col);
    }
    fprintf(f,
            "<text x=\"10\" y=\"%d\" fill=\"#444\">pages/s: higher is better; latency: "
            "lower is better. UNSAFE has no torn-write protection; bare-* rows run without "
            "the library.</text>\n",
            height - 14);
    fprintf(f, "</svg>\n");
    if (fclose(f) != 0)
        return -errno;
    return 0;
}
