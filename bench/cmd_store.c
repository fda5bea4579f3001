/* SPDX-License-Identifier: MIT */
/*
 * cmd_store.c -- the doublewrite store's operator commands:
 *   `atomio-bench inspect DIR`      dump a store (format version 2) without changing it: the
 *                                   header (ring size, durable tail), the manifest (with each
 *                                   file's fence LSN and whether its path is relative), every
 *                                   record found in the ring (offset, LSN, valid or torn, live
 *                                   or released) and its slots;
 *   `atomio-bench recover DIR`      run recovery and print the report and how long it took;
 *   `atomio-bench store reset DIR`  the operator's explicit reset: discard every copy the
 *                                   store holds (atomio_store_reset) and say what was dropped.
 * Public atomio.h only; human output by default, --json for machines.
 * Exit status: 0 ok, 1 runtime error (or pages recovery could not save), 2 usage error.
 */
#include "clock.h"

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
int cmd_store(int argc, char **argv);

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

/* bytes_str() -- n as a short human size ("256 KiB", "1 TiB", "12345 B"). */
static const char *
bytes_str(uint64_t n, char out[32])
{
    static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (u < 4 && n >= 1024 && n % 1024 == 0) {
        n /= 1024;
        u++;
    }
    snprintf(out, 32, "%" PRIu64 " %s", n, unit[u]);
    return out;
}

enum { OPT_BRIEF = 1, OPT_DATA_ROOT = 2 };

struct store_args {
    const char *cmd; /* as the user typed it: "inspect", "recover", "store reset" */
    const char *dir;
    const char *data_root;
    int json;
    int brief; /* inspect: no slot lines */
};

static void
usage(const struct store_args *a, unsigned opts)
{
    printf("usage: atomio-bench %s DIR [--json]%s%s\n", a->cmd,
           opts & OPT_BRIEF ? " [--brief]" : "", opts & OPT_DATA_ROOT ? " [--data-root DIR]" : "");
    if (opts & OPT_BRIEF)
        printf("Dump the doublewrite store in DIR (the ctx's doublewrite_dir) without changing "
               "it:\nthe store header (ring size, durable tail), the manifest (file id, fence "
               "LSN, path),\nevery record in the ring (offset, LSN, valid or torn, live or "
               "released) and its page slots.\n  --brief  records only, no slots\n");
    else if (opts & OPT_DATA_ROOT)
        printf("Run recovery on the doublewrite store in DIR: rewrite every torn page the "
               "store\ncan restore, then print the recovery report. Exit 1 if pages could not "
               "be saved.\n  --data-root DIR  the engine's data root, against which relative "
               "manifest paths resolve\n");
    else
        printf("Discard every copy the doublewrite store in DIR holds (the operator's explicit "
               "reset:\nthe next ctx open lays the store out afresh) and print what was "
               "discarded. Refused\nwhile any process has the store open. Inspect the store "
               "first: its copies may be\nthe only good ones of torn pages.\n");
    printf("  --json   one JSON object on stdout\n");
}

/* parse() -- DIR plus flags from argv[first..]; prints a one-line usage error and returns -1
 * on bad input, 1 after --help. */
static int
parse(int argc, char **argv, int first, struct store_args *a, unsigned opts)
{
    for (int i = first; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            usage(a, opts);
            return 1;
        } else if (strcmp(s, "--json") == 0) {
            a->json = 1;
        } else if ((opts & OPT_BRIEF) && strcmp(s, "--brief") == 0) {
            a->brief = 1;
        } else if ((opts & OPT_DATA_ROOT) && strcmp(s, "--data-root") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "atomio-bench %s: --data-root needs a directory\n", a->cmd);
                return -1;
            }
            a->data_root = argv[++i];
        } else if (s[0] == '-' && s[1]) {
            fprintf(stderr, "atomio-bench %s: unknown option '%s'\n", a->cmd, s);
            return -1;
        } else if (!a->dir) {
            a->dir = s;
        } else {
            fprintf(stderr, "atomio-bench %s: unexpected argument '%s'\n", a->cmd, s);
            return -1;
        }
    }
    if (!a->dir) {
        fprintf(stderr, "atomio-bench %s: missing DIR (the doublewrite store directory)\n", a->cmd);
        return -1;
    }
    return 0;
}

/* ---- inspect ------------------------------------------------------------------------------ */

struct insp {
    struct store_args *a;
    FILE *out;
    uint64_t records, valid, live, torn, slots, bad_slots, files;
    uint64_t ring_size, tail;
    int first_record, first_file, first_slot;
};

static int
insp_cb(void *arg, const atomio_inspect_record *r)
{
    struct insp *in = arg;
    FILE *o = in->out;
    char u[37], b1[32], b2[32];
    switch (r->kind) {
    case ATOMIO_INSPECT_STORE:
        in->ring_size = r->ring_size;
        in->tail = r->tail;
        uuid_str(r->uuid, u);
        if (in->a->json)
            fprintf(o,
                    "{\"store\":{\"format_version\":%" PRIu32 ",\"uuid\":\"%s\","
                    "\"ring_size\":%" PRIu64 ",\"max_page_size\":%" PRIu32 ",\"tail\":%" PRIu64
                    "},\"files\":[",
                    r->format_version, u, r->ring_size, r->max_page_size, r->tail);
        else
            fprintf(o,
                    "store     format v%" PRIu32 ", uuid %s\n"
                    "ring      %s (%" PRIu64 " bytes), pages up to %s\n"
                    "tail      LSN %" PRIu64 " (records below it are released)\n",
                    r->format_version, u, bytes_str(r->ring_size, b1), r->ring_size,
                    bytes_str(r->max_page_size, b2), r->tail);
        break;
    case ATOMIO_INSPECT_FILE:
        in->files++;
        if (in->a->json) {
            fprintf(o,
                    "%s{\"file_id\":%" PRIu64 ",\"from_lsn\":%" PRIu64 ",\"relative\":%s,"
                    "\"path\":",
                    in->first_file ? "" : ",", r->file_id, r->from_lsn,
                    r->relative ? "true" : "false");
            json_string(o, r->path);
            fputc('}', o);
        } else {
            if (in->first_file)
                fprintf(o, "manifest  (the last record of a file id wins)\n");
            fprintf(o, "  file %-20" PRIu64 " from LSN %-12" PRIu64 " %s%s\n", r->file_id,
                    r->from_lsn, r->relative ? "<data root>/" : "", r->path);
        }
        in->first_file = 0;
        break;
    case ATOMIO_INSPECT_BATCH: {
        int valid = r->state == ATOMIO_BATCH_VALID;
        in->records++;
        in->valid += valid;
        in->torn += !valid;
        in->live += r->live != 0;
        const char *state = valid ? (r->live ? "live" : "released") : "torn";
        if (in->a->json) {
            fprintf(o,
                    "%s{\"offset\":%" PRIu64 ",\"lsn\":%" PRIu64 ",\"state\":\"%s\","
                    "\"live\":%s,\"pages\":%" PRIu32 ",\"bytes\":%" PRIu64 ",\"why\":",
                    in->first_record ? "],\"records\":[" : "]},", r->offset, r->lsn,
                    valid ? "valid" : "torn", r->live ? "true" : "false", r->pages, r->bytes);
            json_string(o, r->why);
            fprintf(o, ",\"slots\":[");
            in->first_slot = 1;
        } else {
            if (in->first_record)
                fprintf(o, "records   (offset in the store file, LSN)\n");
            fprintf(o,
                    "  offset %-12" PRIu64 " lsn %-14" PRIu64 " %-8s %4" PRIu32 " pages %9" PRIu64
                    " bytes%s%s\n",
                    r->offset, r->lsn, state, r->pages, r->bytes, valid ? "" : "  ",
                    valid ? "" : r->why);
        }
        in->first_record = 0;
        break;
    }
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
    struct store_args a = {.cmd = "inspect"};
    int p = parse(argc, argv, 1, &a, OPT_BRIEF);
    if (p)
        return p > 0 ? 0 : EXIT_USAGE;
    struct insp in = {.a = &a, .out = stdout, .first_record = 1, .first_file = 1};
    int r = atomio_store_inspect(a.dir, insp_cb, &in);
    if (r < 0) {
        if (a.json)
            fflush(stdout);
        fprintf(stderr, "atomio-bench inspect: %s: %s (%s)%s\n", a.dir, atomio_strerror(r),
                atomio_err_name(r), r == -ENOENT ? ": no store in this directory" : "");
        return EXIT_RUNTIME;
    }
    if (a.json) {
        fprintf(stdout, "%s", in.first_record ? "],\"records\":[" : "]}");
        fprintf(stdout,
                "],\"summary\":{\"files\":%" PRIu64 ",\"records\":%" PRIu64 ",\"valid\":%" PRIu64
                ",\"live\":%" PRIu64 ",\"torn\":%" PRIu64 ",\"slots\":%" PRIu64
                ",\"bad_slots\":%" PRIu64 "}}\n",
                in.files, in.records, in.valid, in.live, in.torn, in.slots, in.bad_slots);
    } else {
        if (in.first_file)
            printf("manifest  empty\n");
        if (in.first_record)
            printf("records   none\n");
        printf("summary   %" PRIu64 " records: %" PRIu64 " valid (%" PRIu64 " live, %" PRIu64
               " released), %" PRIu64 " torn; %" PRIu64 " slots%s\n",
               in.records, in.valid, in.live, in.valid - in.live, in.torn, in.slots,
               in.live ? " (recovery will check the live ones' pages)" : "");
    }
    return 0;
}

/* ---- recover ------------------------------------------------------------------------------ */

struct geom {
    uint64_t ring_size;
    uint32_t max_page_size;
    int found;
};

static int
geom_cb(void *arg, const atomio_inspect_record *r)
{
    struct geom *g = arg;
    if (r->kind != ATOMIO_INSPECT_STORE)
        return 0;
    g->ring_size = r->ring_size;
    g->max_page_size = r->max_page_size;
    g->found = 1;
    return 1; /* that is all we need */
}

int
cmd_recover(int argc, char **argv)
{
    struct store_args a = {.cmd = "recover"};
    int p = parse(argc, argv, 1, &a, OPT_DATA_ROOT);
    if (p)
        return p > 0 ? 0 : EXIT_USAGE;
    /* Open the store with its own geometry, so that opening it never lays it out anew. */
    struct geom g = {0};
    int r = atomio_store_inspect(a.dir, geom_cb, &g);
    if (r < 0 || !g.found) {
        fprintf(stderr, "atomio-bench recover: %s: %s (%s)%s\n", a.dir,
                r < 0 ? atomio_strerror(r) : "no store header", atomio_err_name(r),
                r == -ENOENT ? ": no store in this directory" : "");
        return EXIT_RUNTIME;
    }
    atomio_ctx_opts o;
    atomio_ctx_opts_init(&o);
    o.doublewrite_dir = a.dir;
    o.data_root = a.data_root;
    o.flags = ATOMIO_CTX_NO_RECOVER;
    o.doublewrite_store_bytes = g.ring_size;
    o.doublewrite_max_page_size = g.max_page_size;
    atomio_ctx *ctx = NULL;
    r = atomio_ctx_open(&o, &ctx);
    if (r < 0) {
        const char *why = atomio_last_reason();
        fprintf(stderr, "atomio-bench recover: cannot open the store in %s: %s (%s)%s%s\n", a.dir,
                atomio_strerror(r), atomio_err_name(r), *why ? ": " : "", why);
        return EXIT_RUNTIME;
    }
    atomio_recovery_report rep = ATOMIO_RECOVERY_REPORT_INIT;
    uint64_t t0 = now_ns();
    r = atomio_ctx_recover(ctx, &rep);
    double secs = (double)(now_ns() - t0) / 1e9; /* what an engine's start-up would wait */
    char why[512];
    snprintf(why, sizeof(why), "%s", r < 0 ? atomio_last_reason() : "");
    int cr = atomio_ctx_close(ctx);
    if (a.json) {
        printf("{\"result\":");
        json_string(stdout, atomio_err_name(r));
        printf(",\"records_scanned\":%" PRIu64 ",\"records_valid\":%" PRIu64
               ",\"records_torn\":%" PRIu64 ",\"pages_checked\":%" PRIu64
               ",\"pages_restored\":%" PRIu64 ",\"pages_verified_intact\":%" PRIu64
               ",\"pages_unrecoverable\":%" PRIu64 ",\"pages_unapplied\":%" PRIu64
               ",\"pages_discarded\":%" PRIu64 ",\"files_missing\":%" PRIu64
               ",\"unknown_file_ids\":%" PRIu64 ",\"headers_repaired\":%" PRIu64
               ",\"seconds\":%.3f}\n",
               rep.batches_scanned, rep.batches_valid, rep.batches_torn, rep.pages_checked,
               rep.pages_restored, rep.pages_verified_intact, rep.pages_unrecoverable,
               rep.pages_unapplied, rep.pages_discarded, rep.files_missing, rep.unknown_file_ids,
               rep.headers_repaired, secs);
    } else {
        printf("recovery of %s: %s\n", a.dir, r == 0 ? "done" : atomio_strerror(r));
        printf("  records            %" PRIu64 " found, %" PRIu64 " live, %" PRIu64
               " torn (ignored: their pages never left the store)\n"
               "  pages checked      %" PRIu64 "\n"
               "  pages restored     %" PRIu64 "\n"
               "  pages unrecoverable %" PRIu64 "\n"
               "  pages unapplied    %" PRIu64 " (kept in the store)\n"
               "  files missing      %" PRIu64 "\n"
               "  unknown file ids   %" PRIu64 "\n"
               "  headers repaired   %" PRIu64 "\n"
               "  took               %.3f s\n",
               rep.batches_scanned, rep.batches_valid, rep.batches_torn, rep.pages_checked,
               rep.pages_restored, rep.pages_unrecoverable, rep.pages_unapplied, rep.files_missing,
               rep.unknown_file_ids, rep.headers_repaired, secs);
    }
    if (r < 0) {
        fprintf(stderr, "atomio-bench recover: %s (%s)%s%s\n", atomio_strerror(r),
                atomio_err_name(r), *why ? ": " : "", why);
        return EXIT_RUNTIME;
    }
    return cr < 0 ? EXIT_RUNTIME : 0;
}

/* ---- store reset -------------------------------------------------------------------------- */

static int
store_reset(int argc, char **argv)
{
    struct store_args a = {.cmd = "store reset"};
    int p = parse(argc, argv, 2, &a, 0);
    if (p)
        return p > 0 ? 0 : EXIT_USAGE;
    atomio_recovery_report rep = ATOMIO_RECOVERY_REPORT_INIT;
    int r = atomio_store_reset(a.dir, &rep);
    if (r < 0) {
        const char *why = atomio_last_reason();
        fprintf(stderr, "atomio-bench store reset: %s: %s (%s)%s%s\n", a.dir, atomio_strerror(r),
                atomio_err_name(r), *why ? ": " : "", why);
        return EXIT_RUNTIME;
    }
    if (a.json)
        printf("{\"result\":\"OK\",\"records_discarded\":%" PRIu64 ",\"pages_discarded\":%" PRIu64
               "}\n",
               rep.batches_discarded, rep.pages_discarded);
    else
        printf("reset of %s: done\n"
               "  live records discarded %" PRIu64 "\n"
               "  page copies discarded  %" PRIu64 "\n",
               a.dir, rep.batches_discarded, rep.pages_discarded);
    return 0;
}

int
cmd_store(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "reset") == 0)
        return store_reset(argc, argv);
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: atomio-bench store reset DIR [--json]\n");
        return 0;
    }
    fprintf(stderr, "atomio-bench store: %s (try 'atomio-bench store reset --help')\n",
            argc < 2 ? "missing subcommand" : "unknown subcommand");
    return EXIT_USAGE;
}
