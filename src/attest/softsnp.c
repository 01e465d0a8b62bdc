/* SPDX-License-Identifier: Apache-2.0 */
/*
 * softsnp: TEST AMD SEV-SNP reports from a self-made ARK/ASK/ASVK hierarchy (softsnp.h).
 * Nothing here is AMD's; the verifier trusts it only through EDG_ATTESTATION_SNP_ROOT.
 */
#include "attest/softsnp.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "attest/issuer_io.h"
#include "attest/snp.h"
#include "common/alloc.h"
#include "common/codec.h"

#define SNP_ORG "MarbleRun-C softsnp TEST (not Advanced Micro Devices)"
#define KDS_OID "1.3.6.1.4.1.3704.1."
#define F_ARK "ark.pem"
#define F_ASK "ask.pem"
#define F_ASVK "asvk.pem"
#define F_CHAIN "cert_chain.pem"
#define F_ARK_KEY "private/ark-key.pem"
#define F_ASK_KEY "private/ask-key.pem"
#define F_ASVK_KEY "private/asvk-key.pem"
#define F_VCEK_KEY "private/vcek-key.pem"
#define F_VLEK_KEY "private/vlek-key.pem"
#define F_STATE "private/softsnp.json"

enum { FILE_MAX = 1 << 20, DEFAULT_DAYS = 30, RSA_BITS = 2048, PSS_SALT = 48 };

struct mr_softsnp {
    EVP_PKEY *ask_key, *asvk_key, *vcek_key, *vlek_key;
    X509 *ark, *ask, *asvk;
    uint8_t chip_id[64];
    time_t not_before, not_after;
};

/* ---- certificates ------------------------------------------------------------------------ */

static MR_RESULT pss_sign(X509 *x, EVP_PKEY *key)
{
    mr_result res = MR_FAILURE;
    EVP_PKEY_CTX *pc = NULL;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    MR_ENSURE_ALLOC_OUT(md);
    MR_GUARD_OSSL_OUT(EVP_DigestSignInit(md, &pc, EVP_sha384(), NULL, key), MR_ERR_INTERNAL,
                      "softsnp: cannot sign");
    MR_GUARD_OSSL_OUT(EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING), MR_ERR_INTERNAL,
                      "softsnp: cannot sign");
    MR_GUARD_OSSL_OUT(EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, PSS_SALT), MR_ERR_INTERNAL,
                      "softsnp: cannot sign");
    MR_GUARD_OSSL_OUT(EVP_PKEY_CTX_set_rsa_mgf1_md(pc, EVP_sha384()), MR_ERR_INTERNAL,
                      "softsnp: cannot sign");
    MR_ENSURE_OUT(X509_sign_ctx(x, md) > 0, MR_ERR_INTERNAL, "softsnp: cannot sign a certificate");
    res = MR_SUCCESS;
out:
    EVP_MD_CTX_free(md);
    return res;
}

static MR_RESULT add_raw_ext(X509 *x, const char *oid, const uint8_t *der, size_t len)
{
    mr_result res = MR_FAILURE;
    ASN1_OBJECT *o = OBJ_txt2obj(oid, 1);
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    X509_EXTENSION *e = NULL;
    MR_ENSURE_ALLOC_OUT(o);
    MR_ENSURE_ALLOC_OUT(os);
    MR_GUARD_OSSL_OUT(ASN1_OCTET_STRING_set(os, der, (int)len), MR_ERR_INTERNAL,
                      "softsnp: cannot build an extension");
    e = X509_EXTENSION_create_by_OBJ(NULL, o, 0, os);
    MR_ENSURE_ALLOC_OUT(e);
    MR_GUARD_OSSL_OUT(X509_add_ext(x, e, -1), MR_ERR_INTERNAL, "softsnp: cannot add %s", oid);
    res = MR_SUCCESS;
out:
    X509_EXTENSION_free(e);
    ASN1_OCTET_STRING_free(os);
    ASN1_OBJECT_free(o);
    return res;
}

static MR_RESULT add_v3(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    MR_ENSURE(e != NULL, MR_ERR_INTERNAL, "softsnp: cannot build extension %s", OBJ_nid2sn(nid));
    int ok = X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    MR_ENSURE(ok == 1, MR_ERR_INTERNAL, "softsnp: cannot add extension %s", OBJ_nid2sn(nid));
    return MR_SUCCESS;
}

/* A certificate for key named cn, issued by issuer (NULL: self-issued), not signed yet. */
static MR_RESULT new_cert(const char *cn, EVP_PKEY *key, X509 *issuer, time_t nb, time_t na,
                          X509 **out)
{
    mr_result res = MR_FAILURE;
    X509 *x = X509_new();
    X509_NAME *n = X509_NAME_new();
    uint8_t serial[16];
    BIGNUM *bn = NULL;
    MR_ENSURE_ALLOC_OUT(x);
    MR_ENSURE_ALLOC_OUT(n);
    MR_GUARD_OSSL_OUT(RAND_bytes(serial, sizeof(serial)), MR_ERR_INTERNAL, "RAND_bytes failed");
    serial[0] = (uint8_t)((serial[0] & 0x7f) | 0x01);
    bn = BN_bin2bn(serial, sizeof(serial), NULL);
    MR_ENSURE_ALLOC_OUT(bn);
    MR_ENSURE_OUT(X509_set_version(x, X509_VERSION_3) == 1 &&
                      BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL &&
                      X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8,
                                                 (const unsigned char *)SNP_ORG, -1, -1, 0) == 1 &&
                      X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
                                                 (const unsigned char *)cn, -1, -1, 0) == 1 &&
                      X509_set_subject_name(x, n) == 1 &&
                      X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : n) ==
                          1 &&
                      ASN1_TIME_set(X509_getm_notBefore(x), nb) != NULL &&
                      ASN1_TIME_set(X509_getm_notAfter(x), na) != NULL &&
                      X509_set_pubkey(x, key) == 1,
                  MR_ERR_INTERNAL, "softsnp: cannot build the certificate %s", cn);
    *out = x;
    x = NULL;
    res = MR_SUCCESS;
out:
    BN_free(bn);
    X509_NAME_free(n);
    X509_free(x);
    return res;
}

static MR_RESULT make_ca(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key,
                         time_t nb, time_t na, X509 **out)
{
    mr_result res = MR_FAILURE;
    X509 *x = NULL;
    MR_GUARD_OUT(new_cert(cn, key, issuer, nb, na, &x));
    X509 *iss = issuer != NULL ? issuer : x;
    MR_GUARD_OUT(add_v3(x, iss, NID_basic_constraints,
                        issuer != NULL ? "critical,CA:TRUE,pathlen:0" : "critical,CA:TRUE"));
    MR_GUARD_OUT(add_v3(x, iss, NID_key_usage, "critical,keyCertSign,cRLSign"));
    MR_GUARD_OUT(pss_sign(x, issuer_key));
    *out = x;
    x = NULL;
    res = MR_SUCCESS;
out:
    X509_free(x);
    return res;
}

static MR_RESULT spl_ext(X509 *x, int arc, uint8_t v)
{
    char oid[40];
    uint8_t der[4] = {0x02, 1, v};
    size_t n = 3;
    if (v >= 0x80) {
        der[1] = 2;
        der[2] = 0;
        der[3] = v;
        n = 4;
    }
    (void)snprintf(oid, sizeof(oid), KDS_OID "3.%d", arc);
    return add_raw_ext(x, oid, der, n);
}

/* The VCEK (or VLEK) certificate for id on this chip, with AMD's KDS extensions. */
static MR_RESULT make_vek(const mr_softsnp *s, const mr_softsnp_identity *id, X509 **out)
{
    mr_result res = MR_FAILURE;
    X509 *x = NULL;
    static const uint8_t struct_ver[] = {0x02, 0x01, 0x00};
    static const uint8_t product[] = {0x16, 0x08, 'M', 'i', 'l', 'a', 'n', '-', 'B', '0'};
    static const uint8_t csp[] = {0x16, 0x07, 's', 'o', 'f', 't', 's', 'n', 'p'};
    MR_GUARD_OUT(new_cert(id->vlek ? "SEV-VLEK" : "SEV-VCEK", id->vlek ? s->vlek_key : s->vcek_key,
                          id->vlek ? s->asvk : s->ask, s->not_before, s->not_after, &x));
    MR_GUARD_OUT(add_raw_ext(x, KDS_OID "1", struct_ver, sizeof(struct_ver)));
    MR_GUARD_OUT(add_raw_ext(x, KDS_OID "2", product, sizeof(product)));
    MR_GUARD_OUT(spl_ext(x, 1, id->tcb_bl));
    MR_GUARD_OUT(spl_ext(x, 2, id->tcb_tee));
    MR_GUARD_OUT(spl_ext(x, 3, id->tcb_snp));
    for (int arc = 4; arc <= 7; arc++)
        MR_GUARD_OUT(spl_ext(x, arc, 0));
    MR_GUARD_OUT(spl_ext(x, 8, id->tcb_ucode));
    if (id->vlek)
        MR_GUARD_OUT(add_raw_ext(x, KDS_OID "5", csp, sizeof(csp)));
    else
        MR_GUARD_OUT(add_raw_ext(x, KDS_OID "4", s->chip_id, sizeof(s->chip_id)));
    MR_GUARD_OUT(pss_sign(x, id->vlek ? s->asvk_key : s->ask_key));
    *out = x;
    x = NULL;
    res = MR_SUCCESS;
out:
    X509_free(x);
    return res;
}

/* ---- files ----------------------------------------------------------------------------- */

static MR_RESULT der_of(X509 *x, mr_buf *out)
{
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);
    MR_ENSURE(n > 0, MR_ERR_INTERNAL, "softsnp: cannot encode a certificate");
    mr_result r = mr_buf_append(out, der, (size_t)n);
    OPENSSL_free(der);
    return r;
}

static MR_RESULT append_pem(X509 *x, mr_buf *out)
{
    mr_result res = MR_FAILURE;
    mr_buf der;
    mr_buf_init(&der, 0, 0);
    MR_GUARD_OUT(der_of(x, &der));
    MR_GUARD_OUT(mr_pem_encode_buf("CERTIFICATE", der.data, der.len, out));
    res = MR_SUCCESS;
out:
    mr_buf_free(&der);
    return res;
}

static MR_RESULT write_certs(const char *dir, X509 *const *certs, size_t n, const char *name)
{
    mr_result res = MR_FAILURE;
    char path[4096];
    mr_buf pem;
    mr_buf_init(&pem, 0, 0);
    for (size_t i = 0; i < n; i++)
        MR_GUARD_OUT(append_pem(certs[i], &pem));
    MR_GUARD_OUT(mr_issuer_io_path(path, sizeof(path), dir, name));
    MR_GUARD_OUT(mr_issuer_io_write_new(path, pem.data, pem.len, 0644));
    res = MR_SUCCESS;
out:
    mr_buf_free(&pem);
    return res;
}

static MR_RESULT write_key(const char *dir, const char *name, EVP_PKEY *key)
{
    mr_result res = MR_FAILURE;
    char path[4096];
    char *data = NULL;
    BIO *bio = BIO_new(BIO_s_secmem());
    MR_ENSURE_ALLOC_OUT(bio);
    MR_GUARD_OSSL_OUT(PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL),
                      MR_ERR_INTERNAL, "softsnp: cannot encode a private key");
    long len = BIO_get_mem_data(bio, &data);
    MR_ENSURE_OUT(len > 0 && data != NULL, MR_ERR_INTERNAL, "softsnp: cannot encode a key");
    MR_GUARD_OUT(mr_issuer_io_path(path, sizeof(path), dir, name));
    MR_GUARD_OUT(mr_issuer_io_write_new(path, data, (size_t)len, 0600));
    res = MR_SUCCESS;
out:
    BIO_free(bio);
    return res;
}

static MR_RESULT read_file(const char *dir, const char *name, bool secret, mr_buf *out)
{
    char path[4096];
    mr_buf_init(out, FILE_MAX, secret ? MR_BUF_SECRET : 0);
    MR_GUARD(mr_issuer_io_path(path, sizeof(path), dir, name));
    MR_GUARD(mr_issuer_io_read(path, FILE_MAX, out));
    MR_ENSURE(out->len > 0 && out->len < (size_t)INT32_MAX, MR_ERR_IO, "%s is empty", path);
    return MR_SUCCESS;
}

static MR_RESULT read_key(const char *dir, const char *name, EVP_PKEY **out)
{
    mr_result res = MR_FAILURE;
    mr_buf pem;
    BIO *bio = NULL;
    MR_GUARD_OUT(read_file(dir, name, true, &pem));
    bio = BIO_new_mem_buf(pem.data, (int)pem.len);
    MR_ENSURE_ALLOC_OUT(bio);
    *out = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    MR_ENSURE_OUT(*out != NULL, MR_ERR_IO, "softsnp: %s/%s is not a PEM private key", dir, name);
    res = MR_SUCCESS;
out:
    ERR_clear_error();
    BIO_free(bio);
    mr_buf_free(&pem);
    return res;
}

static MR_RESULT read_cert(const char *dir, const char *name, X509 **out)
{
    mr_result res = MR_FAILURE;
    mr_buf pem;
    BIO *bio = NULL;
    MR_GUARD_OUT(read_file(dir, name, false, &pem));
    bio = BIO_new_mem_buf(pem.data, (int)pem.len);
    MR_ENSURE_ALLOC_OUT(bio);
    *out = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    MR_ENSURE_OUT(*out != NULL, MR_ERR_IO, "softsnp: %s/%s is not a PEM certificate", dir, name);
    res = MR_SUCCESS;
out:
    ERR_clear_error();
    BIO_free(bio);
    mr_buf_free(&pem);
    return res;
}

/* ---- init -------------------------------------------------------------------------------- */

typedef struct keys {
    EVP_PKEY *ark, *ask, *asvk, *vcek, *vlek;
    X509 *ark_c, *ask_c, *asvk_c;
} keys;

static void keys_free(keys *k)
{
    EVP_PKEY_free(k->ark);
    EVP_PKEY_free(k->ask);
    EVP_PKEY_free(k->asvk);
    EVP_PKEY_free(k->vcek);
    EVP_PKEY_free(k->vlek);
    X509_free(k->ark_c);
    X509_free(k->ask_c);
    X509_free(k->asvk_c);
}

static MR_RESULT make_keys(keys *k, time_t nb, time_t na)
{
    k->ark = EVP_RSA_gen(RSA_BITS);
    k->ask = EVP_RSA_gen(RSA_BITS);
    k->asvk = EVP_RSA_gen(RSA_BITS);
    k->vcek = EVP_EC_gen("P-384");
    k->vlek = EVP_EC_gen("P-384");
    MR_ENSURE(k->ark != NULL && k->ask != NULL && k->asvk != NULL && k->vcek != NULL &&
                  k->vlek != NULL,
              MR_ERR_INTERNAL, "softsnp: cannot generate keys");
    MR_GUARD(make_ca("ARK-Milan softsnp TEST", k->ark, NULL, k->ark, nb, na, &k->ark_c));
    MR_GUARD(make_ca("SEV-Milan softsnp TEST", k->ask, k->ark_c, k->ark, nb, na, &k->ask_c));
    MR_GUARD(make_ca("SEV-VLEK-Milan softsnp TEST", k->asvk, k->ark_c, k->ark, nb, na, &k->asvk_c));
    return MR_SUCCESS;
}

static MR_RESULT write_state(const char *dir, const uint8_t chip_id[64], time_t nb, time_t na)
{
    mr_result res = MR_FAILURE;
    char path[4096];
    char *text = NULL;
    mr_buf hex;
    mr_buf_init(&hex, 0, 0);
    json_t *o = NULL;
    MR_GUARD_OUT(mr_hex_encode_buf(chip_id, 64, &hex));
    MR_GUARD_OUT(mr_buf_append(&hex, "", 1));
    o = json_pack("{s:s, s:s, s:I, s:I}", "warning",
                  "softsnp TEST material: reports made from this directory prove nothing",
                  "chip_id", (const char *)hex.data, "not_before", (json_int_t)nb, "not_after",
                  (json_int_t)na);
    MR_ENSURE_ALLOC_OUT(o);
    text = json_dumps(o, JSON_INDENT(2));
    MR_ENSURE_ALLOC_OUT(text);
    MR_GUARD_OUT(mr_issuer_io_path(path, sizeof(path), dir, F_STATE));
    MR_GUARD_OUT(mr_issuer_io_write_new(path, text, strlen(text), 0600));
    res = MR_SUCCESS;
out:
    mr_wipe_free(text); /* jansson allocates with mr_wipe_malloc (common/alloc.c) */
    json_decref(o);
    mr_buf_free(&hex);
    return res;
}

static MR_RESULT make_dirs(const char *dir)
{
    char path[4096];
    MR_ENSURE(mkdir(dir, 0700) == 0 || errno == EEXIST, MR_ERR_IO, "cannot create %s: %s", dir,
              strerror(errno));
    MR_GUARD(mr_issuer_io_path(path, sizeof(path), dir, "private"));
    MR_ENSURE(mkdir(path, 0700) == 0 || errno == EEXIST, MR_ERR_IO, "cannot create %s: %s",
              path, strerror(errno));
    MR_ENSURE(chmod(path, 0700) == 0, MR_ERR_IO, "cannot chmod %s: %s", path, strerror(errno));
    return MR_SUCCESS;
}

MR_RESULT mr_softsnp_init(const char *dir, const mr_softsnp_init_opts *opts)
{
    mr_result res = MR_FAILURE;
    keys k = {0};
    uint8_t chip_id[64];
    unsigned days = opts != NULL && opts->valid_days != 0 ? opts->valid_days : DEFAULT_DAYS;
    time_t now = opts != NULL && opts->now != 0 ? opts->now : time(NULL);
    MR_ENSURE_OUT(dir != NULL && dir[0] != '\0', MR_ERR_USAGE, "softsnp: no directory given");
    MR_ENSURE_OUT(days <= 36500, MR_ERR_USAGE, "softsnp: --valid-days must be <= 36500");
    time_t nb = now - 3600, na = now + (time_t)days * 86400;
    MR_GUARD_OSSL_OUT(RAND_bytes(chip_id, sizeof(chip_id)), MR_ERR_INTERNAL, "RAND_bytes failed");
    MR_GUARD_OUT(make_dirs(dir));
    MR_GUARD_OUT(make_keys(&k, nb, na));
    MR_GUARD_OUT(write_certs(dir, &k.ark_c, 1, F_ARK));
    MR_GUARD_OUT(write_certs(dir, &k.ask_c, 1, F_ASK));
    MR_GUARD_OUT(write_certs(dir, &k.asvk_c, 1, F_ASVK));
    X509 *chain[] = {k.ask_c, k.ark_c};
    MR_GUARD_OUT(write_certs(dir, chain, 2, F_CHAIN));
    MR_GUARD_OUT(write_key(dir, F_ARK_KEY, k.ark));
    MR_GUARD_OUT(write_key(dir, F_ASK_KEY, k.ask));
    MR_GUARD_OUT(write_key(dir, F_ASVK_KEY, k.asvk));
    MR_GUARD_OUT(write_key(dir, F_VCEK_KEY, k.vcek));
    MR_GUARD_OUT(write_key(dir, F_VLEK_KEY, k.vlek));
    MR_GUARD_OUT(write_state(dir, chip_id, nb, na));
    res = MR_SUCCESS;
out:
    keys_free(&k);
    return res;
}

/* ---- load -------------------------------------------------------------------------------- */

static MR_RESULT read_state(const char *dir, mr_softsnp *s)
{
    mr_result res = MR_FAILURE;
    mr_buf text;
    json_t *o = NULL;
    const char *hex = NULL;
    json_int_t nb = 0, na = 0;
    MR_GUARD_OUT(read_file(dir, F_STATE, false, &text));
    o = json_loadb((const char *)text.data, text.len, 0, NULL);
    MR_ENSURE_OUT(o != NULL && json_unpack(o, "{s:s, s:I, s:I}", "chip_id", &hex, "not_before",
                                           &nb, "not_after", &na) == 0 &&
                      strlen(hex) == 128 && mr_ok(mr_hex_decode_fixed(hex, 128, s->chip_id, 64)),
                  MR_ERR_IO, "softsnp: %s/" F_STATE " is damaged", dir);
    s->not_before = (time_t)nb;
    s->not_after = (time_t)na;
    res = MR_SUCCESS;
out:
    json_decref(o);
    mr_buf_free(&text);
    return res;
}

MR_RESULT mr_softsnp_load(const char *dir, mr_softsnp **out)
{
    mr_result res = MR_FAILURE;
    mr_softsnp *s = NULL;
    MR_ENSURE_REF(dir);
    MR_ENSURE_REF(out);
    s = mr_calloc(1, sizeof(*s));
    MR_ENSURE_ALLOC_OUT(s);
    MR_GUARD_OUT(read_state(dir, s));
    MR_GUARD_OUT(read_cert(dir, F_ARK, &s->ark));
    MR_GUARD_OUT(read_cert(dir, F_ASK, &s->ask));
    MR_GUARD_OUT(read_cert(dir, F_ASVK, &s->asvk));
    MR_GUARD_OUT(read_key(dir, F_ASK_KEY, &s->ask_key));
    MR_GUARD_OUT(read_key(dir, F_ASVK_KEY, &s->asvk_key));
    MR_GUARD_OUT(read_key(dir, F_VCEK_KEY, &s->vcek_key));
    MR_GUARD_OUT(read_key(dir, F_VLEK_KEY, &s->vlek_key));
    *out = s;
    s = NULL;
    res = MR_SUCCESS;
out:
    mr_softsnp_free(s);
    return res;
}

void mr_softsnp_free(mr_softsnp *s)
{
    if (s == NULL)
        return;
    EVP_PKEY_free(s->ask_key);
    EVP_PKEY_free(s->asvk_key);
    EVP_PKEY_free(s->vcek_key);
    EVP_PKEY_free(s->vlek_key);
    X509_free(s->ark);
    X509_free(s->ask);
    X509_free(s->asvk);
    mr_free(s);
}

void mr_softsnp_chip_id(const mr_softsnp *s, uint8_t out[64])
{
    memcpy(out, s->chip_id, sizeof(s->chip_id));
}

/* ---- reports ----------------------------------------------------------------------------- */

void mr_softsnp_identity_default(mr_softsnp_identity *out)
{
    memset(out, 0, sizeof(*out));
    out->version = 3;
    out->policy = MR_SNP_POLICY_SMT | MR_SNP_POLICY_RESERVED1;
    out->tcb_bl = 3;
    out->tcb_snp = 20;
    out->tcb_ucode = 209;
}

static void le_put(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void fill_report(const mr_softsnp *s, const mr_softsnp_identity *id, const uint8_t rd[64],
                        uint8_t r[MR_SNP_REPORT_SIZE])
{
    uint8_t tcb[8] = {id->tcb_bl, id->tcb_tee, 0, 0, 0, 0, id->tcb_snp, id->tcb_ucode};
    memset(r, 0, MR_SNP_REPORT_SIZE);
    le_put(r + 0x000, id->version, 4);
    le_put(r + 0x004, id->guest_svn, 4);
    le_put(r + 0x008, id->policy, 8);
    memcpy(r + 0x010, id->family_id, 16);
    memcpy(r + 0x020, id->image_id, 16);
    le_put(r + 0x030, id->vmpl, 4);
    le_put(r + 0x034, 1, 4); /* ECDSA P-384 with SHA-384 */
    le_put(r + 0x040, MR_SNP_PLATFORM_SMT_EN, 8);
    le_put(r + 0x048, (id->author_key ? 1u : 0u) | ((id->vlek ? 1u : 0u) << 2), 4);
    memcpy(r + 0x050, rd, 64);
    memcpy(r + 0x090, id->measurement, 48);
    memcpy(r + 0x0C0, id->host_data, 32);
    memcpy(r + 0x0E0, id->id_key_digest, 48);
    memcpy(r + 0x110, id->author_key_digest, 48);
    for (int i = 0; i < 32; i++)
        r[0x140 + i] = (uint8_t)(0xa0 + i); /* REPORT_ID */
    for (int t = 0; t < 4; t++) /* current, reported, committed, launch */
        memcpy(r + (t == 0 ? 0x038 : t == 1 ? 0x180 : t == 2 ? 0x1E0 : 0x1F0), tcb, 8);
    if (id->version >= 3) {
        r[0x188] = 0x19; /* Milan */
        r[0x189] = 0x01;
        r[0x18A] = 0x01;
    }
    memcpy(r + 0x1A0, s->chip_id, 64);
    r[0x1E8] = 5; /* CURRENT_BUILD/MINOR/MAJOR 1.55.5 */
    r[0x1E9] = 55;
    r[0x1EA] = 1;
}

static MR_RESULT sign_report(EVP_PKEY *key, uint8_t r[MR_SNP_REPORT_SIZE])
{
    mr_result res = MR_FAILURE;
    uint8_t der[160];
    size_t dlen = sizeof(der);
    ECDSA_SIG *sig = NULL;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    MR_ENSURE_ALLOC_OUT(md);
    MR_GUARD_OSSL_OUT(EVP_DigestSignInit(md, NULL, EVP_sha384(), NULL, key), MR_ERR_INTERNAL,
                      "softsnp: cannot sign the report");
    MR_GUARD_OSSL_OUT(EVP_DigestSign(md, der, &dlen, r, MR_SNP_SIGNED_SIZE), MR_ERR_INTERNAL,
                      "softsnp: cannot sign the report");
    const unsigned char *p = der;
    sig = d2i_ECDSA_SIG(NULL, &p, (long)dlen);
    MR_ENSURE_ALLOC_OUT(sig);
    MR_ENSURE_OUT(BN_bn2lebinpad(ECDSA_SIG_get0_r(sig), r + 0x2A0, 72) == 72 &&
                      BN_bn2lebinpad(ECDSA_SIG_get0_s(sig), r + 0x2A0 + 72, 72) == 72,
                  MR_ERR_INTERNAL, "softsnp: cannot encode the signature");
    res = MR_SUCCESS;
out:
    ECDSA_SIG_free(sig);
    EVP_MD_CTX_free(md);
    return res;
}

static MR_RESULT append_aux(const mr_softsnp *s, bool vlek, const mr_buf *vek, mr_buf *aux)
{
    mr_result res = MR_FAILURE;
    mr_buf ask, ark;
    mr_buf_init(&ask, 0, 0);
    mr_buf_init(&ark, 0, 0);
    MR_GUARD_OUT(der_of(vlek ? s->asvk : s->ask, &ask));
    MR_GUARD_OUT(der_of(s->ark, &ark));
    mr_snp_cert_table t = {.ask = mr_buf_slice(&ask), .ark = mr_buf_slice(&ark)};
    if (vlek)
        t.vlek = mr_buf_slice(vek);
    else
        t.vcek = mr_buf_slice(vek);
    MR_GUARD_OUT(mr_snp_cert_table_build(&t, aux));
    res = MR_SUCCESS;
out:
    mr_buf_free(&ask);
    mr_buf_free(&ark);
    return res;
}

MR_RESULT mr_softsnp_report(const mr_softsnp *s, const mr_softsnp_identity *id,
                            const uint8_t *report_data, size_t report_data_len, mr_buf *report,
                            mr_buf *aux, mr_buf *vek)
{
    mr_result res = MR_FAILURE;
    uint8_t rd[64] = {0};
    uint8_t r[MR_SNP_REPORT_SIZE];
    X509 *cert = NULL;
    mr_buf der;
    mr_buf_init(&der, 0, 0);
    MR_ENSURE_REF(s);
    MR_ENSURE_REF(id);
    MR_ENSURE_REF(report);
    MR_ENSURE(report_data_len <= sizeof(rd), MR_ERR_USAGE,
              "report data is %zu bytes, at most 64 fit", report_data_len);
    MR_ENSURE(id->version >= 2 && id->version <= 3, MR_ERR_USAGE,
              "softsnp: report version %u (want 2 or 3)", id->version);
    if (report_data_len > 0) {
        MR_ENSURE_REF(report_data);
        memcpy(rd, report_data, report_data_len);
    }
    fill_report(s, id, rd, r);
    MR_GUARD_OUT(sign_report(id->vlek ? s->vlek_key : s->vcek_key, r));
    MR_GUARD_OUT(make_vek(s, id, &cert));
    MR_GUARD_OUT(der_of(cert, &der));
    if (aux != NULL)
        MR_GUARD_OUT(append_aux(s, id->vlek, &der, aux));
    if (vek != NULL)
        MR_GUARD_OUT(mr_buf_append(vek, der.data, der.len));
    MR_GUARD_OUT(mr_buf_append(report, r, sizeof(r)));
    res = MR_SUCCESS;
out:
    X509_free(cert);
    mr_buf_free(&der);
    return res;
}
