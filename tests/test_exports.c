/* SPDX-License-Identifier: MIT */
/*
 * test_exports.c -- the shared library's ABI surface, read straight from its ELF
 * dynamic symbol table: only atomio_* symbols are exported, every symbol named in
 * libatomio/atomio.map is exported (and loadable with its version node through dlvsym), every
 * ATOMIO_API declaration of the public headers is in the map and vice versa, and the SONAME is
 * libatomio.so.<major>. CMake passes the paths: ATOMIO_SHARED_LIB ($<TARGET_FILE:atomio>),
 * ATOMIO_MAP_FILE and ATOMIO_INCLUDE_DIR.
 */
#include <atomio.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef ATOMIO_SHARED_LIB
#error "ATOMIO_SHARED_LIB must name the built libatomio.so"
#endif

#define MAX_NAMES 512

struct names {
    char *v[MAX_NAMES];
    char *node[MAX_NAMES]; /* map: version node of each name */
    size_t n;
};

static bool
has(const struct names *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], name) == 0)
            return true;
    return false;
}

static void
add(struct names *s, const char *name, const char *node)
{
    cr_assert_lt(s->n, MAX_NAMES);
    s->v[s->n] = strdup(name);
    s->node[s->n] = node ? strdup(node) : NULL;
    s->n++;
}

/* ------------------------------------------------------------------------------------------ */
/* The ELF side.                                                                                */

struct elf_view {
    unsigned char *base;
    size_t len;
    struct names defined; /* defined global/weak dynamic symbols */
    struct names undefined;
    char soname[256];
};

static const ElfW(Shdr) * shdr(const struct elf_view *e, size_t i)
{
    const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *)e->base;
    cr_assert_lt(i, eh->e_shnum);
    cr_assert_leq(eh->e_shoff + (i + 1) * sizeof(ElfW(Shdr)), e->len);
    return (const ElfW(Shdr) *)(e->base + eh->e_shoff + i * sizeof(ElfW(Shdr)));
}

static const char *
str_at(const struct elf_view *e, const ElfW(Shdr) * strtab, size_t off)
{
    cr_assert_lt(strtab->sh_offset + off, e->len);
    return (const char *)e->base + strtab->sh_offset + off;
}

/* read_elf() -- map the library and collect its dynamic symbols and DT_SONAME. */
static void
read_elf(struct elf_view *e, const char *path)
{
    memset(e, 0, sizeof(*e));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    e->len = (size_t)st.st_size;
    e->base = mmap(NULL, e->len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    cr_assert(e->base != MAP_FAILED, "mmap %s", path);
    const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *)e->base;
    cr_assert(e->len >= sizeof(*eh) && memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0, "%s is not ELF",
              path);
    cr_assert_eq(eh->e_type, ET_DYN, "%s is not a shared object", path);

    bool saw_dynsym = false;
    for (size_t i = 0; i < eh->e_shnum; i++) {
        const ElfW(Shdr) *sh = shdr(e, i);
        if (sh->sh_type == SHT_DYNSYM) {
            saw_dynsym = true;
            const ElfW(Shdr) *strtab = shdr(e, sh->sh_link);
            size_t n = sh->sh_size / sizeof(ElfW(Sym));
            const ElfW(Sym) *sym = (const ElfW(Sym) *)(e->base + sh->sh_offset);
            for (size_t k = 1; k < n; k++) {
                unsigned bind = ELF64_ST_BIND(sym[k].st_info);
                if (bind != STB_GLOBAL && bind != STB_WEAK && bind != STB_GNU_UNIQUE)
                    continue;
                const char *name = str_at(e, strtab, sym[k].st_name);
                if (sym[k].st_shndx == SHN_UNDEF)
                    add(&e->undefined, name, NULL);
                else
                    add(&e->defined, name, NULL);
            }
        } else if (sh->sh_type == SHT_DYNAMIC) {
            const ElfW(Shdr) *strtab = shdr(e, sh->sh_link);
            size_t n = sh->sh_size / sizeof(ElfW(Dyn));
            const ElfW(Dyn) *d = (const ElfW(Dyn) *)(e->base + sh->sh_offset);
            for (size_t k = 0; k < n && d[k].d_tag != DT_NULL; k++)
                if (d[k].d_tag == DT_SONAME)
                    snprintf(e->soname, sizeof(e->soname), "%s",
                             str_at(e, strtab, d[k].d_un.d_val));
        }
    }
    cr_assert(saw_dynsym, "%s has no dynamic symbol table", path);
}

/* ------------------------------------------------------------------------------------------ */
/* The version script side.                                                                     */

static char *
slurp(const char *path)
{
    FILE *fp = fopen(path, "r");
    cr_assert_not_null(fp, "open %s: %s", path, strerror(errno));
    cr_assert_eq(fseek(fp, 0, SEEK_END), 0);
    long len = ftell(fp);
    rewind(fp);
    char *s = malloc((size_t)len + 1);
    cr_assert_eq(fread(s, 1, (size_t)len, fp), (size_t)len);
    s[len] = '\0';
    fclose(fp);
    return s;
}

/* read_map() -- names listed under "global:" of each version node, and the node names. */
static void
read_map(struct names *syms, struct names *nodes, const char *path)
{
    char *s = slurp(path);
    /* blank out comments: C style and '#' lines */
    for (char *p = s; *p; p++) {
        if (p[0] == '/' && p[1] == '*') {
            char *end = strstr(p + 2, "*/");
            cr_assert_not_null(end, "unterminated comment in %s", path);
            memset(p, ' ', (size_t)(end + 2 - p));
        } else if (*p == '#') {
            while (*p && *p != '\n')
                *p++ = ' ';
            if (!*p)
                break;
        }
    }
    enum { OUTSIDE, IN_NODE } state = OUTSIDE;
    bool global = false;
    char node[256] = "";
    char tok[256];
    size_t tl = 0;
    for (char *p = s;; p++) {
        char c = *p;
        bool punct = c == '{' || c == '}' || c == ';' || c == ':';
        if (c && !punct && c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            cr_assert_lt(tl, sizeof(tok) - 1);
            tok[tl++] = c;
            continue;
        }
        tok[tl] = '\0';
        if (tl) {
            if (state == OUTSIDE) {
                snprintf(node, sizeof(node), "%s", tok); /* node name, or a parent after '}' */
            } else if (c == ':' && (strcmp(tok, "global") == 0 || strcmp(tok, "local") == 0)) {
                global = strcmp(tok, "global") == 0;
            } else if (global) {
                cr_assert(strchr(tok, '*') == NULL && strchr(tok, '?') == NULL,
                          "wildcard '%s' in the global part of %s: list names", tok, path);
                add(syms, tok, node);
            }
        }
        tl = 0;
        if (c == '{') {
            cr_assert_eq(state, OUTSIDE, "nested '{' in %s", path);
            cr_assert(node[0], "version node without a name in %s", path);
            add(nodes, node, NULL);
            state = IN_NODE;
            global = false;
        } else if (c == '}') {
            state = OUTSIDE;
            node[0] = '\0';
        }
        if (!c)
            break;
    }
    cr_assert_eq(state, OUTSIDE, "unterminated version node in %s", path);
    free(s);
}

/* read_header_api() -- the function names declared ATOMIO_API in every public header. */
static void
read_header_api(struct names *api, const char *incdir)
{
    DIR *d = opendir(incdir);
    cr_assert_not_null(d, "opendir %s", incdir);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t nl = strlen(de->d_name);
        if (nl < 3 || strcmp(de->d_name + nl - 2, ".h") != 0)
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", incdir, de->d_name);
        char *s = slurp(path);
        for (char *p = strstr(s, "ATOMIO_API"); p; p = strstr(p + 1, "ATOMIO_API")) {
            /* skip the macro's own definition lines */
            char *line = p;
            while (line > s && line[-1] != '\n')
                line--;
            while (*line == ' ')
                line++;
            if (*line == '#')
                continue;
            char *paren = strchr(p, '(');
            char *semi = strchr(p, ';');
            if (!paren || (semi && semi < paren))
                continue;
            char *end = paren;
            while (end > p && (end[-1] == ' ' || end[-1] == '\n'))
                end--;
            char *start = end;
            while (start > p && (start[-1] == '_' || (start[-1] >= 'a' && start[-1] <= 'z') ||
                                 (start[-1] >= 'A' && start[-1] <= 'Z') ||
                                 (start[-1] >= '0' && start[-1] <= '9')))
                start--;
            char name[128];
            snprintf(name, sizeof(name), "%.*s", (int)(end - start), start);
            if (name[0] && !has(api, name))
                add(api, name, NULL);
        }
        free(s);
    }
    closedir(d);
}

/* ------------------------------------------------------------------------------------------ */

static struct elf_view elf;
static struct names map_syms, map_nodes;

static void
load(void)
{
    read_elf(&elf, ATOMIO_SHARED_LIB);
    read_map(&map_syms, &map_nodes, ATOMIO_MAP_FILE);
    cr_assert_gt(map_syms.n, 0, "no symbols in %s", ATOMIO_MAP_FILE);
}

Test(exports, only_atomio_symbols_exported, .init = load)
{
    cr_assert_gt(elf.defined.n, 0);
    for (size_t i = 0; i < elf.defined.n; i++) {
        const char *name = elf.defined.v[i];
        if (has(&map_nodes, name))
            continue; /* the version node's own absolute symbol (ATOMIO_0.1) */
        cr_assert(strncmp(name, "atomio_", 7) == 0, "exported symbol '%s' is not atomio_*", name);
        cr_assert(strncmp(name, "atomio__", 8) != 0, "internal symbol '%s' is exported", name);
        cr_assert(has(&map_syms, name), "'%s' is exported but not listed in atomio.map", name);
    }
}

Test(exports, every_map_symbol_exported_with_its_version, .init = load)
{
    void *h = dlopen(ATOMIO_SHARED_LIB, RTLD_NOW | RTLD_LOCAL);
    cr_assert_not_null(h, "dlopen: %s", dlerror());
    for (size_t i = 0; i < map_syms.n; i++) {
        const char *name = map_syms.v[i];
        cr_assert(has(&elf.defined, name), "'%s' is in atomio.map but not exported", name);
        cr_assert_not_null(dlvsym(h, name, map_syms.node[i]), "dlvsym(%s, %s): %s", name,
                           map_syms.node[i], dlerror());
    }
    /* a call through the loaded library works */
    const char *(*ver)(void) = (const char *(*)(void))dlsym(h, "atomio_version_string");
    cr_assert_not_null(ver);
    cr_assert_str_eq(ver(), ATOMIO_VERSION_STRING);
    dlclose(h);
}

Test(exports, header_and_map_agree, .init = load)
{
    struct names api = {0};
    read_header_api(&api, ATOMIO_INCLUDE_DIR);
    cr_assert_gt(api.n, 10, "found only %zu ATOMIO_API declarations", api.n);
    for (size_t i = 0; i < api.n; i++)
        cr_assert(has(&map_syms, api.v[i]), "'%s' is declared ATOMIO_API but not in atomio.map",
                  api.v[i]);
    for (size_t i = 0; i < map_syms.n; i++)
        cr_assert(has(&api, map_syms.v[i]), "'%s' is in atomio.map but no header declares it",
                  map_syms.v[i]);
}

Test(exports, soname_is_major_version, .init = load)
{
    char want[64];
    snprintf(want, sizeof(want), "libatomio.so.%d", ATOMIO_VERSION_MAJOR);
    cr_assert_str_eq(elf.soname, want, "SONAME '%s', expected '%s'", elf.soname, want);
}

Test(exports, no_undefined_symbols_outside_libc_and_deps, .init = load)
{
    /* -z defs makes the link fail on undefined references; what remains undefined must come
     * from versioned system libraries, never an atomio_ name from elsewhere. */
    for (size_t i = 0; i < elf.undefined.n; i++)
        cr_assert(strncmp(elf.undefined.v[i], "atomio", 6) != 0,
                  "'%s' is referenced but not defined in the library", elf.undefined.v[i]);
}
