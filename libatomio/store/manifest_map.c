/* SPDX-License-Identifier: MIT */
/*
 * store/manifest_map.c -- the manifest as this process has read it: one entry per file id (the
 * last record of an id wins), and an index from file id to entry. Every process that joins an
 * instance reads the whole manifest when it first opens a file, and every file it opens looks
 * its id up: with an engine's thousands of relation files both must cost O(1) per record, not
 * a scan of the entries. Callers hold the store's mlock.
 */
#include "store/store.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define EMPTY 0u /* index slots hold entry number + 1 */

static size_t
slot_of(uint64_t file_id, size_t cap)
{
    /* Ids may be engine-chosen small integers or hashes: mix them before masking. */
    uint64_t h = file_id * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 32) & (cap - 1);
}

/* index_put() -- entry i under its id, in an index with room. */
static void
index_put(struct atomio_store *st, size_t i)
{
    size_t cap = st->man_index_cap;
    size_t s = slot_of(st->man[i].file_id, cap);
    while (st->man_index[s] != EMPTY)
        s = (s + 1) & (cap - 1);
    st->man_index[s] = (uint32_t)(i + 1);
}

/* index_grow() -- keep the index at most half full. */
static int
index_grow(struct atomio_store *st, size_t want)
{
    if (want * 2 <= st->man_index_cap)
        return 0;
    size_t cap = st->man_index_cap ? st->man_index_cap : 64;
    while (cap < want * 2)
        cap *= 2;
    if (cap > UINT32_MAX)
        return -ENOMEM;
    uint32_t *idx = calloc(cap, sizeof(*idx));
    if (!idx)
        return -ENOMEM;
    free(st->man_index);
    st->man_index = idx;
    st->man_index_cap = cap;
    for (size_t i = 0; i < st->nman; i++)
        index_put(st, i);
    return 0;
}

/* find() -- the entry number of file_id, or SIZE_MAX. */
static size_t
find(const struct atomio_store *st, uint64_t file_id)
{
    size_t cap = st->man_index_cap;
    if (cap == 0)
        return SIZE_MAX;
    for (size_t s = slot_of(file_id, cap);; s = (s + 1) & (cap - 1)) {
        uint32_t v = st->man_index[s];
        if (v == EMPTY)
            return SIZE_MAX;
        if (st->man[v - 1].file_id == file_id)
            return v - 1;
    }
}

const struct atomio_dw_manifest_ent *
atomio__man_find(const struct atomio_store *st, uint64_t file_id)
{
    size_t i = find(st, file_id);
    return i == SIZE_MAX ? NULL : &st->man[i];
}

int
atomio__man_set(struct atomio_store *st, const struct atomio_dw_man_rec *m)
{
    char *copy = strdup(m->path);
    if (!copy)
        return -ENOMEM;
    size_t i = find(st, m->file_id);
    struct atomio_dw_manifest_ent *e = i == SIZE_MAX ? NULL : &st->man[i];
    if (!e) {
        if (index_grow(st, st->nman + 1) < 0) {
            free(copy);
            return -ENOMEM;
        }
        if (st->nman == st->cap_man) {
            size_t cap = st->cap_man ? st->cap_man * 2 : 16;
            void *p = realloc(st->man, cap * sizeof(*st->man));
            if (!p) {
                free(copy);
                return -ENOMEM;
            }
            st->man = p;
            st->cap_man = cap;
        }
        e = &st->man[st->nman++];
        e->path = NULL;
        e->file_id = m->file_id;
        index_put(st, st->nman - 1);
    }
    free(e->path);
    *e = (struct atomio_dw_manifest_ent){
        .file_id = m->file_id, .from_lsn = m->from_lsn, .flags = m->flags, .path = copy};
    return 0;
}

void
atomio__man_clear(struct atomio_store *st)
{
    for (size_t i = 0; i < st->nman; i++)
        free(st->man[i].path);
    st->nman = 0;
    if (st->man_index)
        memset(st->man_index, 0, st->man_index_cap * sizeof(*st->man_index));
}

void
atomio__man_free(struct atomio_store *st)
{
    atomio__man_clear(st);
    free(st->man);
    free(st->man_index);
    st->man = NULL;
    st->man_index = NULL;
    st->cap_man = st->man_index_cap = 0;
}
