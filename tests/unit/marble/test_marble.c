/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the marble side: UUID file handling, the ephemeral identity, ActivationResp
 * decoding, parameter validation and all-or-nothing application, gRPC framing. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mr_test.h"

#include "common/alloc.h"
#include "common/log.h"
#include "crypto/csr.h"
#include "crypto/x509.h"
#include "marble/marble_int.h"
#include "proto/coordinator.pb-c.h"

#define GRAMINE_PF "/dev/attestation/protected_files_key"

static char g_dir[256];

static int setup_dir(void **state)
{
    (void)state;
    (void)snprintf(g_dir, sizeof(g_dir), "/tmp/mr-marble-test-XXXXXX");
    return mkdtemp(g_dir) != NULL ? 0 : -1;
}

static void rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d != NULL && (e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char sub[1024];
            (void)snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
            rm_rf(sub);
        }
        if (d != NULL)
            (void)closedir(d);
        (void)rmdir(path);
    } else {
        (void)unlink(path);
    }
}

static int teardown_dir(void **state)
{
    (void)state;
    rm_rf(g_dir);
    return 0;
}

static void path_in(char *out, size_t n, const char *name)
{
    (void)snprintf(out, n, "%s/%s", g_dir, name);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

static size_t count_entries(const char *dir)
{
    size_t n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    if (d != NULL)
        (void)closedir(d);
    return n;
}

/* ---- UUID file ---- */

static void test_uuid_forms(void **state)
{
    (void)state;
    static const char *const good[] = {
        "9a4b7f76-3e2a-4f38-8c63-7b2f0e44a1d0", "{9a4b7f76-3e2a-4f38-8c63-7b2f0e44a1d0}",
        "urn:uuid:9a4b7f76-3e2a-4f38-8c63-7b2f0e44a1d0", "9A4B7F763E2A4F388C637B2F0E44A1D0"};
    mr_uuid first, u;
    char text[MR_UUID_TEXT_LEN + 1];
    for (size_t i = 0; i < MR_ARRAY_LEN(good); i++) {
        MR_ASSERT_OK(mr_marble_uuid_parse_file((const uint8_t *)good[i], strlen(good[i]), &u));
        if (i == 0)
            first = u;
        assert_memory_equal(u.b, first.b, 16);
    }
    mr_uuid_format(&first, text);
    assert_string_equal(text, "9a4b7f76-3e2a-4f38-8c63-7b2f0e44a1d0");
    const char *nl = "9a4b7f76-3e2a-4f38-8c63-7b2f0e44a1d0\n";
    MR_ASSERT_FAIL(mr_marble_uuid_parse_file((const uint8_t *)nl, strlen(nl), &u), MR_ERR_USAGE,
                   "invalid UUID length: 37");
    const char *bad = "9a4b7f76-3e2a-4f38-8c63-7b2f0e44a1dz";
    MR_ASSERT_FAIL(mr_marble_uuid_parse_file((const uint8_t *)bad, strlen(bad), &u), MR_ERR_USAGE,
                   "invalid UUID format");
    MR_ASSERT_FAIL(mr_marble_uuid_parse_file((const uint8_t *)"", 0, &u), MR_ERR_USAGE,
                   "invalid UUID length: 0");
}

static void test_uuid_file_created_then_reused(void **state)
{
    (void)state;
    char path[512];
    mr_uuid a, b;
    bool created = false;
    struct stat st;
    char content[64] = {0};
    path_in(path, sizeof(path), "uuid");
    MR_ASSERT_OK(mr_marble_uuid_load(path, &a, &created));
    assert_true(created);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 36); /* canonical text, no newline */
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fread(content, 1, sizeof(content), f), 36);
    (void)fclose(f);
    char text[MR_UUID_TEXT_LEN + 1];
    mr_uuid_format(&a, text);
    assert_string_equal(content, text);
    assert_int_equal(a.b[6] >> 4, 4); /* version 4 */
    MR_ASSERT_OK(mr_marble_uuid_load(path, &b, &created));
    assert_false(created);
    assert_memory_equal(a.b, b.b, 16);
}

static void test_uuid_file_errors(void **state)
{
    (void)state;
    char path[512];
    mr_uuid u;
    bool created = true;
    path_in(path, sizeof(path), "missing-dir/uuid");
    MR_ASSERT_FAIL(mr_marble_uuid_load(path, &u, &created), MR_ERR_IO, "missing-dir/uuid");
    path_in(path, sizeof(path), "missing-dir");
    struct stat st;
    assert_int_not_equal(stat(path, &st), 0); /* no mkdir */
    path_in(path, sizeof(path), "nl");
    write_text(path, "9a4b7f76-3e2a-4f38-8c63-7b2f0e44a1d0\n");
    MR_ASSERT_FAIL(mr_marble_uuid_load(path, &u, &created), MR_ERR_USAGE,
                   "invalid UUID length: 37");
    path_in(path, sizeof(path), "adir");
    assert_int_equal(mkdir(path, 0700), 0);
    MR_ASSERT_FAIL(mr_marble_uuid_load(path, &u, &created), MR_ERR_IO, "not a regular file");
    /* a FIFO in its place is refused at once instead of blocking the premain */
    path_in(path, sizeof(path), "fifo");
    assert_int_equal(mkfifo(path, 0600), 0);
    MR_ASSERT_FAIL(mr_marble_uuid_load(path, &u, &created), MR_ERR_IO, "not a regular file");
    /* an over-long file is a length error */
    path_in(path, sizeof(path), "long");
    write_text(path, "9a4b7f76-3e2a-4f38-8c63-7b2f0e44a1d0-9a4b7f76-3e2a-4f38-8c63-7b2f0e44a1d0");
    MR_ASSERT_FAIL(mr_marble_uuid_load(path, &u, &created), MR_ERR_USAGE, "invalid UUID length");
}

/* ---- identity ---- */

static void test_identity_sans_and_key(void **state)
{
    (void)state;
    mr_marble_identity id;
    X509 *cert = NULL;
    X509_REQ *csr = NULL;
    mr_x509_san_list cs, rs;
    memset(&cs, 0, sizeof(cs));
    memset(&rs, 0, sizeof(rs));
    MR_ASSERT_OK(mr_marble_identity_new("a.example,10.0.0.1,b.example,::2", MR_KEY_EC_P384, &id));
    assert_int_equal(mr_key_type_of(id.key), MR_KEY_EC_P384);
    MR_ASSERT_OK(mr_x509_from_der(mr_buf_slice(&id.cert_der), &cert));
    MR_ASSERT_OK(mr_x509_sans(cert, &cs));
    assert_int_equal(cs.n_dns, 2);
    assert_string_equal(cs.dns[0], "a.example");
    assert_string_equal(cs.dns[1], "b.example");
    assert_int_equal(cs.n_ips, 4);
    char ip[MR_IP_TEXT_MAX];
    static const char *const cert_order[] = {"10.0.0.1", "::2", "127.0.0.1", "::1"};
    for (size_t i = 0; i < 4; i++) {
        MR_ASSERT_OK(mr_ip_format(&cs.ips[i], ip, sizeof(ip)));
        assert_string_equal(ip, cert_order[i]);
    }
    mr_buf cn;
    mr_buf_init(&cn, 0, 0);
    MR_ASSERT_OK(mr_x509_subject_cn(cert, &cn));
    assert_string_equal((const char *)cn.data, "MarbleRun Marble");
    mr_buf_free(&cn);
    assert_false(mr_x509_is_ca(cert));
    MR_ASSERT_OK(mr_csr_from_der(mr_buf_slice(&id.csr_der), &csr));
    MR_ASSERT_OK(mr_csr_sans(csr, &rs));
    static const char *const csr_order[] = {"127.0.0.1", "::1", "10.0.0.1", "::2"};
    assert_int_equal(rs.n_ips, 4);
    for (size_t i = 0; i < 4; i++) {
        MR_ASSERT_OK(mr_ip_format(&rs.ips[i], ip, sizeof(ip)));
        assert_string_equal(ip, csr_order[i]);
    }
    mr_x509_name subj;
    memset(&subj, 0, sizeof(subj));
    MR_ASSERT_OK(mr_csr_subject(csr, &subj));
    assert_int_equal(subj.count, 0);
    mr_x509_name_clear(&subj);
    mr_x509_san_list_clear(&cs);
    mr_x509_san_list_clear(&rs);
    X509_REQ_free(csr);
    X509_free(cert);
    mr_marble_identity_clear(&id);
    /* P-256 on request; an empty entry stays a (empty) DNS name as in Go */
    MR_ASSERT_OK(mr_marble_identity_new("localhost", MR_KEY_EC_P256, &id));
    assert_int_equal(mr_key_type_of(id.key), MR_KEY_EC_P256);
    mr_marble_identity_clear(&id);
}

/* ---- ActivationResp ---- */

/* protobuf-c's structs take non-const pointers; packing only reads through them */
static void *unconst(const void *p)
{
    void *q;
    memcpy(&q, &p, sizeof(q));
    return q;
}

static size_t pack_resp(uint8_t *out, size_t cap, const char *const *files, size_t nf,
                        const char *const *env, size_t ne, const char *const *argv, size_t na)
{
    Rpc__ActivationResp resp;
    Rpc__Parameters p;
    rpc__activation_resp__init(&resp);
    rpc__parameters__init(&p);
    Rpc__Parameters__FilesEntry *fe = mr_calloc(nf + 1, sizeof(*fe));
    Rpc__Parameters__FilesEntry **fep = mr_calloc(nf + 1, sizeof(*fep));
    Rpc__Parameters__EnvEntry *ee = mr_calloc(ne + 1, sizeof(*ee));
    Rpc__Parameters__EnvEntry **eep = mr_calloc(ne + 1, sizeof(*eep));
    assert_true(fe != NULL && fep != NULL && ee != NULL && eep != NULL);
    for (size_t i = 0; i < nf; i++) {
        rpc__parameters__files_entry__init(&fe[i]);
        fe[i].key = unconst(files[2 * i]);
        fe[i].value.data = unconst(files[2 * i + 1]);
        fe[i].value.len = strlen(files[2 * i + 1]);
        fep[i] = &fe[i];
    }
    for (size_t i = 0; i < ne; i++) {
        rpc__parameters__env_entry__init(&ee[i]);
        ee[i].key = unconst(env[2 * i]);
        ee[i].value.data = unconst(env[2 * i + 1]);
        ee[i].value.len = strlen(env[2 * i + 1]);
        eep[i] = &ee[i];
    }
    p.n_files = nf;
    p.files = fep;
    p.n_env = ne;
    p.env = eep;
    p.n_argv = na;
    p.argv = unconst(argv);
    resp.parameters = &p;
    assert_true(rpc__activation_resp__get_packed_size(&resp) <= cap);
    size_t n = rpc__activation_resp__pack(&resp, out);
    mr_free(fe);
    mr_free(fep);
    mr_free(ee);
    mr_free(eep);
    return n;
}

static void test_decode_response(void **state)
{
    (void)state;
    uint8_t buf[4096];
    const char *files[] = {"/a", "one", "/b", "two", "/a", "three"};
    const char *env[] = {"X", "1", "Y", "2"};
    const char *argv[] = {"app", "--flag"};
    size_t n = pack_resp(buf, sizeof(buf), files, 3, env, 2, argv, 2);
    mr_marble_params p;
    MR_ASSERT_OK(mr_marble_params_decode(MR_SLICE(buf, n), &p));
    assert_int_equal(p.n_files, 2); /* the later "/a" replaced the earlier one */
    assert_string_equal(p.files[0].name, "/a");
    assert_memory_equal(p.files[0].value.data, "three", 5);
    assert_int_equal(p.n_env, 2);
    assert_int_equal(p.argc, 2);
    assert_string_equal(p.argv[1], "--flag");
    MR_ASSERT_OK(mr_marble_params_validate(&p));
    MR_ASSERT_OK(mr_marble_params_check_ttls(&p));
    mr_marble_params_clear(&p);
    /* an empty answer is valid (no parameters) */
    MR_ASSERT_OK(mr_marble_params_decode(MR_SLICE(buf, 0), &p));
    assert_int_equal(p.n_files + p.n_env + p.argc, 0);
    mr_marble_params_clear(&p);
    static const uint8_t junk[] = {0x0a, 0x05, 0x01};
    MR_ASSERT_FAIL(mr_marble_params_decode(MR_SLICE(junk, sizeof(junk)), &p), MR_ERR_PROTOCOL,
                   "not a valid ActivationResp");
    /* every allocation failure is reported, never a crash or leak */
    for (long k = 0; k < 40; k++) {
        mr_alloc_fail_after(k);
        mr_result r = mr_marble_params_decode(MR_SLICE(buf, n), &p);
        mr_alloc_fail_reset();
        if (mr_ok(r))
            mr_marble_params_clear(&p);
    }
}

static void test_validate_and_ttls(void **state)
{
    (void)state;
    uint8_t buf[4096];
    mr_marble_params p;
    const char *bad_env[] = {"A=B", "x"};
    size_t n = pack_resp(buf, sizeof(buf), NULL, 0, bad_env, 1, NULL, 0);
    MR_ASSERT_OK(mr_marble_params_decode(MR_SLICE(buf, n), &p));
    MR_ASSERT_FAIL(mr_marble_params_validate(&p), MR_ERR_PROTOCOL, "setenv A=B");
    mr_marble_params_clear(&p);
    const char *empty_path[] = {"", "x"};
    n = pack_resp(buf, sizeof(buf), empty_path, 1, NULL, 0, NULL, 0);
    MR_ASSERT_OK(mr_marble_params_decode(MR_SLICE(buf, n), &p));
    MR_ASSERT_FAIL(mr_marble_params_validate(&p), MR_ERR_PROTOCOL, "empty path");
    mr_marble_params_clear(&p);
    /* a NUL byte in an env value */
    n = pack_resp(buf, sizeof(buf), NULL, 0, (const char *[]){"N", "ab"}, 1, NULL, 0);
    MR_ASSERT_OK(mr_marble_params_decode(MR_SLICE(buf, n), &p));
    p.env[0].value.data[1] = '\0';
    MR_ASSERT_FAIL(mr_marble_params_validate(&p), MR_ERR_PROTOCOL, "NUL byte");
    mr_marble_params_clear(&p);

    const char *ttls_empty[] = {"MARBLE_TTLS_CONFIG", "{\"tls\":{}}"};
    n = pack_resp(buf, sizeof(buf), NULL, 0, ttls_empty, 1, NULL, 0);
    MR_ASSERT_OK(mr_marble_params_decode(MR_SLICE(buf, n), &p));
    MR_ASSERT_FAIL(mr_marble_params_check_ttls(&p), MR_ERR_PROTOCOL, "TTLS config is empty");
    mr_marble_params_clear(&p);
    const char *ttls_bad[] = {"MARBLE_TTLS_CONFIG", "{"};
    n = pack_resp(buf, sizeof(buf), NULL, 0, ttls_bad, 1, NULL, 0);
    MR_ASSERT_OK(mr_marble_params_decode(MR_SLICE(buf, n), &p));
    MR_ASSERT_FAIL(mr_marble_params_check_ttls(&p), MR_ERR_PROTOCOL, "parsing TTLS config");
    mr_marble_params_clear(&p);
    const char *ttls[] = {"MARBLE_TTLS_CONFIG",
                          "{\"tls\":{\"Incoming\":{\"*:8080\":{}},\"Outgoing\":{}}}"};
    n = pack_resp(buf, sizeof(buf), NULL, 0, ttls, 1, NULL, 0);
    MR_ASSERT_OK(mr_marble_params_decode(MR_SLICE(buf, n), &p));
    MR_ASSERT_OK(mr_marble_params_check_ttls(&p)); /* logged; libmarble-ttls.so applies it */
    mr_marble_params_clear(&p);
}


/* ---- names with NUL bytes, from hand-made wire bytes (protobuf-c would truncate them) ---- */

/* Appends field `num` as a length-delimited field (lengths < 128). */
static void ld(mr_buf *b, unsigned num, const void *data, size_t len)
{
    assert_true(len < 128);
    MR_ASSERT_OK(mr_buf_append_u8(b, (uint8_t)(num << 3 | 2)));
    MR_ASSERT_OK(mr_buf_append_u8(b, (uint8_t)len));
    MR_ASSERT_OK(mr_buf_append(b, data, len));
}

/* ActivationResp{Parameters{<field num>: entry or string}} with an entry key/value of given
 * lengths (embedded NULs allowed); for num 3 (Argv) `key` is the string. `extra` (may be
 * empty) is appended to Parameters as further raw fields. */
static void raw_resp(mr_buf *out, unsigned num, const char *key, size_t klen, const char *val,
                     size_t vlen, const uint8_t *extra, size_t elen)
{
    mr_buf entry, params;
    mr_buf_init(&entry, 0, 0);
    mr_buf_init(&params, 0, 0);
    mr_buf_reset(out);
    if (num == 3) {
        ld(&params, 3, key, klen);
    } else {
        ld(&entry, 1, key, klen);
        ld(&entry, 2, val, vlen);
        ld(&params, num, entry.data, entry.len);
    }
    if (elen > 0)
        MR_ASSERT_OK(mr_buf_append(&params, extra, elen));
    ld(out, 1, params.data, params.len);
    mr_buf_free(&entry);
    mr_buf_free(&params);
}

static void test_names_with_nul(void **state)
{
    (void)state;
    mr_buf b;
    mr_marble_params p;
    mr_buf_init(&b, 0, 0);

    /* the hand-made encoding is sound: without NULs it decodes, unknown fields of every wire
     * type are skipped */
    static const uint8_t unknown[] = {0x20, 0x96, 0x01,                         /* 4: varint */
                                      0x29, 1, 2, 3, 4, 5, 6, 7, 8,             /* 5: i64 */
                                      0x35, 1, 2, 3, 4,                         /* 6: i32 */
                                      0x3a, 2, 0, 0};                           /* 7: bytes */
    raw_resp(&b, 1, "/etc/a", 6, "v\0w", 3, unknown, sizeof(unknown));
    MR_ASSERT_OK(mr_marble_params_decode(mr_buf_slice(&b), &p));
    assert_int_equal(p.n_files, 1);
    assert_string_equal(p.files[0].name, "/etc/a");
    assert_int_equal(p.files[0].value.len, 3); /* file contents are bytes: NULs allowed */
    mr_marble_params_clear(&p);

    /* a Files path with a NUL: not truncated to "/etc/a" but refused */
    raw_resp(&b, 1, "/etc/a\0/../b", 12, "x", 1, NULL, 0);
    MR_ASSERT_FAIL(mr_marble_params_decode(mr_buf_slice(&b), &p), MR_ERR_PROTOCOL,
                   "Files path \"/etc/a\" has a NUL byte at offset 6");
    assert_null(p.files);
    /* an Env name */
    raw_resp(&b, 2, "PATH\0X", 6, "/bin", 4, NULL, 0);
    MR_ASSERT_FAIL(mr_marble_params_decode(mr_buf_slice(&b), &p), MR_ERR_PROTOCOL,
                   "Env name \"PATH\" has a NUL byte");
    /* an Argv entry */
    raw_resp(&b, 3, "--x\0--y", 7, NULL, 0, NULL, 0);
    MR_ASSERT_FAIL(mr_marble_params_decode(mr_buf_slice(&b), &p), MR_ERR_PROTOCOL,
                   "Argv entry \"--x\" has a NUL byte");
    /* a NUL in a later, repeated Parameters field (protobuf-c merges them) */
    mr_buf more;
    mr_buf_init(&more, 0, 0);
    raw_resp(&more, 1, "/ok", 3, "x", 1, NULL, 0);
    raw_resp(&b, 2, "A\0", 2, "x", 1, NULL, 0);
    MR_ASSERT_OK(mr_buf_append(&more, b.data, b.len));
    MR_ASSERT_FAIL(mr_marble_params_decode(mr_buf_slice(&more), &p), MR_ERR_PROTOCOL,
                   "Env name \"A\" has a NUL byte");
    mr_buf_free(&more);

    /* an Env value is bytes: it decodes, and validation refuses it (setenv would fail) */
    raw_resp(&b, 2, "A", 1, "x\0y", 3, NULL, 0);
    MR_ASSERT_OK(mr_marble_params_decode(mr_buf_slice(&b), &p));
    assert_int_equal(p.env[0].value.len, 3);
    MR_ASSERT_FAIL(mr_marble_params_validate(&p), MR_ERR_PROTOCOL,
                   "setenv A: invalid argument (NUL byte in value)");
    mr_marble_params_clear(&p);
    mr_buf_free(&b);
}

/* ---- application ---- */

static void test_apply_files_and_env(void **state)
{
    (void)state;
    uint8_t buf[4096];
    char f1[512], f2[512], f3[512], d1[512];
    path_in(f1, sizeof(f1), "new/deeper/one.txt");
    path_in(f2, sizeof(f2), "existing.txt");
    path_in(f3, sizeof(f3), "top.txt");
    path_in(d1, sizeof(d1), "new");
    write_text(f2, "old");
    assert_int_equal(chmod(f2, 0640), 0);
    const char *files[] = {f1, "first", f2, "second", f3, ""};
    const char *env[] = {"MR_TEST_ENV_A", "value a", "MR_TEST_ENV_B", ""};
    size_t n = pack_resp(buf, sizeof(buf), files, 3, env, 2, NULL, 0);
    mr_marble_params p;
    MR_ASSERT_OK(mr_marble_params_decode(MR_SLICE(buf, n), &p));
    assert_int_equal(setenv("MR_TEST_ENV_A", "host value", 1), 0);
    MR_ASSERT_OK(mr_marble_apply_files(&p, MR_RT_PLAIN));
    MR_ASSERT_OK(mr_marble_apply_env(&p));
    struct stat st;
    assert_int_equal(stat(d1, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(stat(f1, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 5);
    assert_int_equal(stat(f2, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600); /* an existing file keeps only its owner bits */
    assert_int_equal(st.st_size, 6);
    assert_int_equal(stat(f3, &st), 0);
    assert_int_equal(st.st_size, 0);
    assert_string_equal(getenv("MR_TEST_ENV_A"), "value a"); /* overwritten */
    assert_string_equal(getenv("MR_TEST_ENV_B"), "");
    assert_int_equal(count_entries(g_dir), 3); /* new/, existing.txt, top.txt: no temporaries */
    mr_marble_params_clear(&p);
}

static void test_apply_files_all_or_nothing(void **state)
{
    (void)state;
    uint8_t buf[4096];
    char blocker[512], ok1[512], ok2[512], bad[512], existing[512];
    path_in(blocker, sizeof(blocker), "blocker");
    path_in(existing, sizeof(existing), "keep.txt");
    path_in(ok1, sizeof(ok1), "made/a/ok1.txt");
    path_in(ok2, sizeof(ok2), "ok2.txt");
    path_in(bad, sizeof(bad), "blocker/sub/bad.txt");
    write_text(blocker, "a file where a directory would be needed");
    write_text(existing, "untouched");
    /* whatever order the map has, a failing entry leaves every visible file as it was */
    const char *orders[2][8] = {{ok1, "1", existing, "changed", ok2, "2", bad, "x"},
                                {bad, "x", ok1, "1", existing, "changed", ok2, "2"}};
    for (size_t o = 0; o < 2; o++) {
        size_t n = pack_resp(buf, sizeof(buf), orders[o], 4, NULL, 0, NULL, 0);
        mr_marble_params p;
        MR_ASSERT_OK(mr_marble_params_decode(MR_SLICE(buf, n), &p));
        MR_ASSERT_FAIL(mr_marble_apply_files(&p, MR_RT_PLAIN), MR_ERR_IO, "blocker");
        struct stat st;
        assert_int_not_equal(stat(ok1, &st), 0);
        assert_int_not_equal(stat(ok2, &st), 0);
        char made[512];
        path_in(made, sizeof(made), "made");
        assert_int_not_equal(stat(made, &st), 0); /* created directories removed again */
        assert_int_equal(stat(existing, &st), 0);
        assert_int_equal(st.st_size, 9);
        assert_int_equal(count_entries(g_dir), 2); /* blocker, keep.txt */
        mr_marble_params_clear(&p);
    }
}


/* ---- Gramine key files (§1.4 step 7), under a temporary root ---- */

static void read_file(const char *path, char *out, size_t cap)
{
    assert_int_equal(chmod(path, 0600), 0); /* written with mode 0 */
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    assert_int_equal(fclose(f), 0);
}

static mode_t mode_of(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_mode & 07777;
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static void test_gramine_key_files(void **state)
{
    (void)state;
    uint8_t buf[4096];
    char keys[512], k1[512], k2[512], pf[512], cfg[512], content[128];
    path_in(keys, sizeof(keys), "dev/attestation/keys");
    path_in(k1, sizeof(k1), "dev/attestation/keys/default");
    path_in(k2, sizeof(k2), "dev/attestation/keys/other");
    path_in(pf, sizeof(pf), "dev/attestation/protected_files_key");
    path_in(cfg, sizeof(cfg), "etc/app/cfg");
    char dev[512], att[512];
    path_in(dev, sizeof(dev), "dev");
    path_in(att, sizeof(att), "dev/attestation");
    assert_int_equal(mkdir(dev, 0755), 0);
    assert_int_equal(mkdir(att, 0755), 0);
    assert_int_equal(mkdir(keys, 0755), 0);
    write_text(k1, "a much longer old key that O_TRUNC must cut");
    const char *files[] = {"/etc/app/cfg", "config", GRAMINE_PF,
                           "00112233445566778899aabbccddeeff", "/dev/attestation/keys/default",
                           "0123456789abcdef", "/dev/attestation/keys/other", "fedcba9876543210"};
    size_t n = pack_resp(buf, sizeof(buf), files, 4, NULL, 0, NULL, 0);
    mr_marble_params p;
    MR_ASSERT_OK(mr_marble_params_decode(MR_SLICE(buf, n), &p));
    MR_ASSERT_OK(mr_marble_apply_files_at(&p, MR_RT_GRAMINE, g_dir));
    /* written in place: new key files with mode 0, an existing one truncated */
    assert_int_equal(mode_of(k2), 0);
    assert_int_equal(mode_of(pf), 0);
    read_file(k1, content, sizeof(content));
    assert_string_equal(content, "0123456789abcdef");
    read_file(k2, content, sizeof(content));
    assert_string_equal(content, "fedcba9876543210");
    read_file(pf, content, sizeof(content));
    assert_string_equal(content, "00112233445566778899aabbccddeeff");
    assert_int_equal(count_entries(keys), 2); /* no temporaries */
    assert_int_equal(count_entries(att), 2);  /* keys/, protected_files_key */
    /* the ordinary file: staged as usual */
    assert_int_equal(mode_of(cfg), 0600);
    read_file(cfg, content, sizeof(content));
    assert_string_equal(content, "config");
    mr_marble_params_clear(&p);
}

/* The order: keys, then protected_files_key, then the ordinary files, whatever the map order.
 * Observed through failures: what comes later is not written. */
static void test_gramine_key_order(void **state)
{
    (void)state;
    uint8_t buf[4096];
    char att[512], keys[512], k[512], pf[512], dev[512], a[512], etc[512];
    path_in(dev, sizeof(dev), "dev");
    path_in(att, sizeof(att), "dev/attestation");
    path_in(keys, sizeof(keys), "dev/attestation/keys");
    path_in(k, sizeof(k), "dev/attestation/keys/k");
    path_in(pf, sizeof(pf), "dev/attestation/protected_files_key");
    path_in(a, sizeof(a), "etc/a");
    path_in(etc, sizeof(etc), "etc");
    assert_int_equal(mkdir(dev, 0755), 0);
    assert_int_equal(mkdir(att, 0755), 0);
    /* the files in every map order that puts a key file late */
    const char *orders[3][6] = {
        {"/etc/a", "a", GRAMINE_PF, "pf", "/dev/attestation/keys/k", "k"},
        {GRAMINE_PF, "pf", "/dev/attestation/keys/k", "k", "/etc/a", "a"},
        {GRAMINE_PF, "pf", "/etc/a", "a", "/dev/attestation/keys/k", "k"}};
    for (size_t o = 0; o < 3; o++) {
        size_t n = pack_resp(buf, sizeof(buf), orders[o], 3, NULL, 0, NULL, 0);
        mr_marble_params p;
        MR_ASSERT_OK(mr_marble_params_decode(MR_SLICE(buf, n), &p));
        /* no keys/ directory: the key fails first; neither the protected_files_key nor the
         * ordinary file was written */
        MR_ASSERT_FAIL(mr_marble_apply_files_at(&p, MR_RT_GRAMINE, g_dir), MR_ERR_IO,
                       "dev/attestation/keys/k: No such file or directory");
        assert_false(exists(pf));
        assert_false(exists(etc));
        /* protected_files_key cannot be written (a directory is in the way): the key was
         * written before it, the ordinary file is not */
        assert_int_equal(mkdir(keys, 0755), 0);
        assert_int_equal(mkdir(pf, 0755), 0);
        MR_ASSERT_FAIL(mr_marble_apply_files_at(&p, MR_RT_GRAMINE, g_dir), MR_ERR_IO,
                       "protected_files_key");
        assert_true(exists(k));
        assert_false(exists(etc));
        /* all three */
        assert_int_equal(rmdir(pf), 0);
        MR_ASSERT_OK(mr_marble_apply_files_at(&p, MR_RT_GRAMINE, g_dir));
        assert_true(exists(k) && exists(pf) && exists(a));
        rm_rf(keys);
        rm_rf(pf);
        rm_rf(etc);
        mr_marble_params_clear(&p);
    }
}

/* On other runtimes the Gramine paths are ordinary files: staged (0700 directories, 0600
 * files) and rolled back with the rest. */
static void test_gramine_paths_elsewhere_are_ordinary(void **state)
{
    (void)state;
    uint8_t buf[4096];
    char k[512], pf[512], keys[512], dev[512], blocker[512];
    path_in(k, sizeof(k), "dev/attestation/keys/k");
    path_in(pf, sizeof(pf), "dev/attestation/protected_files_key");
    path_in(keys, sizeof(keys), "dev/attestation/keys");
    path_in(dev, sizeof(dev), "dev");
    path_in(blocker, sizeof(blocker), "blocker");
    const mr_marble_runtime rts[] = {MR_RT_PLAIN, MR_RT_OCCLUM};
    for (size_t r = 0; r < MR_ARRAY_LEN(rts); r++) {
        const char *files[] = {GRAMINE_PF, "pf", "/dev/attestation/keys/k", "k"};
        size_t n = pack_resp(buf, sizeof(buf), files, 2, NULL, 0, NULL, 0);
        mr_marble_params p;
        MR_ASSERT_OK(mr_marble_params_decode(MR_SLICE(buf, n), &p));
        MR_ASSERT_OK(mr_marble_apply_files_at(&p, rts[r], g_dir));
        assert_int_equal(mode_of(k), 0600);
        assert_int_equal(mode_of(pf), 0600);
        assert_int_equal(mode_of(keys), 0700);
        mr_marble_params_clear(&p);
        rm_rf(dev);
        /* a failing ordinary file: the key files are rolled back with it */
        write_text(blocker, "x");
        const char *bad[] = {"/dev/attestation/keys/k", "k", "/blocker/sub/f", "f"};
        n = pack_resp(buf, sizeof(buf), bad, 2, NULL, 0, NULL, 0);
        MR_ASSERT_OK(mr_marble_params_decode(MR_SLICE(buf, n), &p));
        MR_ASSERT_FAIL(mr_marble_apply_files_at(&p, rts[r], g_dir), MR_ERR_IO, "blocker");
        assert_false(exists(dev));
        assert_int_equal(count_entries(g_dir), 1);
        mr_marble_params_clear(&p);
        rm_rf(blocker);
    }
}

/* ---- log prefix ---- */

static void test_log_prefix(void **state)
{
    (void)state;
    char path[] = "/tmp/mr-marble-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    mr_log_set_fd(fd);
    mr_log_init(MR_LOG_INFO, MR_LOG_JSON);
    mr_log_set_prefix("[PreMain] ");
    MR_LOG_INFO("one");
    mr_log_init(MR_LOG_INFO, MR_LOG_CONSOLE);
    MR_LOG_WARN("two", MR_F_STR("k", "v"));
    mr_log_set_prefix(NULL); /* back to none: unchanged output */
    MR_LOG_INFO("three");
    mr_log_set_fd(2);
    mr_log_init(MR_LOG_INFO, MR_LOG_JSON);
    char text[2048];
    ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
    assert_true(n > 0);
    text[n] = '\0';
    (void)close(fd);
    (void)unlink(path);
    assert_non_null(strstr(text, "\"msg\":\"[PreMain] one\""));
    assert_non_null(strstr(text, "\t[PreMain] two\t{\"k\": \"v\"}\n"));
    assert_non_null(strstr(text, "\tthree\n"));
    assert_null(strstr(text, "[PreMain] three"));
    assert_null(strstr(text, "[PreMain] [PreMain]"));
}

/* ---- gRPC framing ---- */

static void test_apply_files_through_symlink(void **state)
{
    (void)state;
    uint8_t buf[4096];
    char real[512], link[512];
    path_in(real, sizeof(real), "real.txt");
    path_in(link, sizeof(link), "link.txt");
    write_text(real, "old");
    assert_int_equal(chmod(real, 0644), 0);
    assert_int_equal(symlink("real.txt", link), 0);
    const char *files[] = {link, "new content"};
    size_t n = pack_resp(buf, sizeof(buf), files, 1, NULL, 0, NULL, 0);
    mr_marble_params p;
    MR_ASSERT_OK(mr_marble_params_decode(MR_SLICE(buf, n), &p));
    /* a secret is never written through a symbolic link: refused, nothing changes */
    MR_ASSERT_FAIL(mr_marble_apply_files(&p, MR_RT_PLAIN), MR_ERR_IO, "symbolic link");
    struct stat st;
    assert_int_equal(lstat(link, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_int_equal(stat(real, &st), 0);
    assert_int_equal(st.st_size, 3);
    assert_int_equal(st.st_mode & 0777, 0644);
    assert_int_equal(count_entries(g_dir), 2);
    mr_marble_params_clear(&p);
}

static void test_answer_entry_limit(void **state)
{
    (void)state;
    enum { N = MR_MARBLE_ENTRIES_MAX + 1 };
    char(*names)[16] = mr_calloc(N, sizeof(*names));
    const char **env = mr_calloc(2 * N, sizeof(char *));
    uint8_t *buf = mr_alloc((size_t)1 << 20);
    assert_non_null(names);
    assert_non_null(env);
    assert_non_null(buf);
    for (int i = 0; i < N; i++) {
        (void)snprintf(names[i], sizeof(names[i]), "E%d", i);
        env[2 * i] = names[i];
        env[2 * i + 1] = "v";
    }
    size_t n = pack_resp(buf, (size_t)1 << 20, NULL, 0, env, N, NULL, 0);
    mr_marble_params p;
    MR_ASSERT_FAIL(mr_marble_params_decode(MR_SLICE(buf, n), &p), MR_ERR_PROTOCOL,
                   "too many Env entries");
    n = pack_resp(buf, (size_t)1 << 20, NULL, 0, env, N - 1, NULL, 0);
    MR_ASSERT_OK(mr_marble_params_decode(MR_SLICE(buf, n), &p));
    assert_int_equal(p.n_env, N - 1);
    mr_marble_params_clear(&p);
    mr_free(buf);
    mr_free((void *)env);
    mr_free(names);
}

static void test_grpc_framing(void **state)
{
    (void)state;
    mr_slice msg;
    static const uint8_t good[] = {0, 0, 0, 0, 2, 0xaa, 0xbb};
    MR_ASSERT_OK(mr_marble_grpc_unframe(MR_SLICE(good, sizeof(good)), &msg));
    assert_int_equal(msg.len, 2);
    assert_int_equal(msg.ptr[1], 0xbb);
    static const uint8_t empty[] = {0, 0, 0, 0, 0};
    MR_ASSERT_OK(mr_marble_grpc_unframe(MR_SLICE(empty, sizeof(empty)), &msg));
    assert_int_equal(msg.len, 0);
    static const uint8_t compressed[] = {1, 0, 0, 0, 0};
    MR_ASSERT_FAIL(mr_marble_grpc_unframe(MR_SLICE(compressed, 5), &msg), MR_ERR_PROTOCOL,
                   "compressed");
    static const uint8_t short_msg[] = {0, 0, 0, 0, 3, 1};
    MR_ASSERT_FAIL(mr_marble_grpc_unframe(MR_SLICE(short_msg, sizeof(short_msg)), &msg),
                   MR_ERR_PROTOCOL, "grpc: response did not contain a complete message");
    static const uint8_t two[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    MR_ASSERT_FAIL(mr_marble_grpc_unframe(MR_SLICE(two, sizeof(two)), &msg), MR_ERR_PROTOCOL,
                   "grpc: more than one message in a unary response");
    MR_ASSERT_FAIL(mr_marble_grpc_unframe(MR_SLICE(two, 3), &msg), MR_ERR_PROTOCOL,
                   "complete message");
    /* over the response limit: refused before anything else */
    static const uint8_t huge[] = {0, 0x7f, 0xff, 0xff, 0xff};
    MR_ASSERT_FAIL(mr_marble_grpc_unframe(MR_SLICE(huge, sizeof(huge)), &msg), MR_ERR_USAGE,
                   "grpc: received message larger than max");
}

static void test_config_from_env(void **state)
{
    (void)state;
    mr_marble_config cfg;
    assert_int_equal(unsetenv("EDG_MARBLE_TYPE"), 0);
    MR_ASSERT_FAIL(mr_marble_config_from_env(&cfg), MR_ERR_USAGE,
                   "environment variable not set: EDG_MARBLE_TYPE");
    assert_int_equal(setenv("EDG_MARBLE_TYPE", "", 1), 0); /* empty = unset */
    MR_ASSERT_FAIL(mr_marble_config_from_env(&cfg), MR_ERR_USAGE, "EDG_MARBLE_TYPE");
    assert_int_equal(setenv("EDG_MARBLE_TYPE", "t", 1), 0);
    assert_int_equal(unsetenv("EDG_MARBLE_COORDINATOR_ADDR"), 0);
    assert_int_equal(unsetenv("EDG_MARBLE_DNS_NAMES"), 0);
    assert_int_equal(unsetenv("EDG_MARBLE_UUID_FILE"), 0);
    assert_int_equal(setenv("EDG_CWD", "/some/where", 1), 0);
    MR_ASSERT_OK(mr_marble_config_from_env(&cfg));
    assert_string_equal(cfg.coordinator_addr, "localhost:2001");
    assert_string_equal(cfg.dns_names, "localhost");
    assert_string_equal(cfg.uuid_file, "/some/where/uuid");
    assert_string_equal(cfg.client_addr, "localhost:4433");
    assert_int_equal(cfg.curve, MR_KEY_EC_P384);
    assert_null(cfg.pin_root_ca);
    assert_int_equal(unsetenv("EDG_CWD"), 0);
}

/* ---- what the premain executes ---- */

static void test_runtime_and_exec_plan(void **state)
{
    (void)state;
    assert_int_equal(mr_marble_runtime_from_uname("Linux", "3.10.0", "1", "x86_64"), MR_RT_GRAMINE);
    assert_int_equal(mr_marble_runtime_from_uname("Occlum", "0.31", "x", "x86_64"), MR_RT_OCCLUM);
    assert_int_equal(mr_marble_runtime_from_uname("Linux", "6.1.0", "#1 SMP", "x86_64"), MR_RT_PLAIN);

    char a0[] = "/usr/bin/marblerun-premain", c0[] = "/bin/app", c1[] = "x";
    char *cmd[] = {c0, c1};
    char m0[] = "/opt/bin/server", m1[] = "--port", m2[] = "80";
    char *margv[] = {m0, m1, m2};
    mr_marble_params with = {.argv = margv, .argc = 3};
    mr_marble_params none = {0};
    mr_marble_exec_plan plan;

    /* plain: the given program runs with the manifest's argv; else the manifest's Argv[0] */
    MR_ASSERT_OK(mr_marble_plan_exec(MR_RT_PLAIN, a0, cmd, 2, &with, &plan));
    assert_string_equal(plan.service, "/bin/app");
    assert_int_equal(plan.argc, 3);
    assert_string_equal(plan.argv[0], "/opt/bin/server");
    assert_null(plan.argv[3]);
    mr_marble_exec_plan_clear(&plan);
    MR_ASSERT_OK(mr_marble_plan_exec(MR_RT_PLAIN, a0, NULL, 0, &with, &plan));
    assert_string_equal(plan.service, "/opt/bin/server");
    mr_marble_exec_plan_clear(&plan);
    MR_ASSERT_OK(mr_marble_plan_exec(MR_RT_PLAIN, a0, cmd, 2, &none, &plan));
    assert_string_equal(plan.service, "/bin/app");
    assert_int_equal(plan.argc, 2);
    assert_string_equal(plan.argv[1], "x");
    mr_marble_exec_plan_clear(&plan);
    MR_ASSERT_FAIL(mr_marble_plan_exec(MR_RT_PLAIN, a0, NULL, 0, &none, &plan), MR_ERR_USAGE,
                   "nothing to execute");

    /* Gramine: premain-libos executes its own argv[0]; empty Argv means ["./marble"] */
    char g0[] = "/app";
    MR_ASSERT_OK(mr_marble_plan_exec(MR_RT_GRAMINE, g0, NULL, 0, &none, &plan));
    assert_string_equal(plan.service, "/app");
    assert_int_equal(plan.argc, 1);
    assert_string_equal(plan.argv[0], "./marble");
    mr_marble_exec_plan_clear(&plan);
    MR_ASSERT_OK(mr_marble_plan_exec(MR_RT_GRAMINE, g0, NULL, 0, &with, &plan));
    assert_string_equal(plan.service, "/app");
    assert_string_equal(plan.argv[2], "80");
    mr_marble_exec_plan_clear(&plan);

    /* Occlum: the manifest's absolute Argv[0] runs, and sees its basename */
    MR_ASSERT_OK(mr_marble_plan_exec(MR_RT_OCCLUM, a0, NULL, 0, &with, &plan));
    assert_string_equal(plan.service, "/opt/bin/server");
    assert_string_equal(plan.argv[0], "server");
    assert_string_equal(plan.argv[1], "--port");
    mr_marble_exec_plan_clear(&plan);
    assert_string_equal(m0, "/opt/bin/server"); /* the params are not modified */
    MR_ASSERT_FAIL(mr_marble_plan_exec(MR_RT_OCCLUM, a0, NULL, 0, &none, &plan), MR_ERR_USAGE,
                   "invalid entrypoint definition in argv[0]");

    /* Gramine and Occlum never pass the premain's own arguments on (§1.4 step 10, §1.6) */
    char h0[] = "/bin/app", h1[] = "--evil", h2[] = "flag";
    char *host[] = {h0, h1, h2};
    MR_ASSERT_OK(mr_marble_plan_exec(MR_RT_GRAMINE, g0, host, 3, &none, &plan));
    assert_string_equal(plan.service, "/bin/app"); /* loader.argv's program after "--" */
    assert_int_equal(plan.argc, 1);
    assert_string_equal(plan.argv[0], "./marble");
    assert_null(plan.argv[1]);
    assert_int_equal(plan.ignored, 2);
    mr_marble_exec_plan_clear(&plan);
    MR_ASSERT_OK(mr_marble_plan_exec(MR_RT_GRAMINE, g0, host, 3, &with, &plan));
    assert_string_equal(plan.service, "/bin/app");
    assert_int_equal(plan.argc, 3);
    assert_string_equal(plan.argv[0], "/opt/bin/server");
    assert_string_equal(plan.argv[1], "--port");
    mr_marble_exec_plan_clear(&plan);
    MR_ASSERT_OK(mr_marble_plan_exec(MR_RT_GRAMINE, g0, host, 1, &none, &plan));
    assert_int_equal(plan.ignored, 0);
    assert_string_equal(plan.argv[0], "./marble");
    mr_marble_exec_plan_clear(&plan);
    /* Occlum: host arguments choose neither the program nor its argv */
    MR_ASSERT_FAIL(mr_marble_plan_exec(MR_RT_OCCLUM, a0, host, 3, &none, &plan), MR_ERR_USAGE,
                   "invalid entrypoint definition in argv[0]: ./marble");
    MR_ASSERT_OK(mr_marble_plan_exec(MR_RT_OCCLUM, a0, host, 3, &with, &plan));
    assert_string_equal(plan.service, "/opt/bin/server");
    assert_int_equal(plan.argc, 3);
    assert_string_equal(plan.argv[0], "server");
    assert_string_equal(plan.argv[2], "80");
    assert_int_equal(plan.ignored, 3);
    mr_marble_exec_plan_clear(&plan);
    /* plain (no host/enclave boundary): the manifest's Argv wins over the command line */
    MR_ASSERT_OK(mr_marble_plan_exec(MR_RT_PLAIN, a0, host, 3, &with, &plan));
    assert_int_equal(plan.argc, 3);
    assert_string_equal(plan.argv[1], "--port");
    assert_int_equal(plan.ignored, 0);
    mr_marble_exec_plan_clear(&plan);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uuid_forms),
        cmocka_unit_test_setup_teardown(test_uuid_file_created_then_reused, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_uuid_file_errors, setup_dir, teardown_dir),
        cmocka_unit_test(test_identity_sans_and_key),
        cmocka_unit_test(test_decode_response),
        cmocka_unit_test(test_validate_and_ttls),
        cmocka_unit_test(test_names_with_nul),
        cmocka_unit_test_setup_teardown(test_apply_files_and_env, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_apply_files_all_or_nothing, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_apply_files_through_symlink, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_gramine_key_files, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_gramine_key_order, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_gramine_paths_elsewhere_are_ordinary, setup_dir,
                                        teardown_dir),
        cmocka_unit_test(test_log_prefix),
        cmocka_unit_test(test_answer_entry_limit),
        cmocka_unit_test(test_grpc_framing),
        cmocka_unit_test(test_config_from_env),
        cmocka_unit_test(test_runtime_and_exec_plan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
