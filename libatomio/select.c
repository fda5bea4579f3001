/* SPDX-License-Identifier: MIT */
/*
 * select.c -- path selection (docs/design.md, "Probe and selection") as a pure function of the
 * probed capabilities and the engine's options. Every candidate that is not chosen keeps a one-line
 * reason; AUTO only ever returns a torn-write-safe path and never moves a BUFFERED engine to
 * O_DIRECT.
 */
#include "atomio_internal.h"

#include <string.h>

static void
reject_reasons(const struct atomio_select_in *in, struct atomio_select_out *out)
{
    const atomio_caps *c = in->caps;

    if (in->io_style == ATOMIO_IO_DIRECT)
        atomio__reason(out->reject[ATOMIO_PATH_BUFFERED_ATOMIC],
                       "engine asked for O_DIRECT I/O; buffered atomic writes use the page cache");
    else
        memcpy(out->reject[ATOMIO_PATH_BUFFERED_ATOMIC], c->reason_buffered, ATOMIO_REASON_LEN);

    if (in->io_style == ATOMIO_IO_BUFFERED)
        atomio__reason(out->reject[ATOMIO_PATH_DIRECT_ATOMIC],
                       "engine asked for page-cache I/O; never switched to O_DIRECT silently "
                       "(use io style ANY to allow it)");
    else
        memcpy(out->reject[ATOMIO_PATH_DIRECT_ATOMIC], c->reason_direct, ATOMIO_REASON_LEN);

    if (in->have_store)
        memcpy(out->reject[ATOMIO_PATH_DOUBLEWRITE], c->reason_doublewrite, ATOMIO_REASON_LEN);
    else if (in->store_too_small)
        atomio__reason(
            out->reject[ATOMIO_PATH_DOUBLEWRITE],
            "page %u does not fit a doublewrite segment (raise doublewrite_max_page_size or "
            "doublewrite_batch_pages)",
            c->page_size);
    else
        atomio__reason(out->reject[ATOMIO_PATH_DOUBLEWRITE],
                       "the context has no doublewrite store (ATOMIO_CTX_NO_DOUBLEWRITE or no "
                       "doublewrite_dir)");

    atomio__reason(out->reject[ATOMIO_PATH_UNSAFE],
                   "UNSAFE gives no torn-write protection; AUTO never picks it");
}

static void
choose(struct atomio_select_out *out, uint32_t path, const char *why)
{
    out->path = path;
    out->err = 0;
    memcpy(out->reason, why, ATOMIO_REASON_LEN);
    out->reject[path][0] = '\0';
}

static void
refuse(struct atomio_select_out *out, int err, uint32_t path)
{
    out->err = err;
    memcpy(out->reason, out->reject[path], ATOMIO_REASON_LEN);
}

static void
select_forced(const struct atomio_select_in *in, struct atomio_select_out *out)
{
    const atomio_caps *c = in->caps;
    uint32_t p = in->forced;
    char why[ATOMIO_REASON_LEN];

    switch (p) {
    case ATOMIO_PATH_DIRECT_ATOMIC:
        if (in->io_style == ATOMIO_IO_BUFFERED || c->direct_atomic == ATOMIO_ATOMIC_NONE)
            return refuse(out, ATOMIO_E_PATH_UNSUPPORTED, p);
        break;
    case ATOMIO_PATH_BUFFERED_ATOMIC:
        if (in->io_style == ATOMIO_IO_DIRECT)
            return refuse(out, ATOMIO_E_PATH_UNSUPPORTED, p);
        if (!c->folio_ok)
            return refuse(out, ATOMIO_E_FOLIO_ORDER, p);
        if (!c->buffered_atomic)
            return refuse(out, ATOMIO_E_PATH_UNSUPPORTED, p);
        break;
    case ATOMIO_PATH_DOUBLEWRITE:
        if (!in->have_store)
            return refuse(out, ATOMIO_E_NO_DOUBLEWRITE, p);
        break;
    case ATOMIO_PATH_UNSAFE:
        break;
    default:
        out->err = ATOMIO_E_INVAL;
        atomio__reason(out->reason, "unknown path %u", p);
        return;
    }
    atomio__reason(why, "forced %s: %s", atomio_path_name(p),
                   p == ATOMIO_PATH_UNSAFE ? "no torn-write protection" : out->reject[p]);
    choose(out, p, why);
}

static void
select_auto(const struct atomio_select_in *in, struct atomio_select_out *out)
{
    const atomio_caps *c = in->caps;
    char why[ATOMIO_REASON_LEN];

    bool may_buffered = in->io_style != ATOMIO_IO_DIRECT;
    bool may_direct = in->io_style != ATOMIO_IO_BUFFERED;

    /* 1. Buffered atomic, proven by the probe write. */
    if (may_buffered && c->buffered_atomic)
        return choose(out, ATOMIO_PATH_BUFFERED_ATOMIC, c->reason_buffered);

    /* 2. Hardware-backed O_DIRECT atomic. */
    if (may_direct && c->direct_atomic == ATOMIO_ATOMIC_HARDWARE)
        return choose(out, ATOMIO_PATH_DIRECT_ATOMIC, c->reason_direct);

    /* 3. Software-only atomic: the policy decides. */
    if (may_direct && c->direct_atomic == ATOMIO_ATOMIC_SOFTWARE) {
        if (!in->have_store) {
            atomio__reason(why, "software atomic writes are the only torn-safe path: %s",
                           c->reason_direct);
            return choose(out, ATOMIO_PATH_DIRECT_ATOMIC, why);
        }
        switch (in->policy) {
        case ATOMIO_POLICY_PREFER_ATOMIC:
            atomio__reason(why, "policy PREFER_ATOMIC takes %s", c->reason_direct);
            return choose(out, ATOMIO_PATH_DIRECT_ATOMIC, why);
        case ATOMIO_POLICY_CALIBRATE:
            if (!in->calib_atomic_ns || !in->calib_doublewrite_ns) {
                out->needs_calibration = true;
                atomio__reason(why, "policy CALIBRATE: not measured yet; doublewrite until then");
                return choose(out, ATOMIO_PATH_DOUBLEWRITE, why);
            }
            if (in->calib_atomic_ns <= in->calib_doublewrite_ns) {
                atomio__reason(why,
                               "policy CALIBRATE measured software atomic %llu ns/page <= "
                               "doublewrite %llu ns/page",
                               (unsigned long long)in->calib_atomic_ns,
                               (unsigned long long)in->calib_doublewrite_ns);
                atomio__reason(
                    out->reject[ATOMIO_PATH_DOUBLEWRITE],
                    "policy CALIBRATE measured doublewrite slower (%llu vs %llu ns/page)",
                    (unsigned long long)in->calib_doublewrite_ns,
                    (unsigned long long)in->calib_atomic_ns);
                return choose(out, ATOMIO_PATH_DIRECT_ATOMIC, why);
            }
            atomio__reason(out->reject[ATOMIO_PATH_DIRECT_ATOMIC],
                           "policy CALIBRATE measured software atomic slower (%llu vs %llu "
                           "ns/page)",
                           (unsigned long long)in->calib_atomic_ns,
                           (unsigned long long)in->calib_doublewrite_ns);
            atomio__reason(why,
                           "policy CALIBRATE measured doublewrite %llu ns/page < software atomic "
                           "%llu ns/page",
                           (unsigned long long)in->calib_doublewrite_ns,
                           (unsigned long long)in->calib_atomic_ns);
            return choose(out, ATOMIO_PATH_DOUBLEWRITE, why);
        default:
            atomio__reason(out->reject[ATOMIO_PATH_DIRECT_ATOMIC],
                           "software-only (copy-on-write) atomic writes are several times slower "
                           "than plain writes and fail with ENOSPC on fragmented space; policy "
                           "PREFER_FAST");
            atomio__reason(why, "policy PREFER_FAST: doublewrite beats software-only atomic "
                                "writes");
            return choose(out, ATOMIO_PATH_DOUBLEWRITE, why);
        }
    }

    /* 4. Doublewrite. A page-cache engine is told so plainly: O_DIRECT atomics may work on the
     * file but are not for it, and its in-place writes stay in the page cache. */
    bool page_cache_only = in->io_style == ATOMIO_IO_BUFFERED;
    if (in->have_store) {
        if (page_cache_only)
            atomio__reason(why, "page-cache engine without buffered atomic writes: doublewrite "
                                "store, in-place writes through the page cache");
        else
            atomio__reason(why, "no usable atomic write for this file: doublewrite store");
        return choose(out, ATOMIO_PATH_DOUBLEWRITE, why);
    }
    out->err = ATOMIO_E_NO_DOUBLEWRITE;
    if (page_cache_only)
        atomio__reason(out->reason, "no torn-write-safe path for a page-cache engine: no "
                                    "buffered atomic writes and no doublewrite store");
    else
        atomio__reason(out->reason,
                       "no torn-write-safe path: no usable atomic write and no doublewrite store");
}

/*
 * not_chosen() -- a candidate that could have worked still carries the probe's positive
 * verdict ("hardware atomic writes: ..."); say plainly that it was available and why the
 * chosen path won, so a reader of atomio_file_info never mistakes it for the choice.
 */
static void
not_chosen(const struct atomio_select_in *in, struct atomio_select_out *out)
{
    const atomio_caps *c = in->caps;
    const char *positive[ATOMIO__PATH_COUNT] = {0};
    if (in->io_style != ATOMIO_IO_BUFFERED && c->direct_atomic != ATOMIO_ATOMIC_NONE)
        positive[ATOMIO_PATH_DIRECT_ATOMIC] = c->reason_direct;
    if (in->io_style != ATOMIO_IO_DIRECT && c->buffered_atomic)
        positive[ATOMIO_PATH_BUFFERED_ATOMIC] = c->reason_buffered;
    if (in->have_store)
        positive[ATOMIO_PATH_DOUBLEWRITE] = c->reason_doublewrite;
    for (uint32_t p = ATOMIO_PATH_DIRECT_ATOMIC; p < ATOMIO_PATH_UNSAFE; p++) {
        if (p == out->path || !positive[p] || strcmp(out->reject[p], positive[p]) != 0)
            continue;
        char why[ATOMIO_REASON_LEN];
        atomio__reason(why, "available but not chosen: %s %s (%s)", atomio_path_name(out->path),
                       in->forced != ATOMIO_PATH_AUTO ? "was forced" : "ranks first", positive[p]);
        memcpy(out->reject[p], why, sizeof(why));
    }
}

void
atomio__select(const struct atomio_select_in *in, struct atomio_select_out *out)
{
    memset(out, 0, sizeof(*out));
    reject_reasons(in, out);
    if (in->forced != ATOMIO_PATH_AUTO)
        select_forced(in, out);
    else
        select_auto(in, out);
    if (!out->err)
        not_chosen(in, out);
}
