/* SPDX-License-Identifier: Apache-2.0 */
/* Sealing: KEK providers, load outcomes, recovery, seal modes. */
#include "mr_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "coordinator/seal/seal.h"
#include "store_test_util.h"

static mr_sealer *open_sealer(const char *dir, const char *kek, const char *gdir)
{
    mr_seal_config cfg = {.seal_dir = dir, .kek = kek, .gramine_keys_dir = gdir};
    mr_sealer *s = NULL;
    MR_ASSERT_OK(mr_sealer_open(&cfg, &s));
    return s;
}

static mr_seal_outcome load(mr_sealer *s, mr_store **st)
{
    mr_seal_outcome o = MR_SEAL_NO_STATE;
    MR_ASSERT_OK(mr_sealer_load(s, NULL, &o, st));
    if (o != MR_SEAL_LOADED)
        assert_null(*st);
    return o;
}

static void check_value(mr_store *st, const char *key, const char *want)
{
    mr_buf v;
    bool found = false;
    mr_buf_init(&v, 0, MR_BUF_SECRET);
    MR_ASSERT_OK(mr_store_get1(st, key, &v, &found));
    assert_true(found);
    assert_int_equal(v.len, strlen(want));
    assert_memory_equal(v.data, want, v.len);
    mr_buf_free(&v);
}

static int file_mode(const char *dir, const char *name)
{
    char p[1024];
    struct stat st;
    st_path(p, sizeof(p), dir, name);
    assert_int_equal(stat(p, &st), 0);
    return (int)(st.st_mode & 0777);
}

static void test_file_provider_lifecycle(void **state)
{
    (void)state;
    char *base = st_mkdtemp();
    char dir[1024];
    st_path(dir, sizeof(dir), base, "marblerun-coordinator-data");
    mr_store *st = NULL;
    mr_sealer *s = open_sealer(dir, NULL, NULL); /* default: file:<dir>/kek */
    assert_int_equal(mr_sealer_kek_kind(s), MR_KEK_FILE);
    assert_int_equal(load(s, &st), MR_SEAL_NO_STATE);
    assert_false(mr_sealer_has_dek(s));
    MR_ASSERT_OK(mr_sealer_create(s, NULL, &st));
    st_put(st, "state", "2");
    mr_store_close(st);
    mr_buf dek1;
    mr_buf_init(&dek1, 0, MR_BUF_SECRET);
    MR_ASSERT_OK(mr_sealer_export_dek(s, &dek1));
    assert_int_equal(dek1.len, 32);
    mr_buf plain;
    mr_buf_init(&plain, 0, 0);
    MR_ASSERT_FAIL(mr_sealer_export_dek(s, &plain), MR_ERR_USAGE, "secret buffer");
    mr_sealer_free(s);

    assert_int_equal(file_mode(base, "marblerun-coordinator-data"), 0700);
    assert_int_equal(file_mode(dir, "kek"), 0600);
    assert_int_equal(file_mode(dir, "sealed_key"), 0600);
    assert_int_equal(file_mode(dir, "state.log"), 0600);

    /* restart: loads */
    s = open_sealer(dir, NULL, NULL);
    assert_int_equal(load(s, &st), MR_SEAL_LOADED);
    check_value(st, "state", "2");
    mr_store_close(st);
    mr_buf dek2;
    mr_buf_init(&dek2, 0, MR_BUF_SECRET);
    MR_ASSERT_OK(mr_sealer_export_dek(s, &dek2));
    assert_memory_equal(dek1.data, dek2.data, 32);
    mr_sealer_free(s);

    /* a different key file (as on a new host): (c), then recovery with the exported DEK */
    uint8_t other[32];
    memset(other, 0x42, sizeof(other));
    st_write(dir, "kek", other, sizeof(other));
    s = open_sealer(dir, NULL, NULL);
    assert_int_equal(load(s, &st), MR_SEAL_KEY_UNAVAILABLE);
    assert_non_null(strstr(mr_sealer_reason(s), "cannot be unsealed"));
    mr_seal_outcome o;
    uint8_t wrong[32] = {0};
    MR_ASSERT_OK(mr_sealer_recover(s, wrong, sizeof(wrong), NULL, &o, &st));
    assert_int_equal(o, MR_SEAL_STATE_INVALID);
    assert_null(st);
    assert_false(mr_sealer_has_dek(s));
    MR_ASSERT_FAIL(mr_sealer_recover(s, wrong, 16, NULL, &o, &st), MR_ERR_USAGE, "32 bytes");
    MR_ASSERT_OK(mr_sealer_recover(s, dek1.data, dek1.len, NULL, &o, &st));
    assert_int_equal(o, MR_SEAL_LOADED);
    check_value(st, "state", "2");
    st_put(st, "state", "3");
    mr_store_close(st);
    mr_sealer_free(s);
    /* re-sealed for the new key file */
    s = open_sealer(dir, NULL, NULL);
    assert_int_equal(load(s, &st), MR_SEAL_LOADED);
    check_value(st, "state", "3");
    mr_store_close(st);
    mr_sealer_free(s);

    /* key file missing with sealed state present: (c), and it is not recreated */
    char p[1024];
    st_path(p, sizeof(p), dir, "kek");
    unlink(p);
    s = open_sealer(dir, NULL, NULL);
    assert_int_equal(load(s, &st), MR_SEAL_KEY_UNAVAILABLE);
    assert_non_null(strstr(mr_sealer_reason(s), "missing"));
    assert_false(st_exists(dir, "kek"));
    mr_sealer_free(s);

    /* sealed_key missing: (c) */
    st_write(dir, "kek", other, sizeof(other));
    st_path(p, sizeof(p), dir, "sealed_key");
    unlink(p);
    s = open_sealer(dir, NULL, NULL);
    assert_int_equal(load(s, &st), MR_SEAL_KEY_UNAVAILABLE);
    /* a new manifest instead of recovery: fresh state replaces the old one */
    MR_ASSERT_OK(mr_sealer_create(s, NULL, &st));
    char *d = st_dump(st);
    assert_string_equal(d, "");
    mr_free(d);
    st_put(st, "fresh", "1");
    mr_store_close(st);
    mr_sealer_free(s);
    s = open_sealer(dir, NULL, NULL);
    assert_int_equal(load(s, &st), MR_SEAL_LOADED);
    check_value(st, "fresh", "1");
    mr_store_close(st);
    mr_sealer_free(s);

    mr_buf_free(&dek1);
    mr_buf_free(&dek2);
    st_rmdir(base);
}

static void test_state_invalid(void **state)
{
    (void)state;
    char *dir = st_mkdtemp();
    char kek[1100];
    snprintf(kek, sizeof(kek), "file:%s/my.kek", dir);
    mr_store *st = NULL;
    mr_sealer *s = open_sealer(dir, kek, NULL);
    MR_ASSERT_OK(mr_sealer_create(s, NULL, &st));
    st_put(st, "a", "1");
    st_put(st, "b", "2");
    mr_store_close(st);
    mr_sealer_free(s);
    assert_true(st_exists(dir, "my.kek"));
    size_t len = 0;
    uint8_t *log = st_read(dir, "state.log", &len);
    log[len - 3] ^= 1;
    st_write(dir, "state.log", log, len);
    s = open_sealer(dir, kek, NULL);
    assert_int_equal(load(s, &st), MR_SEAL_STATE_INVALID);
    assert_non_null(strstr(mr_sealer_reason(s), "sealed state is corrupted"));
    mr_sealer_free(s);
    mr_free(log);
    st_rmdir(dir);
}

static void test_kek_none(void **state)
{
    (void)state;
    char *dir = st_mkdtemp();
    mr_store *st = NULL;
    mr_sealer *s = open_sealer(dir, "none", NULL);
    assert_int_equal(mr_sealer_kek_kind(s), MR_KEK_NONE);
    MR_ASSERT_OK(mr_sealer_create(s, NULL, &st));
    st_put(st, "k", "v");
    mr_store_close(st);
    mr_buf dek;
    mr_buf_init(&dek, 0, MR_BUF_SECRET);
    MR_ASSERT_OK(mr_sealer_export_dek(s, &dek));
    mr_sealer_free(s);
    assert_false(st_exists(dir, "sealed_key"));
    assert_false(st_exists(dir, "kek"));
    s = open_sealer(dir, "none", NULL);
    assert_int_equal(load(s, &st), MR_SEAL_KEY_UNAVAILABLE);
    assert_non_null(strstr(mr_sealer_reason(s), "disabled"));
    mr_seal_outcome o;
    MR_ASSERT_OK(mr_sealer_recover(s, dek.data, dek.len, NULL, &o, &st));
    assert_int_equal(o, MR_SEAL_LOADED);
    check_value(st, "k", "v");
    mr_store_close(st);
    assert_false(st_exists(dir, "sealed_key"));
    mr_sealer_free(s);
    mr_buf_free(&dek);
    st_rmdir(dir);
}

static void test_bad_kek_spec(void **state)
{
    (void)state;
    char *dir = st_mkdtemp();
    mr_seal_config cfg = {.seal_dir = dir, .kek = "tpm"};
    mr_sealer *s = NULL;
    MR_ASSERT_FAIL(mr_sealer_open(&cfg, &s), MR_ERR_USAGE, "EDG_COORDINATOR_KEK");
    cfg.kek = "file:";
    MR_ASSERT_FAIL(mr_sealer_open(&cfg, &s), MR_ERR_USAGE, "unknown");
    st_rmdir(dir);
}

static void write_sgx_key(const char *gdir, const char *name, uint8_t fill)
{
    uint8_t k[16];
    memset(k, fill, sizeof(k));
    st_write(gdir, name, k, sizeof(k));
}

/* Copies the files of fixture directory src (relative to the source tree) into dst. */
static void copy_fixture(const char *src, const char *dst, const char *const *names, size_t n)
{
    char from[1024];
    const char *root = getenv("MR_SOURCE_DIR");
    snprintf(from, sizeof(from), "%s/tests/fixtures/sealed-v1/%s", root != NULL ? root : ".", src);
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        uint8_t *data = st_read(from, names[i], &len);
        st_write(dst, names[i], data, len);
        mr_free(data);
    }
}

static void check_fixture_content(mr_store *st)
{
    check_value(st, "a", "one");
    check_value(st, "b", "22");
    check_value(st, "c", "333");
    check_value(st, "d", "4444");
    check_value(st, "e", "");
    check_value(st, "f", "sixth");
}

/* State sealed by an earlier build (tests/fixtures/sealed-v1) loads with this one. */
static void test_reads_earlier_state(void **state)
{
    (void)state;
    static const char *const files[] = {"kek", "sealed_key", "state.snap", "state.log"};
    char *dir = st_mkdtemp();
    mr_store *st = NULL;
    copy_fixture("file", dir, files, MR_ARRAY_LEN(files));
    mr_sealer *s = open_sealer(dir, NULL, NULL);
    assert_int_equal(load(s, &st), MR_SEAL_LOADED);
    check_fixture_content(st);
    mr_store_close(st);
    mr_sealer_free(s);
    st_rmdir(dir);

    char *base = st_mkdtemp(), gdir[1024], keys[1024];
    const char *root = getenv("MR_SOURCE_DIR");
    st_path(gdir, sizeof(gdir), base, "seal");
    assert_int_equal(mkdir(gdir, 0700), 0);
    copy_fixture("gramine/state", gdir, files + 1, MR_ARRAY_LEN(files) - 1);
    snprintf(keys, sizeof(keys), "%s/tests/fixtures/sealed-v1/gramine/keys",
             root != NULL ? root : ".");
    s = open_sealer(gdir, "gramine", keys);
    assert_int_equal(load(s, &st), MR_SEAL_LOADED);
    assert_int_equal(mr_sealer_mode(s), MR_SEAL_MODE_PRODUCT_KEY);
    check_fixture_content(st);
    mr_store_close(st);
    mr_sealer_free(s);
    st_rmdir(base);
}

static void test_gramine_provider(void **state)
{
    (void)state;
    char *base = st_mkdtemp();
    char dir[1024], gdir[1024];
    st_path(dir, sizeof(dir), base, "seal");
    st_path(gdir, sizeof(gdir), base, "keys");
    assert_int_equal(mkdir(gdir, 0700), 0);
    write_sgx_key(gdir, "_sgx_mrsigner", 0xa1);
    write_sgx_key(gdir, "_sgx_mrenclave", 0xb2);
    mr_store *st = NULL;
    mr_sealer *s = open_sealer(dir, "gramine", gdir);
    assert_int_equal(mr_sealer_kek_kind(s), MR_KEK_GRAMINE);
    MR_ASSERT_OK(mr_sealer_create(s, NULL, &st));
    st_put(st, "k", "product");
    mr_store_close(st);
    mr_sealer_free(s);
    assert_false(st_exists(dir, "kek"));

    /* ProductKey: survives a change of MRENCLAVE (new enclave version, same signer) */
    write_sgx_key(gdir, "_sgx_mrenclave", 0xb3);
    s = open_sealer(dir, "gramine", gdir);
    assert_int_equal(load(s, &st), MR_SEAL_LOADED);
    assert_int_equal(mr_sealer_mode(s), MR_SEAL_MODE_PRODUCT_KEY);
    mr_store_close(st);
    /* switch to UniqueKey */
    MR_ASSERT_OK(mr_sealer_set_mode(s, MR_SEAL_MODE_UNIQUE_KEY));
    mr_sealer_free(s);
    s = open_sealer(dir, "gramine", gdir);
    assert_int_equal(load(s, &st), MR_SEAL_LOADED);
    assert_int_equal(mr_sealer_mode(s), MR_SEAL_MODE_UNIQUE_KEY);
    check_value(st, "k", "product");
    mr_store_close(st);
    mr_sealer_free(s);
    /* UniqueKey: a different enclave cannot unseal */
    write_sgx_key(gdir, "_sgx_mrenclave", 0xb4);
    s = open_sealer(dir, "gramine", gdir);
    assert_int_equal(load(s, &st), MR_SEAL_KEY_UNAVAILABLE);
    mr_sealer_free(s);
    /* the file provider cannot open a gramine-sealed key */
    s = open_sealer(dir, NULL, NULL);
    assert_int_equal(load(s, &st), MR_SEAL_KEY_UNAVAILABLE);
    assert_non_null(strstr(mr_sealer_reason(s), "gramine"));
    mr_sealer_free(s);
    /* no /dev/attestation at all */
    char nodir[1100];
    snprintf(nodir, sizeof(nodir), "%s/absent", base);
    s = open_sealer(dir, "gramine", nodir);
    assert_int_equal(load(s, &st), MR_SEAL_KEY_UNAVAILABLE);
    assert_non_null(strstr(mr_sealer_reason(s), "not available"));
    mr_sealer_free(s);
    /* a truncated sealing key */
    st_write(gdir, "_sgx_mrenclave", (const uint8_t *)"short", 5);
    s = open_sealer(dir, "gramine", gdir);
    assert_int_equal(load(s, &st), MR_SEAL_KEY_UNAVAILABLE);
    mr_sealer_free(s);
    st_rmdir(base);
}

static void test_seal_mode_disabled(void **state)
{
    (void)state;
    char *dir = st_mkdtemp();
    mr_store *st = NULL;
    mr_sealer *s = open_sealer(dir, NULL, NULL);
    MR_ASSERT_OK(mr_sealer_create(s, NULL, &st));
    st_put(st, "k", "v");
    assert_true(st_exists(dir, "sealed_key"));
    MR_ASSERT_OK(mr_sealer_set_mode(s, MR_SEAL_MODE_DISABLED));
    assert_false(st_exists(dir, "sealed_key"));
    mr_store_close(st);
    mr_sealer_free(s);
    s = open_sealer(dir, NULL, NULL);
    assert_int_equal(load(s, &st), MR_SEAL_KEY_UNAVAILABLE);
    mr_sealer_free(s);
    st_rmdir(dir);
}

static void test_sealed_key_tampered(void **state)
{
    (void)state;
    char *dir = st_mkdtemp();
    mr_store *st = NULL;
    mr_sealer *s = open_sealer(dir, NULL, NULL);
    MR_ASSERT_OK(mr_sealer_create(s, NULL, &st));
    st_put(st, "k", "v");
    mr_store_close(st);
    mr_sealer_free(s);
    size_t len = 0;
    uint8_t *sk = st_read(dir, "sealed_key", &len);
    assert_int_equal(len, 68);
    for (size_t i = 0; i < len; i++) {
        sk[i] ^= 0x10;
        st_write(dir, "sealed_key", sk, len);
        s = open_sealer(dir, NULL, NULL);
        assert_int_equal(load(s, &st), MR_SEAL_KEY_UNAVAILABLE);
        mr_sealer_free(s);
        sk[i] ^= 0x10;
    }
    st_write(dir, "sealed_key", sk, len - 1);
    s = open_sealer(dir, NULL, NULL);
    assert_int_equal(load(s, &st), MR_SEAL_KEY_UNAVAILABLE);
    assert_non_null(strstr(mr_sealer_reason(s), "malformed"));
    mr_sealer_free(s);
    mr_free(sk);
    st_rmdir(dir);
}

static void test_default_dir_from_env(void **state)
{
    (void)state;
    char *base = st_mkdtemp();
    setenv("EDG_CWD", base, 1);
    mr_sealer *s = NULL;
    MR_ASSERT_OK(mr_sealer_open(NULL, &s));
    char want[1100];
    snprintf(want, sizeof(want), "%s/marblerun-coordinator-data", base);
    assert_string_equal(mr_sealer_dir(s), want);
    mr_sealer_free(s);
    char sd[1100];
    snprintf(sd, sizeof(sd), "%s/explicit", base);
    setenv("EDG_COORDINATOR_SEAL_DIR", sd, 1);
    setenv("EDG_COORDINATOR_KEK", "none", 1);
    MR_ASSERT_OK(mr_sealer_open(NULL, &s));
    assert_string_equal(mr_sealer_dir(s), sd);
    assert_int_equal(mr_sealer_kek_kind(s), MR_KEK_NONE);
    mr_sealer_free(s);
    unsetenv("EDG_CWD");
    unsetenv("EDG_COORDINATOR_SEAL_DIR");
    unsetenv("EDG_COORDINATOR_KEK");
    st_rmdir(base);
}

/* Outcome (e): an I/O problem is an error, not a reason to enter recovery mode. */
static void test_io_error_outcome(void **state)
{
    (void)state;
    char *dir = st_mkdtemp();
    mr_store *st = NULL;
    mr_sealer *s = open_sealer(dir, NULL, NULL);
    MR_ASSERT_OK(mr_sealer_create(s, NULL, &st));
    st_put(st, "k", "v");
    mr_store_close(st);
    char p[1024];
    st_path(p, sizeof(p), dir, "state.snap");
    assert_int_equal(mkdir(p, 0700), 0); /* unreadable as a file */
    mr_seal_outcome o = MR_SEAL_NO_STATE;
    MR_ASSERT_FAIL(mr_sealer_load(s, NULL, &o, &st), MR_ERR_IO, "state.snap");
    assert_null(st);
    rmdir(p);
    /* a seal "directory" that is a file */
    mr_seal_config cfg = {.seal_dir = p, .kek = "none"};
    st_write(dir, "state.snap", (const uint8_t *)"x", 1);
    mr_sealer *bad = NULL;
    MR_ASSERT_FAIL(mr_sealer_open(&cfg, &bad), MR_ERR_IO, "not a directory");
    mr_sealer_free(s);
    st_rmdir(dir);
}

static const struct CMUnitTest seal_tests[] = {
    cmocka_unit_test(test_io_error_outcome),
    cmocka_unit_test(test_file_provider_lifecycle),
    cmocka_unit_test(test_state_invalid),
    cmocka_unit_test(test_kek_none),
    cmocka_unit_test(test_bad_kek_spec),
    cmocka_unit_test(test_gramine_provider),
    cmocka_unit_test(test_reads_earlier_state),
    cmocka_unit_test(test_seal_mode_disabled),
    cmocka_unit_test(test_sealed_key_tampered),
    cmocka_unit_test(test_default_dir_from_env),
};

st_suite st_seal_suite(void)
{
    return (st_suite){"seal", seal_tests, MR_ARRAY_LEN(seal_tests)};
}
