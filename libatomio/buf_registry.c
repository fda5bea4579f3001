/* SPDX-License-Identifier: MIT */
/*
 * buf_registry.c -- which memory came from atomio_page_alloc(). The buffered-atomic path hands
 * such pages to the kernel as they are (they are pre-faulted, so the kernel's copy cannot fault
 * half-way through a folio) and bounce-copies everything else; ATOMIO_FILE_NO_COPY refuses
 * everything else. buf.c reports every live atomio_page_alloc() buffer here; the lookup is a
 * binary search over one address-sorted table (live buffers never overlap), each entry
 * remembering its ctx so another ctx's buffer is not taken for ours.
 */
#include "atomio_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct range {
    uintptr_t start;
    size_t len;
    const atomio_ctx *ctx;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct range *reg;
static size_t reg_n, reg_cap;

/* first_above() -- index of the first entry starting above addr (reg_lock held). */
static size_t
first_above(uintptr_t addr)
{
    size_t lo = 0, hi = reg_n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (reg[mid].start <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int
atomio__buf_track(const atomio_ctx *ctx, void *p, size_t len)
{
    int r = 0;
    pthread_mutex_lock(&reg_lock);
    if (reg_n == reg_cap) {
        size_t cap = reg_cap ? 2 * reg_cap : 64;
        struct range *nr = realloc(reg, cap * sizeof(*nr));
        if (!nr) {
            r = -ENOMEM;
            goto out;
        }
        reg = nr;
        reg_cap = cap;
    }
    size_t i = first_above((uintptr_t)p);
    memmove(&reg[i + 1], &reg[i], (reg_n - i) * sizeof(reg[0]));
    reg[i] = (struct range){.start = (uintptr_t)p, .len = len, .ctx = ctx};
    reg_n++;
out:
    pthread_mutex_unlock(&reg_lock);
    return r;
}

void
atomio__buf_untrack(const atomio_ctx *ctx, void *p)
{
    pthread_mutex_lock(&reg_lock);
    size_t i = first_above((uintptr_t)p);
    if (i > 0 && reg[i - 1].start == (uintptr_t)p && reg[i - 1].ctx == ctx) {
        memmove(&reg[i - 1], &reg[i], (reg_n - i) * sizeof(reg[0]));
        reg_n--;
    }
    pthread_mutex_unlock(&reg_lock);
}

void
atomio__buf_untrack_ctx(const atomio_ctx *ctx)
{
    pthread_mutex_lock(&reg_lock);
    size_t k = 0;
    for (size_t i = 0; i < reg_n; i++)
        if (reg[i].ctx != ctx)
            reg[k++] = reg[i];
    reg_n = k;
    if (!reg_n) {
        free(reg);
        reg = NULL;
        reg_cap = 0;
    }
    pthread_mutex_unlock(&reg_lock);
}

bool
atomio__buf_is_prefaulted(atomio_ctx *ctx, const void *p, size_t len)
{
    if (!ctx || !p)
        return false;
    uintptr_t addr = (uintptr_t)p;
    bool ok = false;
    pthread_mutex_lock(&reg_lock);
    size_t i = first_above(addr);
    if (i > 0) {
        const struct range *b = &reg[i - 1];
        ok = b->ctx == ctx && addr - b->start <= b->len && len <= b->len - (addr - b->start);
    }
    pthread_mutex_unlock(&reg_lock);
    return ok;
}
