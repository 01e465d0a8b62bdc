/* SPDX-License-Identifier: Apache-2.0 */
#include "mr_test.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/alloc.h"
#include "common/codec.h"
#include "manifest/template.h"

/* ---- fixtures: a real EC certificate and key, a symmetric key, plain secrets ---- */

static uint8_t *g_cert, *g_priv, *g_pub; /* DER */
static size_t g_cert_len, g_priv_len, g_pub_len;
static char *g_cert_pem_ossl; /* PEM_write_bio_X509 output */
static char *g_priv_pem_ossl; /* PEM_write_bio_PrivateKey (PKCS#8) output */
static char *g_pub_pem_ossl;  /* PEM_write_bio_PUBKEY output */

static const uint8_t SYM[16] = {0x00, 0x01, 0x02, 0x03, 0xfc, 0xfd, 0xfe, 0xff,
                                0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80};
static const char PLAIN[] = "s3cr3t value";
static const uint8_t PLAIN_NUL[] = {'a', 0, 'b'};

static mr_tmpl_named_secret g_entries[8];
static mr_tmpl_secret_table g_table;
static mr_tmpl_named_secret g_prev_entries[1];
static mr_tmpl_secret_table g_prev_table;
static mr_tmpl_secret g_root, g_marble;
static mr_tmpl_data g_data;

static char *bio_string(BIO *b)
{
    char *p = NULL;
    long n = BIO_get_mem_data(b, &p);
    char *s = mr_strndup(p, (size_t)n);
    BIO_free(b);
    return s;
}

static int setup(void **state)
{
    (void)state;
    EVP_PKEY *key = EVP_EC_gen("P-256");
    assert_non_null(key);
    X509 *x = X509_new();
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 42);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"template test", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509_set_pubkey(x, key);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);

    unsigned char *p = NULL;
    int n = i2d_X509(x, &p);
    assert_true(n > 0);
    g_cert = mr_alloc((size_t)n);
    memcpy(g_cert, p, (size_t)n);
    g_cert_len = (size_t)n;
    OPENSSL_free(p);

    PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(key);
    p = NULL;
    n = i2d_PKCS8_PRIV_KEY_INFO(p8, &p);
    assert_true(n > 0);
    g_priv = mr_alloc((size_t)n);
    memcpy(g_priv, p, (size_t)n);
    g_priv_len = (size_t)n;
    OPENSSL_free(p);
    PKCS8_PRIV_KEY_INFO_free(p8);

    p = NULL;
    n = i2d_PUBKEY(key, &p);
    assert_true(n > 0);
    g_pub = mr_alloc((size_t)n);
    memcpy(g_pub, p, (size_t)n);
    g_pub_len = (size_t)n;
    OPENSSL_free(p);

    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, x);
    g_cert_pem_ossl = bio_string(b);
    b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL);
    g_priv_pem_ossl = bio_string(b);
    b = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(b, key);
    g_pub_pem_ossl = bio_string(b);
    X509_free(x);
    EVP_PKEY_free(key);

    g_entries[0] = (mr_tmpl_named_secret){
        "cert", {.type = "cert-ecdsa", .size = 256, .shared = true, .valid_for = 365,
                 .cert = {g_cert, g_cert_len}, .priv = {g_priv, g_priv_len},
                 .pub = {g_pub, g_pub_len}}};
    g_entries[1] = (mr_tmpl_named_secret){
        "sym", {.type = "symmetric-key", .size = 128, .priv = {SYM, sizeof(SYM)},
                .pub = {SYM, sizeof(SYM)}}};
    g_entries[2] = (mr_tmpl_named_secret){
        "plain", {.type = "plain", .user_defined = true,
                  .priv = {(const uint8_t *)PLAIN, strlen(PLAIN)},
                  .pub = {(const uint8_t *)PLAIN, strlen(PLAIN)}}};
    g_entries[3] = (mr_tmpl_named_secret){
        "plain-nul", {.type = "plain", .user_defined = true, .priv = {PLAIN_NUL, 3},
                      .pub = {PLAIN_NUL, 3}}};
    g_entries[4] = (mr_tmpl_named_secret){"plain-empty", {.type = "plain", .user_defined = true}};
    g_entries[5] = (mr_tmpl_named_secret){
        "user-sym", {.type = "symmetric-key", .size = 128, .user_defined = true}};
    g_entries[6] = (mr_tmpl_named_secret){
        "my-key", {.type = "symmetric-key", .size = 16, .priv = {SYM, 2}, .pub = {SYM, 2}}};
    g_entries[7] = (mr_tmpl_named_secret){
        "user-cert", {.type = "cert-rsa", .user_defined = true}};
    g_table = (mr_tmpl_secret_table){g_entries, MR_ARRAY_LEN(g_entries)};
    g_prev_entries[0] = (mr_tmpl_named_secret){
        "sym", {.type = "symmetric-key", .size = 16, .priv = {SYM + 8, 2}, .pub = {SYM + 8, 2}}};
    g_prev_table = (mr_tmpl_secret_table){g_prev_entries, 1};
    g_root = (mr_tmpl_secret){.cert = {g_cert, g_cert_len}};
    g_marble = (mr_tmpl_secret){.cert = {g_cert, g_cert_len}, .priv = {g_priv, g_priv_len},
                                .pub = {g_pub, g_pub_len}};
    g_data = (mr_tmpl_data){.root_ca = &g_root, .marble_cert = &g_marble,
                            .coordinator_root = &g_root, .coordinator_intermediate = &g_root,
                            .secrets = mr_tmpl_table_lookup, .secrets_ctx = &g_table,
                            .previous_secrets = mr_tmpl_table_lookup,
                            .previous_ctx = &g_prev_table};
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mr_free(g_cert);
    mr_free(g_priv);
    mr_free(g_pub);
    mr_free(g_cert_pem_ossl);
    mr_free(g_priv_pem_ossl);
    mr_free(g_pub_pem_ossl);
    return 0;
}

/* ---- helpers ---- */

static const char *mode_name(mr_tmpl_mode m) { return m == MR_TMPL_FILES ? "Files" : "Env"; }

/* Parses and renders; on success *out holds the output. Returns false with the error slot
 * set otherwise (*parse_failed says which step failed). */
static bool run(const char *src, size_t len, mr_tmpl_mode mode, const mr_tmpl_data *data,
                unsigned flags, mr_buf *out, bool *parse_failed)
{
    mr_tmpl *t = NULL;
    *parse_failed = false;
    mr_error_clear();
    if (!mr_ok(mr_tmpl_parse(MR_TMPL_NAME, (const uint8_t *)src, len, mode, &t))) {
        *parse_failed = true;
        return false;
    }
    bool ok = mr_ok(mr_tmpl_render(t, data, flags, out));
    mr_tmpl_free(t);
    return ok;
}

static void expect_bytes(const char *src, mr_tmpl_mode mode, const void *want, size_t want_len)
{
    mr_buf out;
    bool pf;
    mr_buf_init(&out, 0, MR_BUF_SECRET);
    if (!run(src, strlen(src), mode, &g_data, 0, &out, &pf))
        fail_msg("%s [%s]: %s", src, mode_name(mode), mr_error_get()->msg);
    if (out.len != want_len || (want_len > 0 && memcmp(out.data, want, want_len) != 0))
        fail_msg("%s [%s]: got %zu bytes \"%.*s\", want %zu bytes \"%.*s\"", src,
                 mode_name(mode), out.len, (int)out.len, out.data ? (char *)out.data : "",
                 want_len, (int)want_len, (const char *)want);
    mr_buf_free(&out);
}

static void expect_out(const char *src, mr_tmpl_mode mode, const char *want)
{
    expect_bytes(src, mode, want, strlen(want));
}

static void expect_err(const char *src, mr_tmpl_mode mode, bool want_parse, const char *want)
{
    mr_buf out;
    bool pf;
    mr_buf_init(&out, 0, MR_BUF_SECRET);
    if (run(src, strlen(src), mode, &g_data, 0, &out, &pf))
        fail_msg("%s [%s]: unexpectedly rendered \"%.*s\"", src, mode_name(mode), (int)out.len,
                 (char *)out.data);
    if (pf != want_parse)
        fail_msg("%s [%s]: failed in %s, want %s (%s)", src, mode_name(mode),
                 pf ? "parse" : "render", want_parse ? "parse" : "render", mr_error_get()->msg);
    assert_int_equal(mr_error_get()->cat, MR_ERR_USAGE);
    if (strcmp(mr_error_get()->msg, want) != 0)
        fail_msg("%s [%s]:\n  got  %s\n  want %s", src, mode_name(mode), mr_error_get()->msg,
                 want);
    assert_int_equal(out.len, 0);
    mr_buf_free(&out);
}

static char *pem_of(const char *label, const uint8_t *der, size_t len)
{
    mr_buf b;
    mr_buf_init(&b, 0, 0);
    MR_ASSERT_OK(mr_pem_encode_buf(label, der, len, &b));
    MR_ASSERT_OK(mr_buf_nul_terminate(&b));
    size_t n;
    return (char *)mr_buf_steal(&b, &n);
}

static char *hex_of(const uint8_t *p, size_t n)
{
    mr_buf b;
    mr_buf_init(&b, 0, 0);
    MR_ASSERT_OK(mr_hex_encode_buf(p, n, &b));
    MR_ASSERT_OK(mr_buf_nul_terminate(&b));
    size_t k;
    char *s = (char *)mr_buf_steal(&b, &k);
    return s != NULL ? s : mr_strdup("");
}

static char *b64_of(const uint8_t *p, size_t n)
{
    mr_buf b;
    mr_buf_init(&b, 0, 0);
    MR_ASSERT_OK(mr_b64_encode_buf(p, n, MR_B64_STD, &b));
    MR_ASSERT_OK(mr_buf_nul_terminate(&b));
    size_t k;
    char *s = (char *)mr_buf_steal(&b, &k);
    return s != NULL ? s : mr_strdup("");
}

#define CTX_EXEC(col, ctx) "template: data:1:" #col ": executing \"data\" at <" ctx ">: "

/* ---- the function x part x secret type x mode matrix (spec §6.12.3) ---- */

enum { PART_CERT, PART_PUBLIC, PART_PRIVATE, PART_BARE };
static const char *const PART_SUFFIX[] = {".Cert", ".Public", ".Private", ""};

typedef struct expectation {
    const char *fn;
    int part;
    /* either an error text (after "error calling <fn>: ") or NULL with the bytes/label */
    const char *err;
    const char *label; /* pem */
    int bytes;         /* 0 cert, 1 pub, 2 priv (the fixture's DER for cert secrets) */
} expectation;

#define EMPTY "tried to parse secret with empty value"
#define PEM_BAD "invalid secret type for pem encoding"
#define ONLY_PLAIN                                                                            \
    "only secrets of type plain are allowed to use string encoding for environment variables"

/* For the certificate secret "cert". Bytes: 0 cert DER, 1 public, 2 private. */
static const expectation CERT_MATRIX[] = {
    {"pem", PART_CERT, NULL, "CERTIFICATE", 0},
    {"pem", PART_PUBLIC, NULL, "PUBLIC KEY", 1},
    {"pem", PART_PRIVATE, NULL, "PRIVATE KEY", 2},
    {"pem", PART_BARE, PEM_BAD, NULL, 0},
    {"raw", PART_CERT, NULL, NULL, 0},
    {"raw", PART_PUBLIC, NULL, NULL, 1},
    {"raw", PART_PRIVATE, NULL, NULL, 2},
    {"raw", PART_BARE, NULL, NULL, 1}, /* a whole Secret yields its Public */
    {"hex", PART_CERT, NULL, NULL, 0},
    {"hex", PART_PUBLIC, NULL, NULL, 1},
    {"hex", PART_PRIVATE, NULL, NULL, 2},
    {"hex", PART_BARE, NULL, NULL, 1},
    {"base64", PART_CERT, NULL, NULL, 0},
    {"base64", PART_PUBLIC, NULL, NULL, 1},
    {"base64", PART_PRIVATE, NULL, NULL, 2},
    {"base64", PART_BARE, NULL, NULL, 1},
    {"string", PART_CERT, ONLY_PLAIN, NULL, 0},
    {"string", PART_PUBLIC, ONLY_PLAIN, NULL, 0},
    {"string", PART_PRIVATE, ONLY_PLAIN, NULL, 0},
    {"string", PART_BARE, ONLY_PLAIN, NULL, 0},
};

/* For the symmetric key "sym": Cert is empty, Public = Private = key. Bytes: 1 = key. */
static const expectation SYM_MATRIX[] = {
    {"pem", PART_CERT, EMPTY, NULL, 0},
    {"pem", PART_PUBLIC, NULL, "PUBLIC KEY", 1},
    {"pem", PART_PRIVATE, NULL, "PRIVATE KEY", 1},
    {"pem", PART_BARE, PEM_BAD, NULL, 0},
    {"raw", PART_CERT, EMPTY, NULL, 0},
    {"raw", PART_PUBLIC, NULL, NULL, 1},
    {"raw", PART_PRIVATE, NULL, NULL, 1},
    {"raw", PART_BARE, NULL, NULL, 1},
    {"hex", PART_CERT, EMPTY, NULL, 0},
    {"hex", PART_PUBLIC, NULL, NULL, 1},
    {"hex", PART_PRIVATE, NULL, NULL, 1},
    {"hex", PART_BARE, NULL, NULL, 1},
    {"base64", PART_CERT, EMPTY, NULL, 0},
    {"base64", PART_PUBLIC, NULL, NULL, 1},
    {"base64", PART_PRIVATE, NULL, NULL, 1},
    {"base64", PART_BARE, NULL, NULL, 1},
    {"string", PART_CERT, ONLY_PLAIN, NULL, 0},
    {"string", PART_PUBLIC, ONLY_PLAIN, NULL, 0},
    {"string", PART_PRIVATE, ONLY_PLAIN, NULL, 0},
    {"string", PART_BARE, ONLY_PLAIN, NULL, 0},
};

/* For the plain secret "plain": like symmetric, and `string` works on the whole secret. */
static const expectation PLAIN_MATRIX[] = {
    {"pem", PART_CERT, EMPTY, NULL, 0},
    {"pem", PART_PUBLIC, NULL, "PUBLIC KEY", 1},
    {"pem", PART_PRIVATE, NULL, "PRIVATE KEY", 1},
    {"pem", PART_BARE, PEM_BAD, NULL, 0},
    {"raw", PART_CERT, EMPTY, NULL, 0},
    {"raw", PART_PUBLIC, NULL, NULL, 1},
    {"raw", PART_PRIVATE, NULL, NULL, 1},
    {"raw", PART_BARE, NULL, NULL, 1},
    {"hex", PART_CERT, EMPTY, NULL, 0},
    {"hex", PART_PUBLIC, NULL, NULL, 1},
    {"hex", PART_PRIVATE, NULL, NULL, 1},
    {"hex", PART_BARE, NULL, NULL, 1},
    {"base64", PART_CERT, EMPTY, NULL, 0},
    {"base64", PART_PUBLIC, NULL, NULL, 1},
    {"base64", PART_PRIVATE, NULL, NULL, 1},
    {"base64", PART_BARE, NULL, NULL, 1},
    {"string", PART_CERT, ONLY_PLAIN, NULL, 0},
    {"string", PART_PUBLIC, ONLY_PLAIN, NULL, 0},
    {"string", PART_PRIVATE, ONLY_PLAIN, NULL, 0},
    {"string", PART_BARE, NULL, NULL, 1},
};

static void run_matrix(const char *secret, const expectation *m, size_t n, const mr_slice *bytes)
{
    static const mr_tmpl_mode modes[] = {MR_TMPL_FILES, MR_TMPL_ENV};
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < 2; k++) {
            mr_tmpl_mode mode = modes[k];
            char src[128], want[512];
            snprintf(src, sizeof(src), "{{ %s .Secrets.%s%s }}", m[i].fn, secret,
                     PART_SUFFIX[m[i].part]);
            bool avail = !((strcmp(m[i].fn, "raw") == 0 && mode == MR_TMPL_ENV) ||
                           (strcmp(m[i].fn, "string") == 0 && mode == MR_TMPL_FILES));
            if (!avail) {
                snprintf(want, sizeof(want), "template: data:1: function \"%s\" not defined",
                         m[i].fn);
                expect_err(src, mode, true, want);
                continue;
            }
            if (m[i].err != NULL) {
                char ctx[64];
                snprintf(ctx, sizeof(ctx), "%s .Secrets.%s%s", m[i].fn, secret,
                         PART_SUFFIX[m[i].part]);
                snprintf(want, sizeof(want),
                         "template: data:1:3: executing \"data\" at <%s>: error calling %s: %s",
                         ctx, m[i].fn, m[i].err);
                expect_err(src, mode, false, want);
                continue;
            }
            mr_slice b = bytes[m[i].bytes];
            char *exp = NULL;
            if (strcmp(m[i].fn, "pem") == 0)
                exp = pem_of(m[i].label, b.ptr, b.len);
            else if (strcmp(m[i].fn, "hex") == 0)
                exp = hex_of(b.ptr, b.len);
            else if (strcmp(m[i].fn, "base64") == 0)
                exp = b64_of(b.ptr, b.len);
            if (exp != NULL) {
                expect_out(src, mode, exp);
                mr_free(exp);
            } else {
                expect_bytes(src, mode, b.ptr, b.len);
            }
        }
    }
}

static void test_matrix_cert(void **state)
{
    (void)state;
    mr_slice bytes[] = {{g_cert, g_cert_len}, {g_pub, g_pub_len}, {g_priv, g_priv_len}};
    run_matrix("cert", CERT_MATRIX, MR_ARRAY_LEN(CERT_MATRIX), bytes);
}

static void test_matrix_symmetric(void **state)
{
    (void)state;
    mr_slice bytes[] = {{NULL, 0}, {SYM, sizeof(SYM)}, {NULL, 0}};
    run_matrix("sym", SYM_MATRIX, MR_ARRAY_LEN(SYM_MATRIX), bytes);
}

static void test_matrix_plain(void **state)
{
    (void)state;
    mr_slice bytes[] = {{NULL, 0}, {(const uint8_t *)PLAIN, strlen(PLAIN)}, {NULL, 0}};
    run_matrix("plain", PLAIN_MATRIX, MR_ARRAY_LEN(PLAIN_MATRIX), bytes);
}

/* pem output is byte-identical to what OpenSSL writes for the same objects. */
static void test_pem_matches_openssl(void **state)
{
    (void)state;
    expect_out("{{ pem .Secrets.cert.Cert }}", MR_TMPL_FILES, g_cert_pem_ossl);
    expect_out("{{ pem .Secrets.cert.Private }}", MR_TMPL_ENV, g_priv_pem_ossl);
    expect_out("{{ pem .Secrets.cert.Public }}", MR_TMPL_FILES, g_pub_pem_ossl);
    expect_out("{{ pem .MarbleRun.RootCA.Cert }}", MR_TMPL_FILES, g_cert_pem_ossl);
    expect_out("{{ pem .MarbleRun.MarbleCert.Cert }}", MR_TMPL_ENV, g_cert_pem_ossl);
    expect_out("{{ pem .MarbleRun.MarbleCert.Private }}", MR_TMPL_FILES, g_priv_pem_ossl);
    expect_out("{{ pem .MarbleRun.MarbleCert.Public }}", MR_TMPL_FILES, g_pub_pem_ossl);
    expect_out("{{ .MarbleRun.CoordinatorRoot.Cert | pem }}", MR_TMPL_FILES, g_cert_pem_ossl);
    expect_out("{{ pem .MarbleRun.CoordinatorIntermediate.Cert }}", MR_TMPL_FILES,
               g_cert_pem_ossl);
    /* the chain a Marble usually wants: two blocks back to back */
    size_t n = strlen(g_cert_pem_ossl);
    char *two = mr_alloc(2 * n + 1);
    memcpy(two, g_cert_pem_ossl, n);
    memcpy(two + n, g_cert_pem_ossl, n + 1);
    expect_out("{{ pem .MarbleRun.MarbleCert.Cert }}{{ pem .MarbleRun.RootCA.Cert }}",
               MR_TMPL_FILES, two);
    mr_free(two);
}

static void test_encodings_exact(void **state)
{
    (void)state;
    expect_out("{{ hex .Secrets.sym }}", MR_TMPL_FILES, "00010203fcfdfeff1020304050607080");
    expect_out("{{ base64 .Secrets.sym }}", MR_TMPL_ENV, "AAECA/z9/v8QIDBAUGBwgA==");
    expect_out("{{ base64 (index .Secrets \"my-key\").Public }}", MR_TMPL_ENV, "AAE=");
}

static void test_special_secret_rules(void **state)
{
    (void)state;
    expect_out("{{ string .Secrets.plain }}", MR_TMPL_ENV, PLAIN);
    expect_out("{{ string (index .Secrets \"plain\") }}", MR_TMPL_ENV, PLAIN);
    expect_err("{{ string (index .Secrets \"plain-nul\") }}", MR_TMPL_ENV, false,
               CTX_EXEC(3, "string (index .Secrets \"plain-nul\")") "error calling string: secret contains "
                                                      "null bytes");
    expect_err("{{ string (index .Secrets \"plain-empty\") }}", MR_TMPL_ENV, false,
               CTX_EXEC(3, "string (index .Secrets \"plain-empty\")") "error calling string: " EMPTY);
    expect_err("{{ string .Secrets.nope }}", MR_TMPL_ENV, false,
               CTX_EXEC(3, "string .Secrets.nope") "error calling string: secret does not "
                                                   "exist");
    /* raw/hex of a plain secret with NUL bytes is fine in Files */
    expect_out("{{ hex (index .Secrets \"plain-nul\") }}", MR_TMPL_FILES, "610062");
    /* user-defined secret not uploaded yet: empty values */
    expect_err("{{ hex (index .Secrets \"user-sym\") }}", MR_TMPL_FILES, false,
               CTX_EXEC(3, "hex (index .Secrets \"user-sym\")") "error calling hex: " EMPTY);
    expect_err("{{ pem (index .Secrets \"user-cert\").Cert }}", MR_TMPL_FILES, false,
               CTX_EXEC(3, "pem (index .Secrets \"user-cert\").Cert") "error calling pem: " EMPTY);
    /* Cert.Raw is a plain []byte: raw accepts it, pem does not */
    expect_bytes("{{ raw .Secrets.cert.Cert.Raw }}", MR_TMPL_FILES, g_cert, g_cert_len);
    expect_err("{{ pem .Secrets.cert.Cert.Raw }}", MR_TMPL_FILES, false,
               CTX_EXEC(3, "pem .Secrets.cert.Cert.Raw") "error calling pem: " PEM_BAD);
    /* function results are strings, which no secret function accepts */
    expect_err("{{ hex .Secrets.sym | base64 }}", MR_TMPL_FILES, false,
               CTX_EXEC(22, "base64") "error calling base64: invalid secret type");
    expect_err("{{ pem \"x\" }}", MR_TMPL_FILES, false,
               CTX_EXEC(3, "pem \"x\"") "error calling pem: " PEM_BAD);
    expect_err("{{ pem nil }}", MR_TMPL_FILES, false,
               CTX_EXEC(3, "pem nil") "error calling pem: secret does not exist");
    expect_err("{{ raw .Secrets.cert.Type }}", MR_TMPL_FILES, false,
               CTX_EXEC(3, "raw .Secrets.cert.Type") "error calling raw: invalid secret type");
}

/* ---- data model ---- */

static void test_fields_and_printing(void **state)
{
    (void)state;
    expect_out("{{ .Secrets.cert.Type }} {{ .Secrets.cert.Size }} {{ .Secrets.cert.Shared }} "
               "{{ .Secrets.cert.UserDefined }} {{ .Secrets.cert.ValidFor }}",
               MR_TMPL_FILES, "cert-ecdsa 256 true false 365");
    expect_out("{{ (index .Secrets \"my-key\").Private }}", MR_TMPL_FILES, "[0 1]");
    expect_out("{{ (index .Secrets \"user-sym\").Public }}{{ .Secrets.sym.Cert.Raw }}", MR_TMPL_FILES,
               "[][]");
    expect_out("[{{ .Secrets.missing }}] [{{ .Secrets.missing.Cert.Raw }}]", MR_TMPL_FILES,
               "[<no value>] [<no value>]");
    expect_out("{{ \"lit\\x41\\u00e9\\n\" }}{{ `raw\\n` }}{{ 42 }}{{ -7 }}{{ true }}{{ false }}",
               MR_TMPL_FILES, "litA\xc3\xa9\nraw\\n42-7truefalse");
    expect_out("{{ $.Secrets.sym.Type }}", MR_TMPL_ENV, "symmetric-key");
    expect_out("{{ hex .Previous.Secrets.sym }}", MR_TMPL_FILES, "1020");
    expect_err("{{ hex .Previous.Secrets.cert }}", MR_TMPL_FILES, false,
               CTX_EXEC(3, "hex .Previous.Secrets.cert") "error calling hex: secret does not "
                                                      "exist");
    expect_err("{{ .Secrets.sym }}", MR_TMPL_FILES, false,
               CTX_EXEC(3, "{{.Secrets.sym}}") "printing a value of type manifest.Secret is not "
                                               "supported; use one of the functions pem, hex, "
                                               "base64, raw");
    expect_err("{{ .Secrets.cert.Cert }}", MR_TMPL_ENV, false,
               CTX_EXEC(3, "{{.Secrets.cert.Cert}}") "printing a value of type "
                                                     "manifest.Certificate is not supported; use "
                                                     "one of the functions pem, hex, base64, "
                                                     "string");
    expect_err("{{ . }}", MR_TMPL_FILES, false,
               CTX_EXEC(3, "{{.}}") "printing a value of type manifest.SecretsWrapper is not "
                                    "supported; use one of the functions pem, hex, base64, raw");
    expect_err("{{ .Foo }}", MR_TMPL_FILES, false,
               CTX_EXEC(3, ".Foo") "can't evaluate field Foo in type manifest.SecretsWrapper");
    /* Go positions a multi-field node at its second field */
    expect_err("{{ .MarbleRun.Foo }}", MR_TMPL_FILES, false,
               CTX_EXEC(13, ".MarbleRun.Foo") "can't evaluate field Foo in type "
                                              "manifest.ReservedSecrets");
    expect_err("{{ .Secrets.sym.Nope }}", MR_TMPL_FILES, false,
               CTX_EXEC(11, ".Secrets.sym.Nope") "can't evaluate field Nope in type "
                                                 "manifest.Secret");
    expect_err("{{ .Secrets.sym.Type.X }}", MR_TMPL_FILES, false,
               CTX_EXEC(11, ".Secrets.sym.Type.X") "can't evaluate field X in type string");
    expect_err("{{ .Secrets.sym.Private.X }}", MR_TMPL_FILES, false,
               CTX_EXEC(11, ".Secrets.sym.Private.X") "can't evaluate field X in type "
                                                      "manifest.PrivateKey");
    expect_err("{{ .Secrets.sym \"a\" }}", MR_TMPL_FILES, false,
               CTX_EXEC(11, ".Secrets.sym") "sym is not a method but has arguments");
    expect_err("{{ .Secrets.sym.Type \"a\" }}", MR_TMPL_FILES, false,
               CTX_EXEC(11, ".Secrets.sym.Type") "Type has arguments but cannot be invoked as "
                                                 "function");
    /* args after a missing value are ignored, as in Go */
    expect_out("{{ .Secrets.nope.Cert \"a\" }}", MR_TMPL_FILES, "<no value>");
}

static void test_index(void **state)
{
    (void)state;
    expect_out("{{ hex (index .Secrets \"my-key\") }}", MR_TMPL_FILES, "0001");
    expect_out("{{ index .Secrets \"my-key\" | hex }}", MR_TMPL_FILES, "0001");
    expect_out("{{ pem (index .Secrets \"cert\").Cert }}", MR_TMPL_FILES, g_cert_pem_ossl);
    expect_out("{{ (index .Secrets \"cert\").Type }}", MR_TMPL_FILES, "cert-ecdsa");
    expect_out("{{ index .Secrets.sym.Public 4 }}", MR_TMPL_FILES, "252");
    expect_out("{{ index (index .Secrets \"sym\").Public 1 }}", MR_TMPL_FILES, "1");
    expect_out("{{ index \"abc\" 1 }}", MR_TMPL_FILES, "98");
    expect_out("{{ index .Secrets.sym.Type }}", MR_TMPL_FILES, "symmetric-key");
    expect_out("{{ (index .Secrets `nope`).Type }}|{{ (index .Secrets \"nope\").Size }}",
               MR_TMPL_FILES, "|0");
    expect_out("{{ hex (index .Previous.Secrets \"sym\") }}", MR_TMPL_FILES, "1020");
    /* a missing name through index is a zero Secret, not "no value" */
    expect_err("{{ pem (index .Secrets \"nope\").Cert }}", MR_TMPL_FILES, false,
               CTX_EXEC(3, "pem (index .Secrets \"nope\").Cert") "error calling pem: " EMPTY);
    expect_err("{{ index .Secrets \"nope\" | pem }}", MR_TMPL_FILES, false,
               CTX_EXEC(27, "pem") "error calling pem: " PEM_BAD);
    expect_err("{{ index .Secrets.nope \"x\" }}", MR_TMPL_FILES, false,
               CTX_EXEC(3, "index .Secrets.nope \"x\"") "error calling index: index of untyped "
                                                       "nil");
    expect_err("{{ index .Secrets .Secrets.nope }}", MR_TMPL_FILES, false,
               CTX_EXEC(3, "index .Secrets .Secrets.nope") "error calling index: value is nil; "
                                                           "should be of type string");
    expect_err("{{ index .Secrets.sym.Public nil }}", MR_TMPL_FILES, false,
               CTX_EXEC(3, "index .Secrets.sym.Public nil") "error calling index: cannot index "
                                                            "slice/array with nil");
    expect_err("{{ index .Secrets 1 }}", MR_TMPL_FILES, false,
               CTX_EXEC(3, "index .Secrets 1") "error calling index: value has type int; "
                                               "should be string");
    expect_err("{{ index .Secrets.sym \"x\" }}", MR_TMPL_FILES, false,
               CTX_EXEC(3, "index .Secrets.sym \"x\"") "error calling index: can't index item of "
                                                       "type manifest.Secret");
    expect_err("{{ index .Secrets.sym.Public \"x\" }}", MR_TMPL_FILES, false,
               CTX_EXEC(3, "index .Secrets.sym.Public \"x\"") "error calling index: cannot index "
                                                      "slice/array with type string");
    expect_err("{{ index .Secrets.sym.Public 17 }}", MR_TMPL_FILES, false,
               CTX_EXEC(3, "index .Secrets.sym.Public 17") "error calling index: index out of "
                                                      "range: 17");
    expect_err("{{ index .Secrets.sym.Public -1 }}", MR_TMPL_FILES, false,
               CTX_EXEC(3, "index .Secrets.sym.Public -1") "error calling index: index out of "
                                                      "range: -1");
    expect_err("{{ index .Secrets.sym.Public 16 }}", MR_TMPL_FILES, false,
               CTX_EXEC(3, "index .Secrets.sym.Public 16") "error calling index: reflect: slice "
                                                      "index out of range");
    expect_err("{{ index \"ab\" 2 }}", MR_TMPL_FILES, false,
               CTX_EXEC(3, "index \"ab\" 2") "error calling index: reflect: string index out "
                                              "of range");
    expect_err("{{ index nil 1 }}", MR_TMPL_FILES, false,
               CTX_EXEC(3, "index nil 1") "error calling index: index of untyped nil");
    expect_err("{{ .Secrets.nope | index }}", MR_TMPL_FILES, false,
               CTX_EXEC(19, "index") "error calling index: index of untyped nil");
    expect_err("{{ index }}", MR_TMPL_FILES, false,
               CTX_EXEC(3, "index") "wrong number of args for index: want at least 1 got 0");
    expect_err("{{ index . \"Secrets\" }}", MR_TMPL_FILES, false,
               CTX_EXEC(3, "index . \"Secrets\"") "error calling index: can't index item of "
                                                 "type manifest.SecretsWrapper");
}

static void test_pipelines_and_calls(void **state)
{
    (void)state;
    char *p = pem_of("PUBLIC KEY", g_pub, g_pub_len);
    expect_out("{{ .Secrets.cert.Public | pem }}", MR_TMPL_FILES, p);
    expect_out("{{ (.Secrets.cert.Public) | pem }}", MR_TMPL_FILES, p);
    expect_out("{{ pem (.Secrets.cert.Public) }}", MR_TMPL_FILES, p);
    expect_out("{{ (pem .Secrets.cert.Public) }}", MR_TMPL_FILES, p);
    expect_out("{{ ((index .Secrets \"cert\").Public | pem) }}", MR_TMPL_FILES, p);
    mr_free(p);
    expect_err("{{ pem }}", MR_TMPL_FILES, false,
               CTX_EXEC(3, "pem") "wrong number of args for pem: want 1 got 0");
    expect_err("{{ pem .Secrets.sym .Secrets.sym }}", MR_TMPL_FILES, false,
               CTX_EXEC(3, "pem") "wrong number of args for pem: want 1 got 2");
    expect_err("{{ .Secrets.sym | hex .Secrets.sym }}", MR_TMPL_FILES, false,
               CTX_EXEC(18, "hex") "wrong number of args for hex: want 1 got 2");
    expect_err("{{ pem hex }}", MR_TMPL_FILES, false,
               CTX_EXEC(7, "hex") "wrong number of args for hex: want 1 got 0");
    expect_err("{{ (hex .Secrets.sym) \"x\" }}", MR_TMPL_FILES, false,
               CTX_EXEC(3, "(hex .Secrets.sym) \"x\"") "can't give argument to non-function "
                                                       "hex .Secrets.sym");
    expect_err("{{ \"a\" \"b\" }}", MR_TMPL_FILES, false,
               CTX_EXEC(3, "\"a\"") "can't give argument to non-function \"a\"");
    expect_err("{{ $ 1 }}", MR_TMPL_FILES, false,
               CTX_EXEC(3, "$") "can't give argument to non-function $");
    expect_err("{{ nil }}", MR_TMPL_FILES, false, CTX_EXEC(3, "nil") "nil is not a command");
    expect_err("{{ hex.Foo }}", MR_TMPL_FILES, false,
               CTX_EXEC(3, "hex") "wrong number of args for hex: want 1 got 0");
    /* Go reports field errors on a chain at the last node it visited: inside the parens */
    expect_err("{{ (hex .Secrets.sym).Foo }}", MR_TMPL_FILES, false,
               CTX_EXEC(16, ".Secrets.sym") "can't evaluate field Foo in type string");
}

/* ---- lexing: text, trim markers, comments ---- */

static void test_text_and_trim(void **state)
{
    (void)state;
    expect_out("", MR_TMPL_FILES, "");
    expect_out("plain text } { }} {", MR_TMPL_FILES, "plain text } { }} {");
    static const char bin[] = "a\0b{{ \"x\" }}\xff";
    mr_buf out;
    bool pf;
    mr_buf_init(&out, 0, 0);
    assert_true(run(bin, sizeof(bin) - 1, MR_TMPL_FILES, &g_data, 0, &out, &pf));
    assert_int_equal(out.len, 5);
    assert_memory_equal(out.data, "a\0bx\xff", 5);
    mr_buf_free(&out);

    expect_out("a \t\r\n {{- \"x\" -}} \n\t b", MR_TMPL_FILES, "axb");
    expect_out("a  {{- \"x\" }}  b", MR_TMPL_FILES, "ax  b");
    expect_out("a  {{ \"x\" -}}  b", MR_TMPL_FILES, "a  xb");
    expect_out("a {{-3}} b", MR_TMPL_FILES, "a -3 b");
    expect_out("a {{- 3}} b", MR_TMPL_FILES, "a3 b");
    expect_out("a {{3 -}} b", MR_TMPL_FILES, "a 3b");
    expect_out("a {{ 3 }}\n", MR_TMPL_FILES, "a 3\n");
    expect_out("x{{- /* c */ -}}\n y", MR_TMPL_FILES, "xy");
    expect_out("x{{/* multi\nline {{ }} */}}y", MR_TMPL_FILES, "xy");
    expect_out("1\n{{- /* c */}}\n2", MR_TMPL_FILES, "1\n2");
    expect_out("{{\n.Secrets.sym.Size\n}}", MR_TMPL_FILES, "128");
    expect_out("{{.Secrets.sym.Size}}{{.Secrets.sym.Size}}", MR_TMPL_FILES, "128128");
    expect_out("{{ .Secrets.sym.Size | }}x", MR_TMPL_FILES, "128x"); /* Go accepts a trailing | */
    expect_out("{{ \"}}\" }}", MR_TMPL_FILES, "}}");
}

static void test_parse_errors(void **state)
{
    (void)state;
    static const struct {
        const char *src;
        const char *msg;
    } cases[] = {
        {"{{", "template: data:1: unclosed action"},
        {"{{ .X", "template: data:1: unclosed action"},
        {"a\n{{ .X\n\n", "template: data:4: unclosed action started at data:2"},
        {"{{ \"abc }}", "template: data:1: unterminated quoted string"},
        {"{{ `abc }}", "template: data:1: unterminated raw quoted string"},
        {"{{ .Secrets.my-secret }}", "template: data:1: bad character U+002D '-'"},
        {"{{ pem\"x\" }}", "template: data:1: bad character U+0022 '\"'"},
        {"{{ .X }", "template: data:1: unexpected \"}\" in operand"},
        {"{{ .X @ }}", "template: data:1: unexpected \"@\" in operand"},
        {"{{ \x01 }}", "template: data:1: unrecognized character in action: U+0001"},
        {"{{ \xc3\xa9 }}", "template: data:1: function \"\xc3\xa9\" not defined"},
        {"{{ .A\xc2\xa0 }}", "template: data:1: bad character U+00A0"},
        {"{{ \"\xc2\xa0\xe2\x80\x94\" x }}", "template: data:1: function \"x\" not defined"},
        {"{{ 1\xc3\xa9 }}", "template: data:1: bad number syntax: \"1\xc3\xa9\""},
        {"{{ \"\xc2\xa0\" \"y\".Z }}", "template: data:1: unexpected . after term \"\\\"y\\\"\""},
        {"{{ \"\xc2\xa0\".Z }}",
         "template: data:1: unexpected . after term \"\\\"\\u00a0\\\"\""},
        {"{{ \xe2\x80\x94 }}", "template: data:1: unrecognized character in action: U+2014 "
                               "'\xe2\x80\x94'"},
        {"{{ .\xf0\x9f\x94\x91 }}", "template: data:1: bad character U+1F511 '\xf0\x9f\x94\x91'"},
        {"{{ ( .X }}", "template: data:1: unclosed left paren"},
        {"{{ (1 -}}", "template: data:1: unclosed left paren"},
        {"{{ (1  -}}", "template: data:1: unclosed left paren"},
        {"{{ .X ) }}", "template: data:1: unexpected right paren"},
        {"{{ }}", "template: data:1: missing value for command"},
        {"{{ () }}", "template: data:1: missing value for parenthesized pipeline"},
        {"{{ .X | 1 }}", "template: data:1: non executable command in pipeline stage 2"},
        {"{{ .X || .Y }}", "template: data:1: unexpected \"|\" in command"},
        {"{{ foo }}", "template: data:1: function \"foo\" not defined"},
        {"{{ raw .X }}", NULL}, /* Files: fine */
        {"{{ printf \"%s\" .X }}",
         "template: data:1: function \"printf\" is not supported (only pem, hex, base64, raw "
         "and index)"},
        {"{{ if .X }}a{{ end }}",
         "template: data:1: {{if}} actions are not supported (only output of field chains, "
         "index and the secret functions)"},
        {"{{ range .Secrets }}{{ end }}",
         "template: data:1: {{range}} actions are not supported (only output of field chains, "
         "index and the secret functions)"},
        {"{{ define \"x\" }}{{ end }}",
         "template: data:1: {{define}} actions are not supported (only output of field chains, "
         "index and the secret functions)"},
        {"{{ end }}", "template: data:1: unexpected {{end}}"},
        {"{{ else }}", "template: data:1: unexpected {{else}}"},
        {"{{ else if .X }}", "template: data:1: unexpected {{else}}"},
        {"{{ end .X }}", "template: data:1: unexpected \".X\" in end"},
        {"{{ break }}", "template: data:1: {{break}} outside {{range}}"},
        {"{{ continue 1 }}", "template: data:1: unexpected \"1\" in {{continue}}"},
        {"{{ with .X }}{{ end }}",
         "template: data:1: {{with}} actions are not supported (only output of field chains, "
         "index and the secret functions)"},
        {"{{ $x := .Secrets }}", "template: data:1: variable declarations are not supported"},
        {"{{ $x }}", "template: data:1: undefined variable \"$x\""},
        {"{{ \"x\".Y }}", "template: data:1: unexpected . after term \"\\\"x\\\"\""},
        {"{{ .X 1.5 }}", "template: data:1: number \"1.5\" is not supported (only decimal "
                         "integers)"},
        {"{{ 0x1F }}", "template: data:1: number \"0x1F\" is not supported (only decimal "
                       "integers)"},
        {"{{ 12ab }}", "template: data:1: bad number syntax: \"12a\""},
        {"{{ 'a' }}", "template: data:1: character constants are not supported"},
        {"{{ \"\\q\" }}", "template: data:1: invalid syntax"},
        {"{{ \"\\x4\" }}", "template: data:1: invalid syntax"},
        {"{{ \"\\uD800\" }}", "template: data:1: invalid syntax"},
        {"{{/* x", "template: data:1: unclosed comment"},
        {"{{/* x */ y }}", "template: data:1: comment ends before closing delimiter"},
        {"{{ .X := 1 }}", "template: data:1: unexpected \":=\" in operand"},
        {"{{ .X : }}", "template: data:1: expected :="},
        {"{{ .X , .Y }}", "template: data:1: unexpected \",\" in operand"},
        {"{{ pem if }}", "template: data:1: unexpected <if> in operand"},
        {"a\nb\n{{ nope }}", "template: data:3: function \"nope\" not defined"},
        {"{{ \"a very long string literal\" x }}",
         "template: data:1: function \"x\" not defined"},
        {"{{ .X \"0123456789abc\" ) }}", "template: data:1: unexpected right paren"},
    };
    for (size_t i = 0; i < MR_ARRAY_LEN(cases); i++) {
        if (cases[i].msg == NULL) {
            mr_tmpl *t = NULL;
            MR_ASSERT_OK(mr_tmpl_parse(MR_TMPL_NAME, (const uint8_t *)cases[i].src,
                                       strlen(cases[i].src), MR_TMPL_FILES, &t));
            mr_tmpl_free(t);
            continue;
        }
        expect_err(cases[i].src, MR_TMPL_FILES, true, cases[i].msg);
    }
    /* mode-dependent function sets */
    expect_err("{{ raw .Secrets.sym }}", MR_TMPL_ENV, true,
               "template: data:1: function \"raw\" not defined");
    expect_err("{{ string .Secrets.plain }}", MR_TMPL_FILES, true,
               "template: data:1: function \"string\" not defined");
    expect_err("{{ printf \"x\" }}", MR_TMPL_ENV, true,
               "template: data:1: function \"printf\" is not supported (only pem, hex, base64, "
               "string and index)");
}

static void test_exec_error_positions(void **state)
{
    (void)state;
    expect_err("line one\n  x {{ pem .Secrets.nope }}", MR_TMPL_FILES, false,
               "template: data:2:7: executing \"data\" at <pem .Secrets.nope>: error calling "
               "pem: secret does not exist");
    expect_err("{{ hex .Secrets.sym }}\n{{\n  .Secrets.sym.Nope }}", MR_TMPL_FILES, false,
               "template: data:3:10: executing \"data\" at <.Secrets.sym.Nope>: can't evaluate "
               "field Nope in type manifest.Secret");
    /* contexts are not cut (Go 1.25 prints the whole node); non-ASCII names are fine */
    expect_err("{{ pem .Secrets.\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9x }}",
               MR_TMPL_FILES, false,
               "template: data:1:3: executing \"data\" at <pem .Secrets.\xc3\xa9\xc3\xa9\xc3\xa9"
               "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9x>: error calling pem: secret does not exist");
    /* another template name */
    mr_tmpl *t = NULL;
    mr_buf out;
    mr_buf_init(&out, 0, 0);
    MR_ASSERT_OK(mr_tmpl_parse("other", (const uint8_t *)"{{ hex .Secrets.A }}", 20,
                               MR_TMPL_ENV, &t));
    MR_ASSERT_FAIL(mr_tmpl_render(t, &g_data, 0, &out), MR_ERR_USAGE,
                   "template: other:1:3: executing \"other\" at <hex .Secrets.A>: error calling "
                   "hex: secret does not exist");
    mr_tmpl_free(t);
    t = NULL;
    MR_ASSERT_FAIL(mr_tmpl_parse("other", (const uint8_t *)"{{ x }}", 7, MR_TMPL_ENV, &t),
                   MR_ERR_USAGE, "template: other:1: function \"x\" not defined");
    assert_null(t);
    mr_buf_free(&out);
}

/* ---- dry run (spec §6.12.5) ---- */

static void test_dry_run(void **state)
{
    (void)state;
    /* placeholders as SetManifest sees them: user-defined values are dummies */
    mr_tmpl_named_secret e[] = {
        {"gencert", {.type = "cert-ed25519", .placeholder = true}},
        {"gensym", {.type = "symmetric-key", .size = 256, .placeholder = true}},
        {"usersym", {.type = "symmetric-key", .size = 128, .user_defined = true,
                      .placeholder = true}},
        {"userplain", {.type = "plain", .user_defined = true, .placeholder = true}},
        {"usercert", {.type = "cert-rsa", .user_defined = true, .placeholder = true}},
    };
    mr_tmpl_secret_table tab = {e, MR_ARRAY_LEN(e)};
    mr_tmpl_data d = {.secrets = mr_tmpl_table_lookup, .secrets_ctx = &tab};
    static const struct {
        const char *src;
        mr_tmpl_mode mode;
    } good[] = {
        {"{{ pem .MarbleRun.RootCA.Cert }}{{ pem .MarbleRun.MarbleCert.Cert }}", MR_TMPL_FILES},
        {"{{ pem .MarbleRun.MarbleCert.Private }}{{ pem .MarbleRun.MarbleCert.Public }}",
         MR_TMPL_ENV},
        {"{{ pem .MarbleRun.CoordinatorRoot.Cert }}", MR_TMPL_FILES},
        {"{{ pem .MarbleRun.CoordinatorIntermediate.Cert }}", MR_TMPL_FILES},
        {"{{ pem .Secrets.gencert.Cert }}", MR_TMPL_FILES},
        {"{{ raw .Secrets.gencert.Private }}", MR_TMPL_FILES},
        {"{{ hex .Secrets.gensym }}{{ base64 .Secrets.gensym.Private }}", MR_TMPL_ENV},
        {"{{ pem (index .Secrets \"usercert\").Cert }}", MR_TMPL_FILES},
        /* a user-defined symmetric key's Cert is a dummy in the dry run (as in MarbleRun) */
        {"{{ pem (index .Secrets \"usersym\").Cert }}", MR_TMPL_FILES},
        {"{{ string (index .Secrets \"userplain\") }}", MR_TMPL_ENV},
        {"static text only", MR_TMPL_ENV},
        {"{{ .Secrets.unknown }}", MR_TMPL_FILES},
    };
    for (size_t i = 0; i < MR_ARRAY_LEN(good); i++) {
        mr_error_clear();
        if (!mr_ok(mr_tmpl_check(MR_TMPL_NAME, (const uint8_t *)good[i].src,
                                 strlen(good[i].src), good[i].mode, &d)))
            fail_msg("%s: %s", good[i].src, mr_error_get()->msg);
    }
    static const struct {
        const char *src;
        mr_tmpl_mode mode;
        const char *msg;
    } bad[] = {
        {"{{ pem .MarbleRun.RootCA.Private }}", MR_TMPL_FILES,
         "template: data:1:3: executing \"data\" at <pem .MarbleRun.RootCA.Private>: error calling "
         "pem: tried to parse secret with empty value"},
        {"{{ pem .Secrets.gensym.Cert }}", MR_TMPL_FILES,
         "template: data:1:3: executing \"data\" at <pem .Secrets.gensym.Cert>: error calling "
         "pem: tried to parse secret with empty value"},
        {"{{ pem .Secrets.gen-sym.Cert }}", MR_TMPL_FILES,
         "template: data:1: bad character U+002D '-'"},
        {"{{ pem (index .Secrets \"gensym\").Cert }}", MR_TMPL_FILES,
         "template: data:1:3: executing \"data\" at <pem (index .Secrets \"gensym\").Cert>: "
         "error calling "
         "pem: tried to parse secret with empty value"},
        {"{{ pem .Secrets.unknown }}", MR_TMPL_FILES,
         "template: data:1:3: executing \"data\" at <pem .Secrets.unknown>: error calling pem: "
         "secret does not exist"},
        {"{{ raw .Secrets.x }}", MR_TMPL_ENV, "template: data:1: function \"raw\" not defined"},
        {"{{ string (index .Secrets \"usersym\") }}", MR_TMPL_ENV,
         "template: data:1:3: executing \"data\" at <string (index .Secrets \"usersym\")>: error calling "
         "string: only secrets of type plain are allowed to use string encoding for "
         "environment variables"},
        {"{{ pem (index .Secrets \"gencert\") }}", MR_TMPL_FILES,
         "template: data:1:3: executing \"data\" at <pem (index .Secrets \"gencert\")>: "
         "error calling "
         "pem: invalid secret type for pem encoding"},
        {"{{ .Secrets }}", MR_TMPL_FILES,
         "template: data:1:3: executing \"data\" at <{{.Secrets}}>: printing a value of type "
         "map[string]manifest.Secret is not supported; use one of the functions pem, hex, "
         "base64, raw"},
    };
    for (size_t i = 0; i < MR_ARRAY_LEN(bad); i++) {
        mr_error_clear();
        if (mr_ok(mr_tmpl_check(MR_TMPL_NAME, (const uint8_t *)bad[i].src, strlen(bad[i].src),
                                bad[i].mode, &d)))
            fail_msg("%s: accepted", bad[i].src);
        assert_int_equal(mr_error_get()->cat, MR_ERR_USAGE);
        if (strcmp(mr_error_get()->msg, bad[i].msg) != 0)
            fail_msg("%s:\n  got  %s\n  want %s", bad[i].src, mr_error_get()->msg, bad[i].msg);
    }
    /* no data at all */
    MR_ASSERT_OK(mr_tmpl_check(MR_TMPL_NAME, (const uint8_t *)"{{ pem .MarbleRun.RootCA.Cert }}",
                               32, MR_TMPL_FILES, NULL));

    /* dry run output uses the dummies: one byte 0x41 */
    mr_tmpl *t = NULL;
    mr_buf out;
    mr_buf_init(&out, 0, MR_BUF_SECRET);
    const char *src = "{{ hex .MarbleRun.MarbleCert.Private }} {{ hex .Secrets.usercert.Cert }} "
                      "{{ .Secrets.gensym.Cert.Raw }} {{ base64 .MarbleRun.RootCA.Cert }}";
    MR_ASSERT_OK(mr_tmpl_parse(MR_TMPL_NAME, (const uint8_t *)src, strlen(src), MR_TMPL_FILES,
                               &t));
    MR_ASSERT_OK(mr_tmpl_render(t, &d, MR_TMPL_DRY_RUN, &out));
    assert_int_equal(out.len, strlen("41 41 [] QQ=="));
    assert_memory_equal(out.data, "41 41 [] QQ==", out.len);
    /* without the dry-run flag .MarbleRun comes from the data (absent here: zero secrets) */
    mr_buf_reset(&out);
    MR_ASSERT_FAIL(mr_tmpl_render(t, &d, 0, &out), MR_ERR_USAGE,
                   "error calling hex: tried to parse secret with empty value");
    assert_int_equal(out.len, 0);
    mr_tmpl_free(t);
    mr_buf_free(&out);
}

/* ---- engine properties ---- */

static void test_reuse_static_and_limits(void **state)
{
    (void)state;
    mr_tmpl *t = NULL;
    const char *src = "k={{ hex .Secrets.sym }};";
    MR_ASSERT_OK(mr_tmpl_parse(MR_TMPL_NAME, (const uint8_t *)src, strlen(src), MR_TMPL_ENV, &t));
    assert_false(mr_tmpl_is_static(t));
    mr_buf out;
    mr_buf_init(&out, 0, MR_BUF_SECRET);
    for (int i = 0; i < 100; i++) {
        mr_buf_reset(&out);
        MR_ASSERT_OK(mr_tmpl_render(t, &g_data, 0, &out));
        assert_int_equal(out.len, 35);
        assert_memory_equal(out.data, "k=00010203fcfdfeff1020304050607080;", 35);
    }
    /* render appends; on failure the buffer keeps its previous content only */
    mr_buf_free(&out);
    mr_buf_init(&out, 40, MR_BUF_SECRET);
    MR_ASSERT_OK(mr_buf_append_str(&out, "prefix"));
    MR_ASSERT_FAIL(mr_tmpl_render(t, &g_data, 0, &out), MR_ERR_USAGE,
                   "template: data: rendered output exceeds the limit of 40 bytes");
    assert_int_equal(out.len, 6);
    assert_memory_equal(out.data, "prefix", 6);
    mr_buf_free(&out);
    mr_tmpl_free(t);
    /* output that exactly fills the limit is fine (PEM and literals) */
    {
        const char *src2 = "{{ \"\" }}{{ pem .Secrets.cert.Cert }}";
        size_t n = strlen(g_cert_pem_ossl);
        mr_tmpl *t2 = NULL;
        MR_ASSERT_OK(mr_tmpl_parse(MR_TMPL_NAME, (const uint8_t *)src2, strlen(src2),
                                   MR_TMPL_FILES, &t2));
        mr_buf exact;
        mr_buf_init(&exact, n, MR_BUF_SECRET);
        MR_ASSERT_OK(mr_tmpl_render(t2, &g_data, 0, &exact));
        assert_int_equal(exact.len, n);
        assert_memory_equal(exact.data, g_cert_pem_ossl, n);
        mr_buf_free(&exact);
        mr_buf_init(&exact, n - 1, MR_BUF_SECRET);
        MR_ASSERT_FAIL(mr_tmpl_render(t2, &g_data, 0, &exact), MR_ERR_USAGE,
                       "rendered output exceeds the limit");
        assert_int_equal(exact.len, 0);
        mr_buf_free(&exact);
        mr_tmpl_free(t2);
    }
    /* the same limit applies to intermediate results */
    mr_buf_init(&out, 10, MR_BUF_SECRET);
    src = "{{ index (hex .Secrets.sym) 0 }}";
    MR_ASSERT_OK(mr_tmpl_parse(MR_TMPL_NAME, (const uint8_t *)src, strlen(src), MR_TMPL_ENV, &t));
    MR_ASSERT_FAIL(mr_tmpl_render(t, &g_data, 0, &out), MR_ERR_USAGE,
                   "template: data: rendered output exceeds the limit of 10 bytes");
    mr_buf_free(&out);
    mr_buf_init(&out, 64, MR_BUF_SECRET);
    MR_ASSERT_OK(mr_tmpl_render(t, &g_data, 0, &out));
    assert_int_equal(out.len, 2);
    assert_memory_equal(out.data, "48", 2);
    mr_buf_free(&out);
    mr_tmpl_free(t);

    MR_ASSERT_OK(mr_tmpl_parse(MR_TMPL_NAME, (const uint8_t *)"a{{/* c */}}b", 13,
                               MR_TMPL_FILES, &t));
    assert_true(mr_tmpl_is_static(t));
    mr_tmpl_free(t);
    mr_tmpl_free(NULL);

    /* nesting depth: MR_TMPL_DEPTH_MAX parenthesised levels work, one more does not */
    for (int extra = 0; extra < 2; extra++) {
        char deep[256];
        size_t n = 0;
        int levels = MR_TMPL_DEPTH_MAX + extra;
        deep[n++] = '{';
        deep[n++] = '{';
        for (int i = 0; i < levels; i++)
            deep[n++] = '(';
        deep[n++] = '7';
        for (int i = 0; i < levels; i++)
            deep[n++] = ')';
        deep[n++] = '}';
        deep[n++] = '}';
        deep[n] = 0;
        if (extra == 0)
            expect_out(deep, MR_TMPL_FILES, "7");
        else
            MR_ASSERT_FAIL(mr_tmpl_parse(MR_TMPL_NAME, (const uint8_t *)deep, n, MR_TMPL_FILES,
                                         &t),
                           MR_ERR_USAGE, "max expression depth exceeded");
    }

    /* too many arguments / commands */
    MR_ASSERT_FAIL(mr_tmpl_parse(MR_TMPL_NAME,
                                 (const uint8_t *)"{{ index 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 }}",
                                 50, MR_TMPL_FILES, &t),
                   MR_ERR_USAGE, "too many arguments in command");
    /* source size */
    MR_ASSERT_FAIL(mr_tmpl_parse(MR_TMPL_NAME, (const uint8_t *)"", MR_TMPL_SOURCE_MAX + 1,
                                 MR_TMPL_FILES, &t),
                   MR_ERR_USAGE, "template too large");
}

static void test_table_lookup(void **state)
{
    (void)state;
    assert_ptr_equal(mr_tmpl_table_lookup(&g_table, "sym", 3), &g_entries[1].secret);
    assert_null(mr_tmpl_table_lookup(&g_table, "sy", 2));
    assert_null(mr_tmpl_table_lookup(&g_table, "symx", 4));
    assert_null(mr_tmpl_table_lookup(&g_table, "Sym", 3)); /* case-sensitive */
    assert_null(mr_tmpl_table_lookup(NULL, "sym", 3));
    /* no maps at all */
    mr_tmpl_data empty = {0};
    mr_tmpl *t = NULL;
    mr_buf out;
    mr_buf_init(&out, 0, 0);
    MR_ASSERT_OK(mr_tmpl_parse(MR_TMPL_NAME, (const uint8_t *)"{{ .Secrets.a }}", 16,
                               MR_TMPL_FILES, &t));
    MR_ASSERT_OK(mr_tmpl_render(t, &empty, 0, &out));
    assert_memory_equal(out.data, "<no value>", 10);
    mr_buf_reset(&out);
    MR_ASSERT_OK(mr_tmpl_render(t, NULL, 0, &out));
    assert_memory_equal(out.data, "<no value>", 10);
    mr_buf_free(&out);
    mr_tmpl_free(t);
}

/* One parsed template rendered from several threads at once (the coordinator's worker pool). */
typedef struct render_job {
    const mr_tmpl *t;
    const char *want;
    int ok;
} render_job;

static void *render_many(void *arg)
{
    render_job *j = arg;
    mr_buf out;
    mr_buf_init(&out, 0, MR_BUF_SECRET);
    j->ok = 1;
    for (int i = 0; i < 200 && j->ok; i++) {
        mr_buf_reset(&out);
        if (!mr_ok(mr_tmpl_render(j->t, &g_data, i % 2 ? MR_TMPL_DRY_RUN : 0, &out)))
            j->ok = 0;
        else if (i % 2 == 0 && (out.len != strlen(j->want) || memcmp(out.data, j->want, out.len)))
            j->ok = 0;
    }
    mr_buf_free(&out);
    return NULL;
}

static void test_concurrent_render(void **state)
{
    (void)state;
    const char *src = "{{ pem .Secrets.cert.Cert }}";
    mr_tmpl *t = NULL;
    MR_ASSERT_OK(mr_tmpl_parse(MR_TMPL_NAME, (const uint8_t *)src, strlen(src), MR_TMPL_FILES,
                               &t));
    pthread_t th[4];
    render_job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (render_job){.t = t, .want = g_cert_pem_ossl};
        assert_int_equal(pthread_create(&th[i], NULL, render_many, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(jobs[i].ok, 1);
    }
    mr_tmpl_free(t);
}

/* Every allocation failure is reported as out of memory and leaks nothing. */
static void test_alloc_failures(void **state)
{
    (void)state;
    const char *src = "head {{- pem (index .Secrets \"cert\").Cert }} {{ base64 .Secrets.sym }} "
          "{{ .Secrets.sym.Private }} {{ \"lit\" }} tail";
    bool succeeded = false;
    for (long n = 0; n < 200 && !succeeded; n++) {
        mr_tmpl *t = NULL;
        mr_buf out;
        mr_buf_init(&out, 0, MR_BUF_SECRET);
        mr_alloc_fail_after(n);
        mr_error_clear();
        mr_result r = mr_tmpl_parse(MR_TMPL_NAME, (const uint8_t *)src, strlen(src),
                                    MR_TMPL_FILES, &t);
        if (mr_ok(r))
            r = mr_tmpl_render(t, &g_data, 0, &out);
        mr_alloc_fail_reset();
        if (mr_ok(r)) {
            succeeded = true;
        } else {
            assert_int_equal(mr_error_get()->cat, MR_ERR_INTERNAL);
            assert_int_equal(out.len, 0);
        }
        mr_tmpl_free(t);
        mr_buf_free(&out);
    }
    assert_true(succeeded);
    /* the error path itself (building the message) under allocation failure */
    mr_tmpl *t = NULL;
    MR_ASSERT_OK(mr_tmpl_parse(MR_TMPL_NAME, (const uint8_t *)"{{ pem .Secrets.nope }}", 23,
                               MR_TMPL_FILES, &t));
    mr_buf out;
    mr_buf_init(&out, 0, 0);
    mr_alloc_fail_after(0);
    mr_result r = mr_tmpl_render(t, &g_data, 0, &out);
    mr_alloc_fail_reset();
    assert_false(mr_ok(r));
    assert_non_null(strstr(mr_error_get()->msg, "secret does not exist"));
    mr_tmpl_free(t);
    mr_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matrix_cert),
        cmocka_unit_test(test_matrix_symmetric),
        cmocka_unit_test(test_matrix_plain),
        cmocka_unit_test(test_pem_matches_openssl),
        cmocka_unit_test(test_encodings_exact),
        cmocka_unit_test(test_special_secret_rules),
        cmocka_unit_test(test_fields_and_printing),
        cmocka_unit_test(test_index),
        cmocka_unit_test(test_pipelines_and_calls),
        cmocka_unit_test(test_text_and_trim),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_exec_error_positions),
        cmocka_unit_test(test_dry_run),
        cmocka_unit_test(test_reuse_static_and_limits),
        cmocka_unit_test(test_table_lookup),
        cmocka_unit_test(test_concurrent_render),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests_name("template", tests, setup, teardown);
}
