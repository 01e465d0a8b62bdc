/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `marblerun package-info <path>`: the SGX package properties (MRENCLAVE, MRSIGNER, ISVPRODID,
 * ISVSVN) of a signed enclave, read from its SIGSTRUCT (spec/marble-cli-k8s.md §4.5):
 *   1. a file: an Open Enclave / EGo / EdgelessRT ELF, SIGSTRUCT inside section `.oeinfo`;
 *   2. Gramine: a `.sig` file, or a directory holding exactly one `*.sig`;
 *   3. Occlum / SGX SDK: ELF section `.note.sgxmeta`, or
 *      `<dir>/build/lib/libocclum-libos.signed.so`.
 * All file content is read through mr_cursor.
 */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "common/alloc.h"
#include "common/file.h"
#include "crypto/hash.h"

#define SIGSTRUCT_LEN 1808
#define PKG_FILE_MAX ((size_t)512 << 20)

static const uint8_t header1[16] = {0x06, 0, 0, 0, 0xE1, 0, 0, 0, 0, 0, 0x01, 0, 0, 0, 0, 0};
static const uint8_t header2[16] = {0x01, 0x01, 0, 0, 0x60, 0, 0, 0, 0x60, 0, 0, 0, 0x01, 0, 0, 0};

typedef mr_cli_pkg_props pkg_props;

/* Finds the SIGSTRUCT header in data and decodes the structure that starts there. */
MR_RESULT mr_cli_sigstruct_parse(mr_slice data, mr_cli_pkg_props *out)
{
    size_t at = 0;
    bool found = false;
    for (size_t i = 0; i + sizeof(header1) <= data.len && !found; i++) {
        if (memcmp(data.ptr + i, header1, sizeof(header1)) == 0) {
            at = i;
            found = true;
        }
    }
    MR_ENSURE(found, MR_ERR_USAGE, "could not find SIGSTRUCT header");
    mr_cursor c, s;
    mr_slice v;
    mr_cursor_init(&c, data.ptr, data.len);
    MR_GUARD(mr_cursor_skip(&c, at));
    MR_ENSURE(mr_cursor_remaining(&c) >= SIGSTRUCT_LEN, MR_ERR_USAGE,
              "SIGSTRUCT is too short: %zu bytes, want %d", mr_cursor_remaining(&c), SIGSTRUCT_LEN);
    MR_GUARD(mr_cursor_sub(&c, SIGSTRUCT_LEN, &s));
    MR_GUARD(mr_cursor_skip(&s, 24));
    MR_GUARD(mr_cursor_view(&s, 16, &v));
    MR_ENSURE(memcmp(v.ptr, header2, sizeof(header2)) == 0, MR_ERR_USAGE,
              "invalid SIGSTRUCT: second header does not match");
    MR_GUARD(mr_cursor_skip(&s, 128 - 40));
    MR_GUARD(mr_cursor_view(&s, 384, &v)); /* modulus at 128 */
    MR_GUARD(mr_sha256(v.ptr, v.len, out->mrsigner));
    MR_GUARD(mr_cursor_skip(&s, 960 - 512));
    MR_GUARD(mr_cursor_read(&s, out->mrenclave, 32)); /* ENCLAVEHASH at 960 */
    MR_GUARD(mr_cursor_skip(&s, 1024 - 992));
    MR_GUARD(mr_cursor_u16le(&s, &out->isvprodid));
    MR_GUARD(mr_cursor_u16le(&s, &out->isvsvn));
    return MR_SUCCESS;
}

/* The contents of the named section of a 64-bit little-endian ELF file (borrowed). */
MR_RESULT mr_cli_elf_section(mr_slice file, const char *name, mr_slice *out)
{
    mr_cursor c, h;
    mr_slice v;
    mr_cursor_init(&c, file.ptr, file.len);
    MR_ENSURE(file.len >= 64 && memcmp(file.ptr, "\x7f" "ELF", 4) == 0, MR_ERR_USAGE,
              "not an ELF file");
    MR_ENSURE(file.ptr[4] == 2 && file.ptr[5] == 1, MR_ERR_USAGE,
              "not a 64-bit little-endian ELF file");
    uint64_t shoff;
    uint16_t shentsize, shnum, shstrndx;
    mr_cursor_init(&h, file.ptr, file.len);
    MR_GUARD(mr_cursor_skip(&h, 0x28));
    MR_GUARD(mr_cursor_u64le(&h, &shoff));
    MR_GUARD(mr_cursor_skip(&h, 0x3a - 0x30));
    MR_GUARD(mr_cursor_u16le(&h, &shentsize));
    MR_GUARD(mr_cursor_u16le(&h, &shnum));
    MR_GUARD(mr_cursor_u16le(&h, &shstrndx));
    MR_ENSURE(shentsize >= 64 && shstrndx < shnum && shoff <= file.len, MR_ERR_USAGE,
              "invalid ELF section header table");
    /* section i: name u32 @0, offset u64 @24, size u64 @32 */
    uint64_t str_off = 0, str_size = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (uint16_t i = 0; i < shnum; i++) {
            if (pass == 0 && i != shstrndx)
                continue;
            mr_cursor sh;
            uint32_t nm;
            uint64_t off, size;
            mr_cursor_init(&sh, file.ptr, file.len);
            MR_GUARD(mr_cursor_skip(&sh, (size_t)shoff + (size_t)i * shentsize));
            MR_GUARD(mr_cursor_u32le(&sh, &nm));
            MR_GUARD(mr_cursor_skip(&sh, 20));
            MR_GUARD(mr_cursor_u64le(&sh, &off));
            MR_GUARD(mr_cursor_u64le(&sh, &size));
            MR_ENSURE(off <= file.len && size <= file.len - off, MR_ERR_USAGE,
                      "invalid ELF section bounds");
            if (pass == 0) {
                str_off = off;
                str_size = size;
                break;
            }
            MR_ENSURE(nm < str_size, MR_ERR_USAGE, "invalid ELF section name");
            size_t nlen = strlen(name);
            if (str_size - nm > nlen && memcmp(file.ptr + str_off + nm, name, nlen + 1) == 0) {
                mr_cursor_init(&c, file.ptr, file.len);
                MR_GUARD(mr_cursor_skip(&c, (size_t)off));
                MR_GUARD(mr_cursor_view(&c, (size_t)size, &v));
                *out = v;
                return MR_SUCCESS;
            }
        }
    }
    MR_BAIL(MR_ERR_USAGE, "section %s not found", name);
}

static MR_RESULT props_from_elf_section(const char *path, const char *section, pkg_props *out)
{
    mr_result res = MR_FAILURE;
    mr_buf file;
    mr_slice sec = {NULL, 0};
    mr_buf_init(&file, PKG_FILE_MAX, 0);
    MR_GUARD_OUT(mr_file_read(path, PKG_FILE_MAX, &file));
    MR_GUARD_OUT(mr_cli_elf_section(mr_buf_slice(&file), section, &sec));
    MR_GUARD_OUT(mr_cli_sigstruct_parse(sec, out));
    res = MR_SUCCESS;
out:
    mr_buf_free(&file);
    return res;
}

static MR_RESULT props_from_file(const char *path, pkg_props *out)
{
    mr_result res = MR_FAILURE;
    mr_buf file;
    mr_buf_init(&file, PKG_FILE_MAX, 0);
    MR_GUARD_OUT(mr_file_read(path, PKG_FILE_MAX, &file));
    MR_GUARD_OUT(mr_cli_sigstruct_parse(mr_buf_slice(&file), out));
    res = MR_SUCCESS;
out:
    mr_buf_free(&file);
    return res;
}

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

static MR_RESULT gramine(const char *path, pkg_props *out)
{
    if (!is_dir(path)) {
        MR_ENSURE(has_suffix(path, ".sig"), MR_ERR_USAGE, "%s is not a .sig file", path);
        return props_from_file(path, out);
    }
    DIR *d = opendir(path);
    MR_ENSURE(d != NULL, MR_ERR_IO, "cannot open directory %s", path);
    char found[4096] = "";
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (has_suffix(e->d_name, ".sig")) {
            count++;
            (void)snprintf(found, sizeof(found), "%s/%s", path, e->d_name);
        }
    }
    closedir(d);
    MR_ENSURE(count == 1, MR_ERR_USAGE,
              count == 0 ? "no .sig file found in %s" : "more than one .sig file found in %s",
              path);
    return props_from_file(found, out);
}

static MR_RESULT occlum(const char *path, pkg_props *out)
{
    if (!is_dir(path))
        return props_from_elf_section(path, ".note.sgxmeta", out);
    char so[4096];
    int n = snprintf(so, sizeof(so), "%s/build/lib/libocclum-libos.signed.so", path);
    MR_ENSURE(n > 0 && (size_t)n < sizeof(so), MR_ERR_USAGE, "path too long");
    return props_from_elf_section(so, ".note.sgxmeta", out);
}

static void hex_print(const char *label, const uint8_t *p, size_t n)
{
    printf("%s", label);
    for (size_t i = 0; i < n; i++)
        printf("%02x", p[i]);
    printf("\n");
}

static void print_props(const char *what, const char *path, const pkg_props *p)
{
    printf("PackageProperties for %s'%s':\n", what, path);
    hex_print("UniqueID (MRENCLAVE)      : ", p->mrenclave, 32);
    hex_print("SignerID (MRSIGNER)       : ", p->mrsigner, 32);
    printf("ProductID (ISVPRODID)     : %u\n", p->isvprodid);
    printf("SecurityVersion (ISVSVN)  : %u\n", p->isvsvn);
}

static MR_RESULT run_package_info(mr_cli *cli, int argc, char **argv)
{
    (void)cli;
    (void)argc;
    const char *path = argv[0];
    pkg_props p;
    char oe_err[MR_ERR_MSG_MAX], gr_err[MR_ERR_MSG_MAX], oc_err[MR_ERR_MSG_MAX];
    memset(&p, 0, sizeof(p));
    struct stat st;
    MR_ENSURE(stat(path, &st) == 0, MR_ERR_USAGE, "stat %s: no such file or directory", path);
    if (!S_ISDIR(st.st_mode)) {
        if (mr_ok(props_from_elf_section(path, ".oeinfo", &p))) {
            print_props("", path, &p);
            return MR_SUCCESS;
        }
        (void)snprintf(oe_err, sizeof(oe_err), "%s", mr_error_get()->msg);
    } else {
        (void)snprintf(oe_err, sizeof(oe_err), "%s is a directory", path);
    }
    if (mr_ok(gramine(path, &p))) {
        printf("Detected Gramine instance.\n");
        print_props("Gramine instance at ", path, &p);
        return MR_SUCCESS;
    }
    (void)snprintf(gr_err, sizeof(gr_err), "%s", mr_error_get()->msg);
    if (mr_ok(occlum(path, &p))) {
        if (S_ISDIR(st.st_mode)) {
            printf("Detected Occlum image.\n");
            print_props("Occlum image at ", path, &p);
        } else {
            print_props("", path, &p);
        }
        return MR_SUCCESS;
    }
    (void)snprintf(oc_err, sizeof(oc_err), "%s", mr_error_get()->msg);
    fprintf(stderr, "ERROR: Failed to automatically determine SGX package signature "
                    "properties.\n");
    fprintf(stderr, "If you are using Gramine or Occlum, point to the directory of the "
                    "instance or image; otherwise to the signed enclave file.\n\n");
    fprintf(stderr, "Open Enclave detection error: %s\n", oe_err);
    fprintf(stderr, "Error - Gramine: %s\n", gr_err);
    fprintf(stderr, "Error - Occlum / SGX SDK: %s\n", oc_err);
    MR_BAIL(MR_ERR_USAGE, "unable to determine enclave properties");
}

const mr_cmd mr_cmd_package_info = {
    .name = "package-info",
    .short_help = "Prints the package signature properties of an enclave",
    .long_help = "Prints the package signature properties of an enclave: a signed Open "
                 "Enclave / EGo / EdgelessRT binary, a Gramine instance (directory or .sig file) "
                 "or an Occlum image (directory) / SGX SDK signed enclave.",
    .example = "marblerun package-info enclave.signed\nmarblerun package-info "
               "./gramine-app/\nmarblerun package-info ./occlum-instance/",
    .min_args = 1,
    .max_args = 1,
    .run = run_package_info,
};
