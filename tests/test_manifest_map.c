/* SPDX-License-Identifier: MIT */
/*
 * test_manifest_map.c -- the manifest as a process holds it in memory: one entry per file id,
 * the last record of an id winning, found by id among many thousands (an engine registers
 * every relation file it writes). And end to end: a process that joins an instance later reads
 * the records of every file the others registered, and finds a file registered before it
 * instead of recording it again.
 */
#include "atomio_internal.h"
#include "store/store.h"
#include "t_core.h"

#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmp[256], dwdir[320];

static void
setup(void)
{
    t_tmpdir(tmp, sizeof(tmp));
    t_subdir(dwdir, sizeof(dwdir), tmp, "dw");
}

static void
teardown(void)
{
    t_rmtree(tmp);
}

TestSuite(manifest_map, .init = setup, .fini = teardown);

#define MANY 20000u

/* id_of() -- small integers (engine-chosen ids) for even i, hash-like ids for odd i. */
static uint64_t
id_of(uint32_t i)
{
    return i % 2 ? (uint64_t)i * 0xD6E8FEB86659FD93ull ^ 0xA5A5A5A5A5A5A5A5ull : (uint64_t)i + 1;
}

static void
set(struct atomio_store *st, uint32_t i, uint32_t gen)
{
    char path[64];
    snprintf(path, sizeof(path), "base/%u/%u", gen, i);
    struct atomio_dw_man_rec m = {
        .file_id = id_of(i), .from_lsn = (uint64_t)gen * MANY + i, .flags = gen, .path = path};
    cr_assert_eq(atomio__man_set(st, &m), 0);
}

static void
expect(const struct atomio_store *st, uint32_t i, uint32_t gen)
{
    const struct atomio_dw_manifest_ent *e = atomio__man_find(st, id_of(i));
    cr_assert_not_null(e, "id of record %u not found", i);
    char path[64];
    snprintf(path, sizeof(path), "base/%u/%u", gen, i);
    cr_assert_str_eq(e->path, path);
    cr_assert_eq(e->from_lsn, (uint64_t)gen * MANY + i);
    cr_assert_eq(e->flags, gen);
}

Test(manifest_map, many_ids_found_and_the_last_record_wins)
{
    struct atomio_store st = {0};
    cr_assert_null(atomio__man_find(&st, 1), "an empty map finds nothing");
    for (uint32_t i = 0; i < MANY; i++)
        set(&st, i, 1);
    cr_assert_eq(st.nman, MANY);
    for (uint32_t i = 0; i < MANY; i++)
        expect(&st, i, 1);
    /* A later record of an id replaces its entry: no second entry. */
    for (uint32_t i = 0; i < MANY; i += 3)
        set(&st, i, 2);
    cr_assert_eq(st.nman, MANY);
    for (uint32_t i = 0; i < MANY; i++)
        expect(&st, i, i % 3 ? 1 : 2);
    cr_assert_null(atomio__man_find(&st, id_of(MANY)), "an id never recorded");
    cr_assert_null(atomio__man_find(&st, 0));

    atomio__man_clear(&st);
    cr_assert_eq(st.nman, 0);
    for (uint32_t i = 0; i < MANY; i += 97)
        cr_assert_null(atomio__man_find(&st, id_of(i)), "cleared: %u", i);
    set(&st, 5, 3);
    expect(&st, 5, 3);
    atomio__man_free(&st);
    cr_assert_null(st.man);
}

#define FILES 400u
#define PS    4096u

static atomio_ctx_opts
opts(void)
{
    atomio_ctx_opts co = t_ctx_opts(dwdir);
    co.instance = "map";
    co.doublewrite_mode = ATOMIO_DOUBLEWRITE_DEFERRED;
    return co;
}

static int
open_file(atomio_ctx *ctx, uint32_t i, atomio_file **f)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/f%u", tmp, i);
    atomio_file_opts fo =
        t_file_opts(PS, ATOMIO_PATH_DOUBLEWRITE, ATOMIO_IO_BUFFERED, ATOMIO_FILE_CREATE);
    return atomio_file_open(ctx, path, &fo, f);
}

static uint64_t
manifest_bytes(void)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/atomio-manifest.dblwr", dwdir);
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0, "%s", path);
    return (uint64_t)sb.st_size;
}

Test(manifest_map, a_process_that_joins_later_finds_every_file_registered_before, .timeout = 60)
{
    atomio_ctx_opts co = opts();
    atomio_ctx *ctx = t_ctx_open(&co);
    uint64_t ids[FILES];
    for (uint32_t i = 0; i < FILES; i++) {
        atomio_file *f;
        cr_assert_eq(open_file(ctx, i, &f), 0, "file %u", i);
        ids[i] = t_info(f).file_id;
        cr_assert_eq(atomio_file_close(f), 0);
    }
    uint64_t before = manifest_bytes();

    /* A new process: its map starts empty and is filled from the file. */
    int res[2];
    cr_assert_eq(pipe(res), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(res[0]);
        atomio_ctx_opts o = opts();
        atomio_ctx *c = NULL;
        int bad = atomio_ctx_open(&o, &c) == 0 ? -1 : 1000000;
        for (uint32_t i = 0; bad < 0 && i < FILES; i++) {
            atomio_file *f;
            if (open_file(c, FILES - 1 - i, &f) != 0 || t_info(f).file_id != ids[FILES - 1 - i] ||
                atomio_file_close(f) != 0)
                bad = (int)(FILES - 1 - i);
        }
        if (c)
            (void)atomio_ctx_close(c);
        if (write(res[1], &bad, sizeof(bad)) != (ssize_t)sizeof(bad))
            _exit(3);
        _exit(0);
    }
    close(res[1]);
    int bad = 0;
    cr_assert_eq(read(res[0], &bad, sizeof(bad)), (ssize_t)sizeof(bad));
    close(res[0]);
    int wst;
    cr_assert_eq(waitpid(pid, &wst, 0), pid);
    cr_assert(WIFEXITED(wst) && WEXITSTATUS(wst) == 0);
    cr_assert_eq(bad, -1, "the joining process: file %d (1000000: no ctx)", bad);
    cr_assert_eq(manifest_bytes(), before,
                 "files already recorded are found, not recorded again (%" PRIu64 " -> %" PRIu64
                 " bytes)",
                 before, manifest_bytes());
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}
