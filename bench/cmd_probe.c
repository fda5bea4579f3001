/* SPDX-License-Identifier: MIT */
/*
 * cmd_probe.c -- `atomio-bench probe PATH`: every raw figure atomio_probe() gathered for a file
 * (or a directory's filesystem) at a page size, the verdict on each write path with the
 * library's reason, and what AUTO picks and why. Nothing here decides anything: the verdicts
 * and reasons come from the library, this file only presents them. Never writes PATH.
 */
#include "args.h"
#include "commands.h"
#include "record.h"
#include "runner.h"
#include "wl_config.h"

#include <atomio.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { PO_HELP = 1, PO_PAGE_SIZE, PO_IO_STYLE, PO_POLICY, PO_JSON };

static const struct opt_spec probe_specs[] = {
    {"page-size", 1, PO_PAGE_SIZE, "SIZE", "page size, power of two 512..1m (default 16k)"},
    {"io-style", 1, PO_IO_STYLE, "STYLE",
     "any (default) | buffered | direct: the io style AUTO decides for"},
    {"policy", 1, PO_POLICY, "POLICY", "fast (default) | atomic | calibrate, with --io-style"},
    {"json", 0, PO_JSON, NULL, "one JSON object on stdout"},
    {"help", 0, PO_HELP, NULL, "this help"},
    {NULL, 0, 0, NULL, NULL},
};

static void
probe_help(void)
{
    printf("usage: atomio-bench probe PATH [--page-size SIZE] [--io-style STYLE] [--json]\n\n"
           "Show what libatomio learned about PATH (a file, or a directory for its filesystem)\n"
           "at one page size: the raw statx/sysfs figures, whether each write path can work\n"
           "and why, and which path AUTO picks. Never writes PATH.\n\n");
    opt_print_help(stdout, probe_specs);
    printf("\nexit status: 0 ok, 1 probe failed (e.g. no such file), 2 usage error\n");
}

/* Names of statx mask and attribute bits that matter here (numbers: linux/stat.h 6.18). */
struct bitname {
    uint64_t bit;
    const char *name;
};

static const struct bitname mask_bits[] = {
    {0x7ff, "BASIC_STATS"},    {0x800, "BTIME"},
    {0x1000, "MNT_ID"},        {0x2000, "DIOALIGN"},
    {0x4000, "MNT_ID_UNIQUE"}, {0x8000, "SUBVOL"},
    {0x10000, "WRITE_ATOMIC"}, {0x20000, "DIO_READ_ALIGN"},
};

static const struct bitname attr_bits[] = {
    {0x4, "COMPRESSED"},  {0x10, "IMMUTABLE"},        {0x20, "APPEND"},       {0x40, "NODUMP"},
    {0x800, "ENCRYPTED"}, {0x1000, "AUTOMOUNT"},      {0x2000, "MOUNT_ROOT"}, {0x100000, "VERITY"},
    {0x200000, "DAX"},    {0x400000, "WRITE_ATOMIC"},
};

/* bit_names() -- "WRITE_ATOMIC DIOALIGN" for the bits of v found in the table. */
static const char *
bit_names(uint64_t v, int attrs, char *buf, size_t len)
{
    const struct bitname *t = attrs ? attr_bits : mask_bits;
    size_t n =
        attrs ? sizeof(attr_bits) / sizeof(attr_bits[0]) : sizeof(mask_bits) / sizeof(mask_bits[0]);
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if ((v & t[i].bit) == t[i].bit && used + strlen(t[i].name) + 2 < len)
            used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? " " : "", t[i].name);
    }
    if (!used)
        snprintf(buf, len, "none");
    return buf;
}

static const char *
direct_kind(uint32_t v)
{
    switch (v) {
    case ATOMIO_ATOMIC_HARDWARE:
        return "hardware";
    case ATOMIO_ATOMIC_SOFTWARE:
        return "software";
    default:
        return "none";
    }
}

/* What AUTO picks for an io style other than ANY: the library's own decision at file open. */
struct auto_view {
    uint32_t path;
    char reason[ATOMIO_REASON_LEN];
    char reject[3][ATOMIO_REASON_LEN]; /* direct, buffered, doublewrite */
    const char *source;                /* "atomio_probe" or "atomio_file_open" */
    int err;
};

/*
 * auto_for_style() -- open PATH read-only through a throw-away ctx (its doublewrite store in a
 * private temp dir, so AUTO may pick DOUBLEWRITE) and read atomio_file_info. A directory gets a
 * scratch empty file inside it, removed straight away; PATH itself is never written.
 */
static int
auto_for_style(const char *path, uint32_t page_size, int io_style, uint32_t policy,
               struct auto_view *v)
{
    char store[] = "/tmp/atomio-probe-XXXXXX";
    char scratch[4096] = "";
    const char *target = path;
    struct stat st;
    if (stat(path, &st) != 0)
        return -errno;
    if (S_ISDIR(st.st_mode)) {
        snprintf(scratch, sizeof(scratch), "%s/.atomio-probe-XXXXXX", path);
        int fd = mkstemp(scratch);
        if (fd < 0)
            return -errno;
        close(fd);
        target = scratch;
    }
    int rc;
    if (!mkdtemp(store)) {
        rc = -errno;
        goto out;
    }
    atomio_ctx_opts co;
    atomio_ctx_opts_init(&co);
    co.doublewrite_dir = store;
    co.policy = policy;
    atomio_ctx *ctx = NULL;
    rc = atomio_ctx_open(&co, &ctx);
    if (rc < 0) {
        co.flags |= ATOMIO_CTX_NO_DOUBLEWRITE;
        co.doublewrite_dir = NULL;
        rc = atomio_ctx_open(&co, &ctx);
    }
    if (rc == 0) {
        atomio_file_opts fo;
        atomio_file_opts_init(&fo);
        fo.flags = ATOMIO_FILE_RDONLY;
        fo.page_size = page_size;
        fo.io_style = (uint32_t)io_style;
        atomio_file *f = NULL;
        rc = atomio_file_open(ctx, target, &fo, &f);
        if (rc == 0) {
            atomio_file_info info;
            memset(&info, 0, sizeof(info));
            info.size = sizeof(info); /* the _INIT macros trip -Wmissing-field-initializers */
            rc = atomio_file_get_info(f, &info);
            if (rc == 0) {
                v->path = info.path;
                snprintf(v->reason, sizeof(v->reason), "%s", info.reason);
                snprintf(v->reject[0], sizeof(v->reject[0]), "%s", info.reject_direct);
                snprintf(v->reject[1], sizeof(v->reject[1]), "%s", info.reject_buffered);
                snprintf(v->reject[2], sizeof(v->reject[2]), "%s", info.reject_doublewrite);
                v->source = "atomio_file_open";
            }
            (void)atomio_file_close(f);
        }
        (void)atomio_ctx_close(ctx);
    }
    lib_remove_dblwr_dir(store);
out:
    if (scratch[0])
        unlink(scratch);
    return rc;
}

static void
print_human(const char *path, const atomio_caps *c, int io_style, const struct auto_view *av)
{
    char b1[160];
    int sx = (c->valid & ATOMIO_CAPS_STATX) != 0;
    printf("atomio-bench probe %s  (page size %s, io style %s)\n\n", path, fmt_bytes(c->page_size),
           wl_io_style_name(io_style));
    printf("  %-16s %s (f_type 0x%llx), device %u:%u\n", "filesystem", fs_type_name(c->fs_type),
           (unsigned long long)c->fs_type, c->dev_major, c->dev_minor);
    printf("  %-16s fs block %u B, system page %u B\n", "block sizes", c->fs_block_size,
           c->sys_page_size);
    if (sx) {
        printf("  %-16s 0x%08x  %s\n", "statx mask", c->statx_mask,
               bit_names(c->statx_mask, 0, b1, sizeof(b1)));
        printf("  %-16s 0x%08llx  %s\n", "statx attributes",
               (unsigned long long)c->statx_attributes,
               bit_names(c->statx_attributes, 1, b1, sizeof(b1)));
        printf("  %-16s memory %u B, offset %u B, read offset %u B\n", "dio alignment",
               c->dio_mem_align, c->dio_offset_align, c->dio_read_offset_align);
        printf("  %-16s min %s, max %s, max_opt %s, segments %u\n", "atomic unit",
               fmt_bytes(c->unit_min), fmt_bytes(c->unit_max), fmt_bytes(c->unit_max_opt),
               c->segments_max);
    } else {
        printf("  %-16s not available (statx failed or not filled)\n", "statx");
    }
    if (c->valid & ATOMIO_CAPS_SYSFS)
        printf("  %-16s %s (sysfs queue/atomic_write_unit_max_bytes)%s\n", "hardware limit",
               fmt_bytes(c->hw_unit_max), c->hw_unit_max ? "" : ": no hardware atomic writes");
    else
        printf("  %-16s unknown (sysfs: %s)\n", "hardware limit",
               c->hw_sysfs_err ? atomio_strerror(c->hw_sysfs_err) : "not read");
    if (c->page_order == UINT32_MAX)
        printf("  %-16s page not a whole number of system pages; fs min order %u\n", "folio orders",
               c->fs_min_order);
    else
        printf("  %-16s page order %u, fs min order %u\n", "folio orders", c->page_order,
               c->fs_min_order);
    if (c->valid & ATOMIO_CAPS_BUFFERED)
        printf("  %-16s %s\n", "buffered probe",
               c->buffered_probe_err ? atomio_err_name(c->buffered_probe_err)
                                     : "RWF_ATOMIC|RWF_DSYNC write succeeded");
    printf("\n  %-16s %-22s %s\n", "path", "verdict", "reason");
    char verdict[48];
    if (c->direct_atomic == ATOMIO_ATOMIC_NONE)
        snprintf(verdict, sizeof(verdict), "no");
    else
        snprintf(verdict, sizeof(verdict), "yes (%s)", direct_kind(c->direct_atomic));
    printf("  %-16s %-22s %s\n", "DIRECT_ATOMIC", verdict, c->reason_direct);
    printf("  %-16s %-22s %s\n", "BUFFERED_ATOMIC", c->buffered_atomic ? "yes" : "no",
           c->reason_buffered);
    printf("  %-16s %-22s %s\n", "DOUBLEWRITE", "yes", c->reason_doublewrite);
    printf("  %-16s %-22s %s\n", "UNSAFE", "yes (not torn-safe)",
           "plain writes, no protection: for measuring what protection costs");
    if (av->err) {
        printf("\n  AUTO (io style %s): cannot tell: %s (%s)\n", wl_io_style_name(io_style),
               atomio_strerror(av->err), atomio_err_name(av->err));
        return;
    }
    printf("\n  AUTO picks %s", atomio_path_name(av->path));
    printf(" (io style %s%s): %s\n", wl_io_style_name(io_style),
           av->source && strcmp(av->source, "atomio_probe") == 0 ? ", policy fast" : "",
           av->reason);
    static const char *const names[3] = {"DIRECT_ATOMIC", "BUFFERED_ATOMIC", "DOUBLEWRITE"};
    for (int i = 0; i < 3; i++)
        if (av->reject[i][0])
            printf("    not %s: %s\n", names[i], av->reject[i]);
}

static void
print_json(const char *path, const atomio_caps *c, int io_style, const struct auto_view *av)
{
    struct json j;
    char b1[160];
    json_begin(&j, stdout, 1);
    json_obj_open(&j, NULL);
    json_str(&j, "schema", BENCH_SCHEMA);
    json_str(&j, "command", "probe");
    json_str(&j, "tool_version", ATOMIO_VERSION_STRING);
    json_str(&j, "library_version", atomio_version_string());
    json_str(&j, "path", path);
    json_u64(&j, "page_size_bytes", c->page_size);
    json_str(&j, "io_style", wl_io_style_name(io_style));
    json_obj_open(&j, "caps");
    json_u64(&j, "valid", c->valid);
    json_str(&j, "fs_type", fs_type_name(c->fs_type));
    json_u64(&j, "fs_magic", c->fs_type);
    json_u64(&j, "dev_major", c->dev_major);
    json_u64(&j, "dev_minor", c->dev_minor);
    json_u64(&j, "fs_block_size_bytes", c->fs_block_size);
    json_u64(&j, "sys_page_size_bytes", c->sys_page_size);
    json_u64(&j, "statx_mask", c->statx_mask);
    json_str(&j, "statx_mask_names", bit_names(c->statx_mask, 0, b1, sizeof(b1)));
    json_u64(&j, "statx_attributes", c->statx_attributes);
    json_str(&j, "statx_attributes_names", bit_names(c->statx_attributes, 1, b1, sizeof(b1)));
    json_u64(&j, "dio_mem_align_bytes", c->dio_mem_align);
    json_u64(&j, "dio_offset_align_bytes", c->dio_offset_align);
    json_u64(&j, "dio_read_offset_align_bytes", c->dio_read_offset_align);
    json_u64(&j, "atomic_unit_min_bytes", c->unit_min);
    json_u64(&j, "atomic_unit_max_bytes", c->unit_max);
    json_u64(&j, "atomic_unit_max_opt_bytes", c->unit_max_opt);
    json_u64(&j, "atomic_segments_max", c->segments_max);
    json_num_or_null(&j, "hw_atomic_unit_max_bytes", c->hw_unit_max,
                     (c->valid & ATOMIO_CAPS_SYSFS) != 0);
    json_i64(&j, "hw_sysfs_error", c->hw_sysfs_err);
    json_num_or_null(&j, "page_order", c->page_order, c->page_order != UINT32_MAX);
    json_u64(&j, "fs_min_order", c->fs_min_order);
    json_i64(&j, "buffered_probe_error", c->buffered_probe_err);
    json_str(&j, "buffered_probe_error_name",
             c->buffered_probe_err ? atomio_err_name(c->buffered_probe_err) : NULL);
    json_obj_close(&j);
    json_obj_open(&j, "paths");
    json_obj_open(&j, "DIRECT_ATOMIC");
    json_bool(&j, "available", c->direct_atomic != ATOMIO_ATOMIC_NONE);
    json_str(&j, "kind", direct_kind(c->direct_atomic));
    json_str(&j, "reason", c->reason_direct);
    json_obj_close(&j);
    json_obj_open(&j, "BUFFERED_ATOMIC");
    json_bool(&j, "available", c->buffered_atomic != 0);
    json_str(&j, "reason", c->reason_buffered);
    json_obj_close(&j);
    json_obj_open(&j, "DOUBLEWRITE");
    json_bool(&j, "available", 1);
    json_str(&j, "reason", c->reason_doublewrite);
    json_obj_close(&j);
    json_obj_open(&j, "UNSAFE");
    json_bool(&j, "available", 1);
    json_bool(&j, "torn_write_safe", 0);
    json_str(&j, "reason", "plain writes, no protection: for measuring what protection costs");
    json_obj_close(&j);
    json_obj_close(&j);
    json_obj_open(&j, "auto");
    json_str(&j, "io_style", wl_io_style_name(io_style));
    json_str(&j, "path", av->err ? NULL : atomio_path_name(av->path));
    json_str(&j, "error", av->err ? atomio_err_name(av->err) : NULL);
    json_str(&j, "reason", av->reason);
    json_str(&j, "reject_direct", av->reject[0][0] ? av->reject[0] : NULL);
    json_str(&j, "reject_buffered", av->reject[1][0] ? av->reject[1] : NULL);
    json_str(&j, "reject_doublewrite", av->reject[2][0] ? av->reject[2] : NULL);
    json_str(&j, "source", av->source);
    json_obj_close(&j);
    json_obj_close(&j);
    json_end(&j);
}

int
cmd_probe(int argc, char **argv)
{
    const char *path = NULL;
    uint32_t page_size = 16384;
    int io_style = WL_IO_ANY, json = 0, policy = ATOMIO_POLICY_PREFER_FAST;
    struct opt_iter it;
    opt_init(&it, "probe", probe_specs, argc, argv);
    int id;
    while ((id = opt_next(&it)) >= 0) {
        switch (id) {
        case 0:
            if (path)
                usage_error("probe", "one PATH only (got '%s' and '%s')", path, it.arg);
            path = it.arg;
            break;
        case PO_HELP:
            probe_help();
            return BENCH_EXIT_OK;
        case PO_PAGE_SIZE:
            if (parse_page_size(it.arg, &page_size))
                usage_error("probe",
                            "--page-size '%s': want a power of two from 512 to 1m (e.g. 16k)",
                            it.arg);
            break;
        case PO_IO_STYLE:
            io_style = wl_parse_io_style(it.arg);
            if (io_style < 0)
                usage_error("probe", "--io-style '%s': want any, buffered or direct", it.arg);
            break;
        case PO_POLICY:
            policy = parse_policy_name(it.arg);
            if (policy < 0)
                usage_error("probe", "--policy '%s': want fast, atomic or calibrate", it.arg);
            break;
        case PO_JSON:
            json = 1;
            break;
        }
    }
    if (!path)
        usage_error("probe", "missing PATH (a file, or a directory for its filesystem)");

    atomio_caps caps;

    memset(&caps, 0, sizeof(caps));

    caps.size = sizeof(caps); /* the _INIT macros trip -Wmissing-field-initializers */
    int rc = atomio_probe(path, page_size, &caps);
    if (rc < 0) {
        runtime_error("probe", "%s: %s (%s)", path, atomio_strerror(rc), atomio_err_name(rc));
        return BENCH_EXIT_RUNTIME;
    }
    struct auto_view av;
    memset(&av, 0, sizeof(av));
    av.path = caps.auto_path;
    snprintf(av.reason, sizeof(av.reason), "%s", caps.reason_auto);
    av.source = "atomio_probe";
    if (io_style != WL_IO_ANY || policy != ATOMIO_POLICY_PREFER_FAST) {
        struct auto_view fv;
        memset(&fv, 0, sizeof(fv));
        rc = auto_for_style(path, page_size, io_style, (uint32_t)policy, &fv);
        if (rc < 0) {
            memset(&fv, 0, sizeof(fv));
            fv.err = rc;
            fv.source = "atomio_file_open";
        }
        av = fv;
    }
    if (json)
        print_json(path, &caps, io_style, &av);
    else
        print_human(path, &caps, io_style, &av);
    if (av.err) {
        /* Everything else was shown; the one thing asked for that failed is an error. */
        runtime_error("probe", "%s: cannot tell what AUTO picks for io style %s: %s (%s)", path,
                      wl_io_style_name(io_style), atomio_strerror(av.err), atomio_err_name(av.err));
        return BENCH_EXIT_RUNTIME;
    }
    return BENCH_EXIT_OK;
}
