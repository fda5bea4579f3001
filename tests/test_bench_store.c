/* SPDX-License-Identifier: MIT */
/*
 * test_bench_store.c -- `atomio-bench inspect DIR`, `atomio-bench recover DIR` and
 * `atomio-bench store reset DIR` (bench/cmd_store.c, linked here directly) on a version 2
 * store: what they print for a ring holding a live record and a torn one (ring size, tail,
 * each record's offset, LSN and state, the manifest's fence LSN and relative paths), that
 * recover restores the torn page (given the data root the relative path needs) and inspect
 * then shows the record released, that store reset says what it discarded and is refused
 * while the store is open, and their exit codes (0 ok, 1 runtime error, 2 usage error).
 */
#include "atomio_internal.h"
#include "helpers.h"
#include "store/store.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cmd_inspect(int argc, char **argv);
int cmd_recover(int argc, char **argv);
int cmd_store(int argc, char **argv);

static char tmp[256], dwdir[300], droot[300], dpath[400];

static void
setup(void)
{
    t_tmpdir(tmp, sizeof(tmp));
    t_subdir(dwdir, sizeof(dwdir), tmp, "dw");
    t_subdir(droot, sizeof(droot), tmp, "data");
    snprintf(dpath, sizeof(dpath), "%s/data.db", droot);
}

static void
teardown(void)
{
    t_rmtree(tmp);
}

TestSuite(bench_store, .init = setup, .fini = teardown);

/* run() -- call a subcommand with stdout captured; returns its exit status. */
static int
run(int (*cmd)(int, char **), char *out, size_t outlen, int argc, char **argv)
{
    fflush(stdout);
    char cap[400];
    snprintf(cap, sizeof(cap), "%s/stdout", tmp);
    int fd = open(cap, O_CREAT | O_TRUNC | O_RDWR, 0600);
    int saved = dup(1);
    dup2(fd, 1);
    int rc = cmd(argc, argv);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    ssize_t n = pread(fd, out, outlen - 1, 0);
    close(fd);
    out[n > 0 ? n : 0] = '\0';
    return rc;
}

#define LIVE_LSN (64u * 1024u)  /* the crafted live record */
#define TORN_LSN (128u * 1024u) /* its torn twin */

static atomio_ctx_opts
opts(void)
{
    atomio_ctx_opts o;
    atomio_ctx_opts_init(&o);
    o.doublewrite_dir = dwdir;
    o.data_root = droot;
    o.doublewrite_store_bytes = 256 * 1024;
    o.doublewrite_batch_pages = 4;
    o.doublewrite_max_page_size = 4096;
    o.submitter = ATOMIO_SUBMIT_SYNC;
    return o;
}

/*
 * A store whose manifest records data.db (file 5) relative to the data root, with three
 * released records (pages 0..2 written through the store) and a live record holding page 1 of file
 * 5 (pattern 77) while the data file holds half of that page, and the same record torn at another
 * place of the ring.
 */
static void
make_store(void)
{
    atomio_ctx_opts o = opts();
    atomio_ctx *ctx;
    cr_assert_eq(atomio_ctx_open(&o, &ctx), 0);
    atomio_file_opts fo;
    atomio_file_opts_init(&fo);
    fo.flags = ATOMIO_FILE_CREATE;
    fo.page_size = 4096;
    fo.path = ATOMIO_PATH_DOUBLEWRITE;
    fo.file_id = 5;
    atomio_file *f;
    cr_assert_eq(atomio_file_open(ctx, dpath, &fo, &f), 0);
    uint8_t p[4096];
    for (uint64_t i = 0; i < 3; i++) {
        t_fill(p, sizeof(p), i);
        cr_assert_eq(atomio_write(f, i, p, 0), 0);
    }
    /* Recovery moves the durable tail past these three records: they show as released. */
    cr_assert_eq(atomio_ctx_recover(ctx, NULL), 0);
    struct atomio_dw_geom g = ctx->store->g;
    cr_assert_eq(g.tail, 3 * (512 + 4096));
    cr_assert_lt(g.tail, LIVE_LSN);
    cr_assert_eq(atomio_ctx_close(ctx), 0);

    size_t len = 512 + 4096;
    uint8_t *b = calloc(1, len);
    t_fill(b + 512, 4096, 77);
    struct atomio_dw_slot s = {.file_id = 5,
                               .page_no = 1,
                               .offset = 512,
                               .page_size = 4096,
                               .crc = atomio__crc32c(0, b + 512, 4096),
                               .index = 0};
    atomio__dw_slot_encode(b, &s);
    struct atomio_dw_batch_hdr hb = {
        .lsn = LIVE_LSN, .count = 1, .byte_len = len, .ring_size = g.ring_size};
    atomio__dw_batch_hdr_encode(b, &hb, g.uuid);
    int fd = open(t_join(dwdir, ATOMIO_DW_STORE_FILE), O_WRONLY);
    cr_assert_eq(pwrite(fd, b, len, (off_t)atomio__dw_ring_pos(&g, LIVE_LSN)), (ssize_t)len);
    hb.lsn = TORN_LSN;
    atomio__dw_batch_hdr_encode(b, &hb, g.uuid);
    b[512 + 9] ^= 1;
    cr_assert_eq(pwrite(fd, b, len, (off_t)atomio__dw_ring_pos(&g, TORN_LSN)), (ssize_t)len);
    fsync(fd);
    close(fd);
    fd = open(dpath, O_WRONLY);
    t_fill(b, 4096, 77);
    cr_assert_eq(pwrite(fd, b, 2048, 4096), 2048); /* half of the new page */
    close(fd);
    free(b);
}

static void
page1_is_restored(int want)
{
    uint8_t exp[4096], got[4096];
    t_fill(exp, 4096, 77);
    int fd = open(dpath, O_RDONLY);
    cr_assert_eq(pread(fd, got, 4096, 4096), 4096);
    close(fd);
    cr_assert_eq(memcmp(exp, got, 4096) == 0, want, "page 1 %s restored", want ? "not" : "was");
}

Test(bench_store, inspect_then_recover_then_inspect)
{
    make_store();
    static char out[65536], line[128];
    char *av[] = {"inspect", dwdir, NULL};
    cr_assert_eq(run(cmd_inspect, out, sizeof(out), 2, av), 0);
    cr_assert(strstr(out, "format v2"), "%s", out);
    cr_assert(strstr(out, "ring      256 KiB (262144 bytes), pages up to 4 KiB"), "%s", out);
    cr_assert(strstr(out, "tail      LSN 13824 "), "%s", out);
    cr_assert(strstr(out, "offset 8192         lsn 0              released"), "%s", out);
    cr_assert(strstr(out, "<data root>/data.db"), "relative manifest path missing:\n%s", out);
    cr_assert(strstr(out, "file 5 "), "%s", out);
    snprintf(line, sizeof(line), "offset %-12u lsn %-14u live", 8192 + LIVE_LSN, LIVE_LSN);
    cr_assert(strstr(out, line), "no '%s' in:\n%s", line, out);
    snprintf(line, sizeof(line), "offset %-12u lsn %-14u torn", 8192 + TORN_LSN, TORN_LSN);
    cr_assert(strstr(out, line), "no '%s' in:\n%s", line, out);
    cr_assert(strstr(out, "page bytes do not match"), "the torn record's reason:\n%s", out);
    cr_assert(strstr(out, "page 1 ") && strstr(out, " ok"), "slot line missing:\n%s", out);
    cr_assert(strstr(out, " torn; "), "%s", out);
    cr_assert(strstr(out, "live, "), "%s", out);

    char *ab[] = {"inspect", dwdir, "--brief", NULL};
    cr_assert_eq(run(cmd_inspect, out, sizeof(out), 3, ab), 0);
    cr_assert_null(strstr(out, "slot "), "--brief prints slots:\n%s", out);

    char *aj[] = {"inspect", dwdir, "--json", NULL};
    cr_assert_eq(run(cmd_inspect, out, sizeof(out), 3, aj), 0);
    cr_assert_eq(out[0], '{');
    cr_assert(strstr(out, "\"ring_size\":262144,\"max_page_size\":4096,\"tail\":13824}"), "%s",
              out);
    cr_assert(strstr(out, "\"file_id\":5,\"from_lsn\":0,\"relative\":true,\"path\":\"data.db\""),
              "%s", out);
    snprintf(line, sizeof(line), "{\"offset\":%u,\"lsn\":%u,\"state\":\"valid\",\"live\":true",
             8192 + LIVE_LSN, LIVE_LSN);
    cr_assert(strstr(out, line), "no '%s' in:\n%s", line, out);
    snprintf(line, sizeof(line), "{\"offset\":%u,\"lsn\":%u,\"state\":\"torn\",\"live\":false",
             8192 + TORN_LSN, TORN_LSN);
    cr_assert(strstr(out, line), "no '%s' in:\n%s", line, out);
    cr_assert(strstr(out, "\"live\":1,\"torn\":1"), "%s", out);

    /* Without the data root the relative path cannot be resolved: the copy is kept. */
    char *ar0[] = {"recover", dwdir, NULL};
    cr_assert_eq(run(cmd_recover, out, sizeof(out), 2, ar0), 1);
    cr_assert(strstr(out, "pages unapplied    1"), "%s", out);
    page1_is_restored(0);

    char *ar[] = {"recover", dwdir, "--data-root", droot, NULL};
    cr_assert_eq(run(cmd_recover, out, sizeof(out), 4, ar), 0);
    cr_assert(strstr(out, "pages restored     1"), "%s", out);
    cr_assert(strstr(out, " torn (ignored"), "%s", out);
    const char *took = strstr(out, "  took               ");
    cr_assert(took && strstr(took, " s\n"), "how long recovery took:\n%s", out);
    cr_assert_geq(strtod(took + strlen("  took               "), NULL), 0.0);
    page1_is_restored(1);

    cr_assert_eq(run(cmd_inspect, out, sizeof(out), 2, av), 0);
    snprintf(line, sizeof(line), "offset %-12u lsn %-14u released", 8192 + LIVE_LSN, LIVE_LSN);
    cr_assert(strstr(out, line), "the record is not released after recovery:\n%s", out);
    cr_assert(strstr(out, "(0 live"), "%s", out);
    char *arj[] = {"recover", dwdir, "--json", NULL};
    cr_assert_eq(run(cmd_recover, out, sizeof(out), 3, arj), 0);
    cr_assert(strstr(out, "\"result\":\"OK\"") && strstr(out, "\"pages_restored\":0"), "%s", out);
    cr_assert(strstr(out, ",\"seconds\":"), "%s", out);
}

Test(bench_store, store_reset_says_what_it_discarded)
{
    make_store();
    static char out[8192];
    /* Refused while a process has the store open. */
    atomio_ctx_opts o = opts();
    o.flags = ATOMIO_CTX_NO_RECOVER;
    atomio_ctx *ctx;
    cr_assert_eq(atomio_ctx_open(&o, &ctx), 0);
    char *av[] = {"store", "reset", dwdir, NULL};
    cr_assert_eq(run(cmd_store, out, sizeof(out), 3, av), 1);
    cr_assert_eq(atomio_ctx_close(ctx), 0);

    cr_assert_eq(run(cmd_store, out, sizeof(out), 3, av), 0);
    cr_assert(strstr(out, "live records discarded 1"), "%s", out);
    cr_assert(strstr(out, "page copies discarded  1"), "%s", out);
    char *ai[] = {"inspect", dwdir, NULL};
    cr_assert_eq(run(cmd_inspect, out, sizeof(out), 2, ai), 1, "the store is empty: no header");
    page1_is_restored(0); /* a reset never applies anything */

    /* A fresh store lays out on the next open; resetting it discards nothing. */
    o.flags = 0;
    cr_assert_eq(atomio_ctx_open(&o, &ctx), 0);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
    char *aj[] = {"store", "reset", dwdir, "--json", NULL};
    cr_assert_eq(run(cmd_store, out, sizeof(out), 4, aj), 0);
    cr_assert(strstr(out, "{\"result\":\"OK\",\"records_discarded\":0,\"pages_discarded\":0}"),
              "%s", out);
}

Test(bench_store, exit_codes)
{
    static char out[4096];
    char *none[] = {"inspect", NULL};
    cr_assert_eq(run(cmd_inspect, out, sizeof(out), 1, none), 2);
    char *bad[] = {"inspect", dwdir, "--frobnicate", NULL};
    cr_assert_eq(run(cmd_inspect, out, sizeof(out), 3, bad), 2);
    char *two[] = {"recover", dwdir, dwdir, NULL};
    cr_assert_eq(run(cmd_recover, out, sizeof(out), 3, two), 2);
    char *noroot[] = {"recover", dwdir, "--data-root", NULL};
    cr_assert_eq(run(cmd_recover, out, sizeof(out), 3, noroot), 2);
    char *help[] = {"recover", "--help", NULL};
    cr_assert_eq(run(cmd_recover, out, sizeof(out), 2, help), 0);
    cr_assert(strstr(out, "usage: atomio-bench recover DIR"), "%s", out);
    char *missing[] = {"inspect", "/nonexistent/atomio", NULL};
    cr_assert_eq(run(cmd_inspect, out, sizeof(out), 2, missing), 1);
    char *empty[] = {"recover", dwdir, NULL}; /* a directory without a store */
    cr_assert_eq(run(cmd_recover, out, sizeof(out), 2, empty), 1);
    char *st0[] = {"store", NULL};
    cr_assert_eq(run(cmd_store, out, sizeof(out), 1, st0), 2);
    char *st1[] = {"store", "frob", dwdir, NULL};
    cr_assert_eq(run(cmd_store, out, sizeof(out), 3, st1), 2);
    char *st2[] = {"store", "reset", NULL};
    cr_assert_eq(run(cmd_store, out, sizeof(out), 2, st2), 2);
    char *st3[] = {"store", "reset", "--help", NULL};
    cr_assert_eq(run(cmd_store, out, sizeof(out), 3, st3), 0);
    cr_assert(strstr(out, "usage: atomio-bench store reset DIR"), "%s", out);
    char *st4[] = {"store", "reset", "/nonexistent/atomio", NULL};
    cr_assert_eq(run(cmd_store, out, sizeof(out), 3, st4), 1);
}
