/* SPDX-License-Identifier: MIT */
/*
 * test_bench_store.c -- `atomio-bench inspect DIR` and `atomio-bench recover DIR`
 * (bench/cmd_store.c, linked here directly): what they print for a store holding a valid and
 * a torn batch, that recover restores the torn page and inspect then shows an empty store,
 * and their exit codes (0 ok, 1 runtime error, 2 usage error).
 */
#include "atomio_internal.h"
#include "store/store.h"
#include "helpers.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cmd_inspect(int argc, char **argv);
int cmd_recover(int argc, char **argv);

static char tmp[256], dwdir[300], dpath[300];

static void
setup(void)
{
    t_tmpdir(tmp, sizeof(tmp));
    snprintf(dwdir, sizeof(dwdir), "%s/dw", tmp);
    snprintf(dpath, sizeof(dpath), "%s/data.db", tmp);
    cr_assert_eq(mkdir(dwdir, 0700), 0);
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

/* A store with page 1 of file 5 torn in the data file and its copy in a valid batch, plus a
 * torn batch in another segment. */
static void
make_store(void)
{
    atomio_ctx_opts o;
    atomio_ctx_opts_init(&o);
    o.doublewrite_dir = dwdir;
    o.doublewrite_batch_pages = 4;
    o.doublewrite_max_page_size = 4096;
    o.submitter = ATOMIO_SUBMIT_SYNC;
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
    struct atomio_dw_geom g = ctx->store->g;
    cr_assert_eq(atomio_ctx_close(ctx), 0);

    uint8_t *b = calloc(1, 8192);
    t_fill(b + 4096, 4096, 77);
    struct atomio_dw_slot s = {.file_id = 5,
                               .page_no = 1,
                               .seq = 40,
                               .offset = 4096,
                               .page_size = 4096,
                               .crc = atomio__crc32c(0, b + 4096, 4096),
                               .index = 0};
    atomio__dw_slot_encode(b, &s);
    struct atomio_dw_batch_hdr hb = {.seq = 40, .count = 1, .byte_len = 8192};
    atomio__dw_batch_hdr_encode(b, &hb, g.uuid);
    int fd = open(t_join(dwdir, ATOMIO_DW_STORE_FILE), O_WRONLY);
    cr_assert_eq(pwrite(fd, b, 8192, (off_t)atomio__dw_seg_off(&g, 0)), 8192);
    b[4096 + 9] ^= 1; /* the same batch, torn, in segment 2 */
    cr_assert_eq(pwrite(fd, b, 8192, (off_t)atomio__dw_seg_off(&g, 2)), 8192);
    fsync(fd);
    close(fd);
    fd = open(dpath, O_WRONLY);
    cr_assert_eq(pwrite(fd, b + 4096, 2048, 4096), 2048); /* half of the new page */
    close(fd);
    free(b);
}

Test(bench_store, inspect_then_recover_then_inspect)
{
    make_store();
    static char out[65536];
    char *av[] = {"inspect", dwdir, NULL};
    cr_assert_eq(run(cmd_inspect, out, sizeof(out), 2, av), 0);
    cr_assert(strstr(out, "3 segments"), "%s", out);
    cr_assert(strstr(out, "data.db"), "manifest path missing:\n%s", out);
    cr_assert(strstr(out, "seq 40") && strstr(out, "VALID") && strstr(out, "TORN"), "%s", out);
    cr_assert(strstr(out, "page 1 "), "slot line missing:\n%s", out);
    cr_assert(strstr(out, "BAD"), "the torn slot is not flagged:\n%s", out);
    cr_assert(strstr(out, "2 of 3 segments hold a batch: 1 valid, 1 torn"), "%s", out);

    char *aj[] = {"inspect", dwdir, "--json", NULL};
    cr_assert_eq(run(cmd_inspect, out, sizeof(out), 3, aj), 0);
    cr_assert_eq(out[0], '{');
    cr_assert(strstr(out, "\"state\":\"valid\"") && strstr(out, "\"state\":\"torn\""), "%s", out);
    cr_assert(strstr(out, "\"summary\":{\"files\":1,\"batches\":2,\"valid\":1,\"torn\":1"), "%s",
              out);

    char *ar[] = {"recover", dwdir, NULL};
    cr_assert_eq(run(cmd_recover, out, sizeof(out), 2, ar), 0);
    cr_assert(strstr(out, "pages restored     1"), "%s", out);
    cr_assert(strstr(out, "1 valid, 1 torn"), "%s", out);
    uint8_t want[4096], got[4096];
    t_fill(want, 4096, 77);
    int fd = open(dpath, O_RDONLY);
    cr_assert_eq(pread(fd, got, 4096, 4096), 4096);
    close(fd);
    cr_assert_eq(memcmp(want, got, 4096), 0, "recover did not restore the torn page");

    cr_assert_eq(run(cmd_inspect, out, sizeof(out), 2, av), 0);
    cr_assert(strstr(out, "0 of 3 segments hold a batch"), "%s", out);
    char *arj[] = {"recover", dwdir, "--json", NULL};
    cr_assert_eq(run(cmd_recover, out, sizeof(out), 3, arj), 0);
    cr_assert(strstr(out, "\"result\":\"OK\"") && strstr(out, "\"pages_restored\":0"), "%s", out);
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
    char *help[] = {"recover", "--help", NULL};
    cr_assert_eq(run(cmd_recover, out, sizeof(out), 2, help), 0);
    cr_assert(strstr(out, "usage: atomio-bench recover DIR"), "%s", out);
    char *missing[] = {"inspect", "/nonexistent/atomio", NULL};
    cr_assert_eq(run(cmd_inspect, out, sizeof(out), 2, missing), 1);
    char *empty[] = {"recover", dwdir, NULL}; /* a directory without a store */
    cr_assert_eq(run(cmd_recover, out, sizeof(out), 2, empty), 1);
}
