/* SPDX-License-Identifier: MIT */
/*
 * cmd_store.c -- `atomio-bench inspect DIR` (dump a doublewrite store: header, manifest,
 * every batch with its validity, every slot) and `atomio-bench recover DIR` (run recovery and
 * print the report). Public atomio.h only; human output by default, --json for machines.
 * Exit status: 0 ok, 1 runtime error (or pages recovery could not save), 2 usage error.
 */
#include <atomio.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_RUNTIME 1
#define EXIT_USAGE   2

int cmd_inspect(int argc, char **argv);
int cmd_recover(int argc, char **argv);

/* json_string() -- s as a JSON string literal. */
static void
json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(out, "\\u%04x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

static void
uuid_str(const uint8_t u[16], char out[37])
{
    static const int dash[] = {4, 6, 8, 10};
    char *p = out;
    for (int i = 0, d = 0; i < 16; i++) {
        if (d < 4 && i == dash[d]) {
            *p++ = '-';
            d++;
        }
        p += sprintf(p, "%02x", u[i]);
    }
    *p = '\0';
}

struct store_args {
    const char *dir;
    int json;
    int brief; /* inspect: no slot lines */
};

/* parse() -- DIR plus flags; prints a one-line usage error and returns -1 on bad input. */
static int
parse(int argc, char **argv, struct store_args *a, int allow_brief)
{
    memset(a, 0, sizeof(*a));
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            printf("usage: atomio-bench %s DIR [--json]%s\n", argv[0],
                   allow_brief ? " [--brief]" : "");
            if (allow_brief)
                printf("Dump the doublewrite store in DIR (the ctx's doublewrite_dir) without "
                       "changing it:\nstore header, manifest, each batch (valid or torn) "
                       "and its page slots.\n  --brief  batches only, no slots\n");
            else
                printf("Run recovery on the doublewrite store in DIR: rewrite every torn page "
                       "the store\ncan restore, then print the recovery report. Exit 1 if "
                       "pages could not be saved.\n");
            printf("  --json   one JSON object on stdout\n");
            return 1;
        } else if (strcmp(s, "--json") == 0) {
            a->json = 1;
        } else if (allow_brief && strcmp(s, "--brief") == 0) {
            a->brief = 1;
        } else if (s[0] == '-' && s[1]) {
            fprintf(stderr, "atomio-bench %s: unknown option '%s'\n", argv[0], s);
            return -1;
        } else if (!a->dir) {
            a->dir = s;
        } else {
            fprintf(stderr, "atomio-bench %s: unexpected argument '%s'\n", argv[0], s);
            return -1;
        }
    }
    if (!a->dir) {
        fprintf(stderr, "atomio-bench %s: missing DIR (the doublewrite store directory)\n",
                argv[0]);
        return -1;
    }
    return 0;
}

/* ---- inspect ------------------------------------------------------------------------------ */

struct insp {
    struct store_args *a;
    FILE *out;
    uint64_t batches, valid, torn, slots, bad_slots, files;
    int first_batch, first_file, in_batch, first_slot;
    uint32_t segments;
};

static int
insp_cb(void *arg, const atomio_inspect_record *r)
{
    struct insp *in = arg;
    FILE *o = in->out;
    char u[37];
    switch (r->kind) {
    case ATOMIO_INSPECT_STORE:
        in->segments = r->segments;
        uuid_str(r->uuid, u);
        if (in->a->json)
            fprintf(o,
                    "{\"store\":{\"format_version\":%" PRIu32 ",\"uuid\":\"%s\","
                    "\"segments\":%" PRIu32 ",\"segment_size\":%" PRIu64
                    ",\"max_page_size\":%" PRIu32 ",\"batch_pages\":%" PRIu32 "},\"files\":[",
                    r->format_version, u, r->segments, r->segment_size, r->max_page_size,
                    r->batch_pages);
        else
            fprintf(o,
                    "store     format v%" PRIu32 ", uuid %s\n"
                    "geometry  %" PRIu32 " segments x %" PRIu64 " bytes, sized for %" PRIu32
                    " pages of %" PRIu32 " bytes\n",
                    r->format_version, u, r->segments, r->segment_size, r->batch_pages,
                    r->max_page_size);
        break;
    case ATOMIO_INSPECT_FILE:
        in->files++;
        if (in->a->json) {
            fprintf(o, "%s{\"file_id\":%" PRIu64 ",\"path\":", in->first_file ? "" : ",",
                    r->file_id);
            json_string(o, r->path);
            fputc('}', o);
        } else {
            if (in->first_file)
                fprintf(o, "manifest\n");
            fprintf(o, "  file %-20" PRIu64 " %s\n", r->file_id, r->path);
        }
        in->first_file = 0;
        break;
    case ATOMIO_INSPECT_BATCH:
        in->batches++;
        in->valid += r->state == ATOMIO_BATCH_VALID;
        in->torn += r->state == ATOMIO_BATCH_TORN;
        if (in->a->json) {
            fprintf(o,
                    "%s%s{\"segment\":%" PRIu32 ",\"seq\":%" PRIu64 ",\"state\":\"%s\","
                    "\"pages\":%" PRIu32 ",\"bytes\":%" PRIu64 ",\"why\":",
                    in->first_batch ? "],\"batches\":[" : "]},", "", r->segment, r->seq,
                    r->state == ATOMIO_BATCH_VALID ? "valid" : "torn", r->pages, r->bytes);
            json_string(o, r->why);
            fprintf(o, ",\"slots\":[");
            in->first_slot = 1;
        } else {
            if (in->first_batch)
                fprintf(o, "batches\n");
            fprintf(o,
                    "  segment %-4" PRIu32 " seq %-10" PRIu64 " %-5s %3" PRIu32 " pages %9" PRIu64
                    " bytes%s%s\n",
                    r->segment, r->seq, r->state == ATOMIO_BATCH_VALID ? "VALID" : "TORN", r->pages,
                    r->bytes, r->state == ATOMIO_BATCH_VALID ? "" : "  ",
                    r->state == ATOMIO_BATCH_VALID ? "" : r->why);
        }
        in->first_batch = 0;
        in->in_batch = 1;
        break;
    case ATOMIO_INSPECT_SLOT:
        in->slots++;
        in->bad_slots += !r->crc_ok;
        if (in->a->json) {
            fprintf(o,
                    "%s{\"slot\":%" PRIu32 ",\"file_id\":%" PRIu64 ",\"page_no\":%" PRIu64
                    ",\"page_size\":%" PRIu32 ",\"crc\":\"%08" PRIx32 "\",\"crc_ok\":%s}",
                    in->first_slot ? "" : ",", r->slot, r->file_id, r->page_no, r->page_size,
                    r->crc, r->crc_ok ? "true" : "false");
            in->first_slot = 0;
        } else if (!in->a->brief) {
            fprintf(o,
                    "    slot %-4" PRIu32 " file %-20" PRIu64 " page %-12" PRIu64 " %7" PRIu32
                    " B  crc %08" PRIx32 " %s\n",
                    r->slot, r->file_id, r->page_no, r->page_size, r->crc,
                    r->crc_ok ? "ok" : "BAD");
        }
        break;
    }
    return 0;
}

int
cmd_inspect(int argc, char **argv)
{
    struct store_args a;
    int p = parse(argc, argv, &a, 1);
    if (p)
        return p > 0 ? 0 : EXIT_USAGE;
    struct insp in = {.a = &a, .out = stdout, .first_batch = 1, .first_file = 1};
    int r = atomio_store_inspect(a.dir, insp_cb, &in);
    if (r < 0) {
        if (a.json)
            fflush(stdout);
        fprintf(stderr, "atomio-bench inspect: %s: %s (%s)\n", a.dir, atomio_strerror(r),
                atomio_err_name(r));
        return EXIT_RUNTIME;
    }
    if (a.json) {
        fprintf(stdout, "%s", in.first_batch ? "],\"batches\":[" : "]}");
        fprintf(stdout,
                "],\"summary\":{\"files\":%" PRIu64 ",\"batches\":%" PRIu64 ",\"valid\":%" PRIu64
                ",\"torn\":%" PRIu64 ",\"slots\":%" PRIu64 ",\"bad_slots\":%" PRIu64 "}}\n",
                in.files, in.batches, in.valid, in.torn, in.slots, in.bad_slots);
    } else {
        if (in.first_file)
            printf("manifest  empty\n");
        printf("summary   %" PRIu64 " of %" PRIu32 " segments hold a batch: %" PRIu64
               " valid, %" PRIu64 " torn; %" PRIu64 " slots%s\n",
               in.batches, in.segments, in.valid, in.torn, in.slots,
               in.valid ? " (recovery will check these pages)" : "");
    }
    return 0;
}

/* ---- recover ------------------------------------------------------------------------------ */

struct geom {
    uint32_t segments, batch_pages, max_page_size;
    int found;
};

static int
geom_cb(void *arg, const atomio_inspect_record *r)
{
    struct geom *g = arg;
    if (r->kind != ATOMIO_INSPECT_STORE)
        return 0;
    g->segments = r->segments;
    g->batch_pages = r->batch_pages;
    g->max_page_size = r->max_page_size;
    g->found = 1;
    return 1; /* that is all we need */
}

int
cmd_recover(int argc, char **argv)
{
    struct store_args a;
    int p = parse(argc, argv, &a, 0);
    if (p)
        return p > 0 ? 0 : EXIT_USAGE;
    /* Open the store with its own geometry, so recovering never re-lays it out. */
    struct geom g = {0};
    int r = atomio_store_inspect(a.dir, geom_cb, &g);
    if (r < 0 || !g.found) {
        fprintf(stderr, "atomio-bench recover: %s: %s (%s)\n", a.dir,
                r < 0 ? atomio_strerror(r) : "no store header", atomio_err_name(r));
        return EXIT_RUNTIME;
    }
    atomio_ctx_opts o;
    atomio_ctx_opts_init(&o);
    o.doublewrite_dir = a.dir;
    o.flags = ATOMIO_CTX_NO_RECOVER;
    o.doublewrite_segments = g.segments;
    o.doublewrite_batch_pages = g.batch_pages;
    o.doublewrite_max_page_size = g.max_page_size;
    atomio_ctx *ctx = NULL;
    r = atomio_ctx_open(&o, &ctx);
    if (r < 0) {
        fprintf(stderr, "atomio-bench recover: cannot open the store in %s: %s (%s)\n", a.dir,
                atomio_strerror(r), atomio_err_name(r));
        return EXIT_RUNTIME;
    }
    atomio_recovery_report rep;
    memset(&rep, 0, sizeof(rep));
    rep.size = sizeof(rep);
    r = atomio_ctx_recover(ctx, &rep);
    int cr = atomio_ctx_close(ctx);
    if (a.json) {
        printf("{\"result\":");
        json_string(stdout, atomio_err_name(r));
        printf(",\"segments_scanned\":%" PRIu64 ",\"batches_scanned\":%" PRIu64
               ",\"batches_valid\":%" PRIu64 ",\"batches_torn\":%" PRIu64
               ",\"pages_checked\":%" PRIu64 ",\"pages_restored\":%" PRIu64
               ",\"pages_verified_intact\":%" PRIu64 ",\"pages_unrecoverable\":%" PRIu64
               ",\"files_missing\":%" PRIu64 ",\"unknown_file_ids\":%" PRIu64 "}\n",
               rep.segments_scanned, rep.batches_scanned, rep.batches_valid, rep.batches_torn,
               rep.pages_checked, rep.pages_restored, rep.pages_verified_intact,
               rep.pages_unrecoverable, rep.files_missing, rep.unknown_file_ids);
    } else {
        printf("recovery of %s: %s\n", a.dir, r == 0 ? "done" : atomio_strerror(r));
        printf("  segments scanned   %" PRIu64 "\n"
               "  batches            %" PRIu64 " found, %" PRIu64 " valid, %" PRIu64
               " torn (ignored: their pages never left the store)\n"
               "  pages checked      %" PRIu64 "\n"
               "  pages restored     %" PRIu64 "\n"
               "  pages unrecoverable %" PRIu64 "\n"
               "  files missing      %" PRIu64 "\n"
               "  unknown file ids   %" PRIu64 "\n",
               rep.segments_scanned, rep.batches_scanned, rep.batches_valid, rep.batches_torn,
               rep.pages_checked, rep.pages_restored, rep.pages_unrecoverable, rep.files_missing,
               rep.unknown_file_ids);
    }
    if (r < 0) {
        fprintf(stderr, "atomio-bench recover: %s (%s)\n", atomio_strerror(r), atomio_err_name(r));
        return EXIT_RUNTIME;
    }
    return cr < 0 ? EXIT_RUNTIME : 0;
}
