/* SPDX-License-Identifier: Apache-2.0 */
/*
 * softsgx load + quote: makes ECDSA quotes with the test keys of a softsgx directory (see
 * softsgx.h): v3 the way Intel's Quoting Enclave does, and the synthetic SGX v4/v5 forms.
 * FOR TESTS ONLY.
 */
#include "attest/softsgx.h"

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <string.h>

#include "attest/issuer_io.h"
#include "attest/softsgx_int.h"
#include "common/alloc.h"
#include "common/codec.h"
#include "common/config.h"
#include "crypto/hash.h"
#include "crypto/p256.h"

const uint8_t mr_softsgx_intel_vendor_id_[16] = {0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9,
                                                 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07};

enum {
    ATTR_INIT = 0x01,
    ATTR_DEBUG = 0x02,
    ATTR_MODE64BIT = 0x04,
    ATTR_PROVISIONKEY = 0x10,
    XFRM_DEFAULT = 0xe7,
    FILE_MAX = 1 << 20,
};

static const uint8_t ZEROS[64];

/* ---- report body --------------------------------------------------------------------- */

typedef struct report_fields {
    const uint8_t *cpusvn; /* 16 */
    uint32_t miscselect;
    uint64_t flags, xfrm;
    const uint8_t *mrenclave, *mrsigner; /* 32 each */
    uint16_t isvprodid, isvsvn;
    const uint8_t *report_data; /* 64 */
} report_fields;

/* Appends an sgx_report_body_t (384 bytes, spec §1.2) field by field. */
static MR_RESULT append_report_body(mr_buf *b, const report_fields *f)
{
    MR_GUARD(mr_buf_append(b, f->cpusvn, 16));
    MR_GUARD(mr_buf_append_u32le(b, f->miscselect));
    MR_GUARD(mr_buf_append(b, ZEROS, 12)); /* reserved */
    MR_GUARD(mr_buf_append(b, ZEROS, 16)); /* ISVEXTPRODID */
    MR_GUARD(mr_buf_append_u64le(b, f->flags));
    MR_GUARD(mr_buf_append_u64le(b, f->xfrm));
    MR_GUARD(mr_buf_append(b, f->mrenclave, 32));
    MR_GUARD(mr_buf_append(b, ZEROS, 32)); /* reserved */
    MR_GUARD(mr_buf_append(b, f->mrsigner, 32));
    MR_GUARD(mr_buf_append(b, ZEROS, 32)); /* reserved */
    MR_GUARD(mr_buf_append(b, ZEROS, 64)); /* CONFIGID */
    MR_GUARD(mr_buf_append_u16le(b, f->isvprodid));
    MR_GUARD(mr_buf_append_u16le(b, f->isvsvn));
    MR_GUARD(mr_buf_append_u16le(b, 0));   /* CONFIGSVN */
    MR_GUARD(mr_buf_append(b, ZEROS, 42)); /* reserved */
    MR_GUARD(mr_buf_append(b, ZEROS, 16)); /* ISVFAMILYID */
    return mr_buf_append(b, f->report_data, 64);
}

/* ---- load -------------------------------------------------------------------------------- */

static MR_RESULT read_key(const char *dir, const char *name, EVP_PKEY **out)
{
    mr_result res = MR_FAILURE;
    char path[4096];
    mr_buf pem;
    mr_buf_init(&pem, FILE_MAX, MR_BUF_SECRET);
    BIO *bio = NULL;
    OSSL_DECODER_CTX *dctx = NULL;
    MR_GUARD_OUT(mr_issuer_io_path(path, sizeof(path), dir, name));
    MR_GUARD_OUT(mr_issuer_io_read(path, FILE_MAX, &pem));
    MR_ENSURE_OUT(pem.len > 0 && pem.len < (size_t)INT32_MAX, MR_ERR_IO, "%s is empty", path);
    bio = BIO_new_mem_buf(pem.data, (int)pem.len);
    MR_ENSURE_ALLOC_OUT(bio);
    /* The keys are P-256: naming the key type spares the decoder search over every type
     * (PEM_read_bio_PrivateKey costs ~7M instructions here, a third of the Coordinator's
     * start-up). */
    dctx = OSSL_DECODER_CTX_new_for_pkey(out, "PEM", NULL, "EC", EVP_PKEY_KEYPAIR, NULL, NULL);
    MR_ENSURE_ALLOC_OUT(dctx);
    MR_ENSURE_OUT(OSSL_DECODER_from_bio(dctx, bio) == 1 && *out != NULL, MR_ERR_IO,
                  "%s: not a PEM EC private key", path);
    res = MR_SUCCESS;
out:
    ERR_clear_error();
    OSSL_DECODER_CTX_free(dctx);
    BIO_free(bio);
    mr_buf_free(&pem); /* secret buffer: wiped */
    return res;
}

static MR_RESULT json_hex(json_t *obj, const char *key, uint8_t *out, size_t n)
{
    const char *s = json_string_value(json_object_get(obj, key));
    MR_ENSURE(s != NULL, MR_ERR_IO, "softsgx state: missing \"%s\"", key);
    MR_GUARD(mr_hex_decode_fixed(s, strlen(s), out, n));
    return MR_SUCCESS;
}

static MR_RESULT json_u16(json_t *obj, const char *key, uint16_t *out)
{
    json_t *v = json_object_get(obj, key);
    MR_ENSURE(json_is_integer(v) && json_integer_value(v) >= 0 &&
                  json_integer_value(v) <= 0xffff,
              MR_ERR_IO, "softsgx state: bad \"%s\"", key);
    *out = (uint16_t)json_integer_value(v);
    return MR_SUCCESS;
}

static MR_RESULT read_state(const char *dir, softsgx_platform *plat)
{
    mr_result res = MR_FAILURE;
    char path[4096];
    mr_buf text;
    mr_buf_init(&text, FILE_MAX, 0);
    json_t *obj = NULL;
    json_error_t jerr;
    MR_GUARD_OUT(mr_issuer_io_path(path, sizeof(path), dir, SOFTSGX_STATE));
    MR_GUARD_OUT(mr_issuer_io_read(path, FILE_MAX, &text));
    obj = json_loadb((const char *)text.data, text.len, JSON_REJECT_DUPLICATES, &jerr);
    MR_ENSURE_OUT(json_is_object(obj), MR_ERR_IO, "%s: bad JSON: %s", path, jerr.text);
    MR_GUARD_OUT(json_hex(obj, "qe_mrenclave", plat->qe_mrenclave, 32));
    MR_GUARD_OUT(json_hex(obj, "qe_mrsigner", plat->qe_mrsigner, 32));
    MR_GUARD_OUT(json_hex(obj, "qe_id", plat->qe_id, 16));
    MR_GUARD_OUT(json_hex(obj, "cpusvn", plat->cpusvn, 16));
    MR_GUARD_OUT(json_u16(obj, "qe_isvprodid", &plat->qe_isvprodid));
    MR_GUARD_OUT(json_u16(obj, "qe_isvsvn", &plat->qe_isvsvn));
    MR_GUARD_OUT(json_u16(obj, "pcesvn", &plat->pcesvn));
    res = MR_SUCCESS;
out:
    json_decref(obj);
    mr_buf_free(&text);
    return res;
}

/* QE report (with REPORTDATA = SHA-256(attestation key || auth data) || zeros), signed by
 * the PCK key: the certification of the attestation key (spec §1.7). The TD QE (ISVPRODID
 * 2) certifies the same key for TDX quotes. */
static MR_RESULT certify_attestation_key(mr_softsgx *s, EVP_PKEY *pck_key, bool td)
{
    mr_result res = MR_FAILURE;
    uint8_t rd[64] = {0};
    mr_buf body;
    mr_buf_init(&body, MR_SGX_REPORT_BODY_SIZE, 0);
    for (size_t i = 0; i < sizeof(s->qe_auth); i++)
        s->qe_auth[i] = (uint8_t)i; /* what Intel's QE3 emits */
    const mr_slice bound[] = {MR_SLICE(s->att_pub, sizeof(s->att_pub)),
                              MR_SLICE(s->qe_auth, sizeof(s->qe_auth))};
    MR_GUARD_OUT(mr_sha256_v(bound, MR_ARRAY_LEN(bound), rd));
    const report_fields f = {
        .cpusvn = s->plat.cpusvn,
        .miscselect = 0,
        .flags = ATTR_INIT | ATTR_MODE64BIT | ATTR_PROVISIONKEY,
        .xfrm = XFRM_DEFAULT,
        .mrenclave = s->plat.qe_mrenclave,
        .mrsigner = s->plat.qe_mrsigner,
        .isvprodid = td ? MR_SOFTSGX_TD_QE_ISVPRODID : s->plat.qe_isvprodid,
        .isvsvn = s->plat.qe_isvsvn,
        .report_data = rd,
    };
    uint8_t *report = td ? s->td_qe_report : s->qe_report;
    MR_GUARD_OUT(append_report_body(&body, &f));
    MR_ENSURE_OUT(body.len == MR_SGX_REPORT_BODY_SIZE, MR_ERR_INTERNAL, "QE report size");
    memcpy(report, body.data, body.len);
    MR_GUARD_OUT(mr_ecdsa_p256_sign_raw(pck_key, MR_SLICE(report, MR_SGX_REPORT_BODY_SIZE),
                                        td ? s->td_qe_report_sig : s->qe_report_sig));
    res = MR_SUCCESS;
out:
    mr_buf_free(&body);
    return res;
}

MR_RESULT mr_softsgx_load(const char *dir, mr_softsgx **out)
{
    mr_result res = MR_FAILURE;
    EVP_PKEY *pck_key = NULL;
    char path[4096];
    mr_softsgx *s = mr_calloc(1, sizeof(*s));
    MR_ENSURE_ALLOC_OUT(s);
    mr_buf_init(&s->chain, FILE_MAX, 0);
    MR_ENSURE_OUT(dir != NULL && dir[0] != '\0', MR_ERR_USAGE, "softsgx: no directory given");
    MR_GUARD_OUT(read_state(dir, &s->plat));
    MR_GUARD_OUT(mr_issuer_io_path(path, sizeof(path), dir, SOFTSGX_PCK_CHAIN));
    MR_GUARD_OUT(mr_issuer_io_read(path, FILE_MAX, &s->chain));
    MR_ENSURE_OUT(s->chain.len > 0, MR_ERR_IO, "%s is empty", path);
    MR_GUARD_OUT(mr_buf_append_u8(&s->chain, 0));
    MR_GUARD_OUT(read_key(dir, SOFTSGX_ATTESTATION_KEY, &s->att_key));
    MR_GUARD_OUT(read_key(dir, SOFTSGX_PCK_KEY, &pck_key));
    MR_GUARD_OUT(mr_key_p256_to_raw(s->att_key, s->att_pub));
    MR_GUARD_OUT(mr_key_p256_to_raw(pck_key, (uint8_t[64]){0}));
    MR_GUARD_OUT(certify_attestation_key(s, pck_key, false));
    MR_GUARD_OUT(certify_attestation_key(s, pck_key, true));
    /* one signature now, so that whatever OpenSSL sets up lazily on a key's first use
     * happens here and not concurrently in mr_softsgx_quote */
    MR_GUARD_OUT(mr_ecdsa_p256_sign_raw(s->att_key, MR_SLICE(s->qe_auth, sizeof(s->qe_auth)),
                                        (uint8_t[64]){0}));
    *out = s;
    s = NULL;
    res = MR_SUCCESS;
out:
    if (!mr_ok(res) && dir != NULL)
        mr_error_prefix("softsgx directory %s", dir);
    EVP_PKEY_free(pck_key);
    mr_softsgx_free(s);
    return res;
}

void mr_softsgx_free(mr_softsgx *s)
{
    if (s == NULL)
        return;
    EVP_PKEY_free(s->att_key);
    mr_buf_free(&s->chain);
    mr_free_wipe(s, sizeof(*s));
}

/* ---- identity from the environment ---------------------------------------------------- */

static MR_RESULT env_hex32(const char *name, uint8_t out[32])
{
    const char *v = mr_config_get(name);
    memset(out, 0, 32);
    if (v == NULL)
        return MR_SUCCESS;
    MR_ENSURE(strlen(v) == 64, MR_ERR_USAGE, "%s must be 64 hex digits", name);
    if (!mr_ok(mr_hex_decode_fixed(v, 64, out, 32)))
        MR_BAIL(MR_ERR_USAGE, "%s must be 64 hex digits", name);
    return MR_SUCCESS;
}

static MR_RESULT env_u16(const char *name, uint16_t *out)
{
    uint64_t v = 0;
    MR_GUARD(mr_config_u64(name, &v));
    MR_ENSURE(v <= 0xffff, MR_ERR_USAGE, "%s must be at most 65535", name);
    *out = (uint16_t)v;
    return MR_SUCCESS;
}

MR_RESULT mr_softsgx_identity_from_env(mr_softsgx_identity *out)
{
    mr_softsgx_identity id = {0};
    MR_GUARD(env_hex32("EDG_SOFTSGX_MRENCLAVE", id.mrenclave));
    MR_GUARD(env_hex32("EDG_SOFTSGX_MRSIGNER", id.mrsigner));
    MR_GUARD(env_u16("EDG_SOFTSGX_ISVPRODID", &id.isvprodid));
    MR_GUARD(env_u16("EDG_SOFTSGX_ISVSVN", &id.isvsvn));
    id.debug = mr_config_bool("EDG_SOFTSGX_DEBUG");
    *out = id;
    return MR_SUCCESS;
}

/* ---- quote -------------------------------------------------------------------------------- */

/* QE report, its signature, auth data and the type-5 PEM chain: the part of the signature
 * data that v3 carries directly and v4/v5 wrap in certification data type 6. */
MR_RESULT mr_softsgx_append_qe_part_(const mr_softsgx *s, bool td, mr_buf *q)
{
    MR_GUARD(mr_buf_append(q, td ? s->td_qe_report : s->qe_report, MR_SGX_REPORT_BODY_SIZE));
    MR_GUARD(mr_buf_append(q, td ? s->td_qe_report_sig : s->qe_report_sig, 64));
    MR_GUARD(mr_buf_append_u16le(q, (uint16_t)sizeof(s->qe_auth)));
    MR_GUARD(mr_buf_append(q, s->qe_auth, sizeof(s->qe_auth)));
    MR_GUARD(mr_buf_append_u16le(q, 5)); /* PCK certificate chain, PEM */
    MR_GUARD(mr_buf_append_u32le(q, (uint32_t)s->chain.len));
    return mr_buf_append(q, s->chain.data, s->chain.len);
}

MR_RESULT mr_softsgx_quote(const mr_softsgx *s, const mr_softsgx_identity *id,
                           const uint8_t *report_data, size_t report_data_len, bool oe_header,
                           mr_buf *out)
{
    return mr_softsgx_quote_version(s, 3, id, report_data, report_data_len, oe_header, out);
}

MR_RESULT mr_softsgx_quote_version(const mr_softsgx *s, uint16_t version,
                                   const mr_softsgx_identity *id, const uint8_t *report_data,
                                   size_t report_data_len, bool oe_header, mr_buf *out)
{
    mr_result res = MR_FAILURE;
    uint8_t rd[64] = {0};
    uint8_t sig[64];
    mr_buf q;
    mr_buf_init(&q, FILE_MAX + 4096, 0);
    MR_ENSURE_REF(s);
    MR_ENSURE_REF(id);
    MR_ENSURE(version >= 3 && version <= 5, MR_ERR_USAGE,
              "quote version %u not supported (want 3, 4 or 5)", version);
    MR_ENSURE(report_data_len <= sizeof(rd), MR_ERR_USAGE,
              "report data is %zu bytes, at most 64 fit", report_data_len);
    if (report_data_len > 0) {
        MR_ENSURE_REF(report_data);
        memcpy(rd, report_data, report_data_len);
    }
    /* header (spec §1.1); v4/v5 have the TEE type (0 = SGX) and reserved fields instead */
    MR_GUARD_OUT(mr_buf_append_u16le(&q, version));
    MR_GUARD_OUT(mr_buf_append_u16le(&q, 2)); /* ECDSA-256-with-P-256 */
    MR_GUARD_OUT(mr_buf_append_u32le(&q, 0)); /* v3 reserved / v4+ TEE type SGX */
    MR_GUARD_OUT(mr_buf_append_u16le(&q, version == 3 ? s->plat.qe_isvsvn : 0));
    MR_GUARD_OUT(mr_buf_append_u16le(&q, version == 3 ? s->plat.pcesvn : 0));
    MR_GUARD_OUT(mr_buf_append(&q, mr_softsgx_intel_vendor_id_, 16));
    MR_GUARD_OUT(mr_buf_append(&q, s->plat.qe_id, 16));
    MR_GUARD_OUT(mr_buf_append(&q, ZEROS, 4));
    if (version == 5) {
        MR_GUARD_OUT(mr_buf_append_u16le(&q, 1)); /* body type: SGX report */
        MR_GUARD_OUT(mr_buf_append_u32le(&q, MR_SGX_REPORT_BODY_SIZE));
    }
    /* enclave report body (spec §1.2) */
    const report_fields f = {
        .cpusvn = s->plat.cpusvn,
        .miscselect = 0,
        .flags = ATTR_INIT | ATTR_MODE64BIT | (id->debug ? ATTR_DEBUG : 0),
        .xfrm = XFRM_DEFAULT,
        .mrenclave = id->mrenclave,
        .mrsigner = id->mrsigner,
        .isvprodid = id->isvprodid,
        .isvsvn = id->isvsvn,
        .report_data = rd,
    };
    MR_GUARD_OUT(append_report_body(&q, &f));
    size_t signed_len = q.len; /* header (+ v5 type and size) + body */
    MR_ENSURE_OUT(signed_len == MR_SGX_QUOTE_SIGLEN_OFFSET + (version == 5 ? 6u : 0u),
                  MR_ERR_INTERNAL, "quote layout");
    /* signature data (spec §1.3, §1.4) */
    size_t qe_part = MR_SGX_REPORT_BODY_SIZE + 64 + 2 + sizeof(s->qe_auth) + 2 + 4 + s->chain.len;
    size_t sig_len = 64 + 64 + (version == 3 ? qe_part : 2 + 4 + qe_part);
    MR_ENSURE_OUT(sig_len <= UINT32_MAX, MR_ERR_INTERNAL, "quote too large");
    MR_GUARD_OUT(mr_ecdsa_p256_sign_raw(s->att_key, MR_SLICE(q.data, signed_len), sig));
    MR_GUARD_OUT(mr_buf_append_u32le(&q, (uint32_t)sig_len));
    MR_GUARD_OUT(mr_buf_append(&q, sig, sizeof(sig)));
    MR_GUARD_OUT(mr_buf_append(&q, s->att_pub, sizeof(s->att_pub)));
    if (version != 3) {
        MR_GUARD_OUT(mr_buf_append_u16le(&q, 6)); /* QE report certification data */
        MR_GUARD_OUT(mr_buf_append_u32le(&q, (uint32_t)qe_part));
    }
    MR_GUARD_OUT(mr_softsgx_append_qe_part_(s, false, &q));
    MR_ENSURE_OUT(q.len == signed_len + 4 + sig_len, MR_ERR_INTERNAL, "quote layout");
    if (oe_header)
        MR_GUARD_OUT(mr_issuer_oe_wrap(q.data, q.len, out));
    else
        MR_GUARD_OUT(mr_buf_append(out, q.data, q.len));
    res = MR_SUCCESS;
out:
    mr_buf_free(&q);
    return res;
}
