/* SPDX-License-Identifier: Apache-2.0 */
/* OpenSSL 3 helpers for the DCAP verifier; see ossl.h. */
#include "attest/ossl.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "common/buf.h"
#include "common/codec.h"
#include "common/text.h"
#include "crypto/hash.h"
#include "crypto/p256.h"

/* The current error, when of category `from`, becomes an attestation error (same text). */
static MR_RESULT as_attestation(mr_errcat from)
{
    mr_error e;
    if (mr_error_get()->cat == from) {
        mr_error_take(&e);
        e.cat = MR_ERR_ATTESTATION;
        mr_error_restore(&e);
    }
    return MR_FAILURE;
}

MR_RESULT mr_ossl_p256_from_raw(const uint8_t xy[64], EVP_PKEY **out)
{
    if (mr_ok(mr_key_p256_from_raw(MR_SLICE(xy, MR_P256_RAW_PUB_LEN), out)))
        return MR_SUCCESS;
    return as_attestation(MR_ERR_USAGE);
}

MR_RESULT mr_ossl_verify_raw_sig(EVP_PKEY *key, const uint8_t *msg, size_t len,
                                 const uint8_t sig[64], const char *what)
{
    static const char unusable[] = "cannot verify with this key";
    if (mr_ok(mr_ecdsa_p256_verify_raw(key, MR_SLICE(msg, len),
                                       MR_SLICE(sig, MR_P256_RAW_SIG_LEN))))
        return MR_SUCCESS;
    const mr_error *e = mr_error_get();
    if (e->cat == MR_ERR_AUTH)
        MR_BAIL(MR_ERR_ATTESTATION, "%s does not verify", what);
    if (e->cat == MR_ERR_USAGE && strncmp(e->msg, unusable, sizeof(unusable) - 1) == 0)
        MR_BAIL(MR_ERR_ATTESTATION, "%s: unusable key%s", what, e->msg + sizeof(unusable) - 1);
    return MR_FAILURE;
}

MR_RESULT mr_ossl_der_cert(const uint8_t *der, size_t len, X509 **out)
{
    const unsigned char *p = der;
    X509 *c = NULL;

    MR_ENSURE(len > 0 && len < (size_t)1 << 20, MR_ERR_ATTESTATION, "bad certificate size");
    c = d2i_X509(NULL, &p, (long)len);
    if (c == NULL || p != der + len) {
        X509_free(c);
        ERR_clear_error();
        MR_BAIL(MR_ERR_ATTESTATION, "malformed certificate");
    }
    *out = c;
    return MR_SUCCESS;
}

MR_RESULT mr_ossl_der_crl(const uint8_t *der, size_t len, X509_CRL **out)
{
    const unsigned char *p = der;
    X509_CRL *c = NULL;

    MR_ENSURE(len > 0 && len < (size_t)16 << 20, MR_ERR_ATTESTATION, "bad CRL size");
    c = d2i_X509_CRL(NULL, &p, (long)len);
    if (c == NULL || p != der + len) {
        X509_CRL_free(c);
        ERR_clear_error();
        MR_BAIL(MR_ERR_ATTESTATION, "malformed CRL");
    }
    *out = c;
    return MR_SUCCESS;
}

/* Finds needle in the cursor's remaining bytes; on success the cursor points at it. */
static bool seek(mr_cursor *c, const char *needle)
{
    size_t n = strlen(needle);
    mr_slice rest;
    const uint8_t *hit = NULL;
    mr_cursor probe = *c;

    if (!mr_ok(mr_cursor_view(&probe, mr_cursor_remaining(c), &rest)))
        return false;
    hit = memmem(rest.ptr, rest.len, needle, n);
    if (hit == NULL)
        return false;
    return mr_ok(mr_cursor_skip(c, (size_t)(hit - rest.ptr)));
}

/* Certificates are public: decode the PEM bodies into ordinary (not locked) memory. */
MR_RESULT mr_ossl_pem_certs(const uint8_t *pem, size_t len, STACK_OF(X509) **out)
{
    static const char begin[] = "-----BEGIN CERTIFICATE-----";
    static const char end[] = "-----END CERTIFICATE-----";
    mr_result res = MR_FAILURE;
    STACK_OF(X509) *sk = NULL;
    X509 *cert = NULL;
    mr_buf der;
    mr_cursor cur;

    mr_buf_init(&der, (size_t)1 << 20, 0);
    mr_cursor_init(&cur, pem, len);
    sk = sk_X509_new_null();
    MR_ENSURE_ALLOC_OUT(sk);
    while (seek(&cur, begin)) {
        size_t body_start = 0;
        mr_slice body;
        MR_GUARD_OUT(mr_cursor_skip(&cur, sizeof(begin) - 1));
        body_start = cur.pos;
        MR_ENSURE_OUT(seek(&cur, end), MR_ERR_ATTESTATION,
                      "certificate chain: unterminated PEM block");
        body = MR_SLICE(pem + body_start, cur.pos - body_start);
        MR_GUARD_OUT(mr_cursor_skip(&cur, sizeof(end) - 1));
        MR_ENSURE_OUT(sk_X509_num(sk) < 16, MR_ERR_ATTESTATION, "too many certificates");
        mr_buf_reset(&der);
        if (!mr_ok(mr_b64_decode_buf((const char *)body.ptr, body.len, MR_B64_STD,
                                     MR_B64_IGNORE_NEWLINES, &der))) {
            /* bad base64 is the chain's fault; out of memory stays what it is */
            MR_ENSURE_OUT(mr_error_get()->cat == MR_ERR_INTERNAL, MR_ERR_ATTESTATION,
                          "certificate chain: bad base64 in PEM block");
            goto out;
        }
        MR_GUARD_OUT(mr_ossl_der_cert(der.data, der.len, &cert));
        MR_ENSURE_OUT(sk_X509_push(sk, cert) > 0, MR_ERR_INTERNAL, "out of memory");
        cert = NULL;
    }
    MR_ENSURE_OUT(sk_X509_num(sk) > 0, MR_ERR_ATTESTATION, "no certificate in PEM chain");
    *out = sk;
    sk = NULL;
    res = MR_SUCCESS;
out:
    X509_free(cert);
    sk_X509_pop_free(sk, X509_free);
    mr_buf_free(&der);
    return res;
}

MR_RESULT mr_ossl_asn1_time(const ASN1_TIME *t, time_t *out)
{
    struct tm tm;

    memset(&tm, 0, sizeof(tm));
    MR_ENSURE(t != NULL && ASN1_TIME_to_tm(t, &tm) == 1, MR_ERR_ATTESTATION, "invalid time");
    *out = timegm(&tm);
    return MR_SUCCESS;
}

MR_RESULT mr_ossl_rfc3339(const char *s, size_t len, time_t *out)
{
    mr_rfc3339_time t;
    switch (mr_rfc3339_parse(s, len, MR_RFC3339_UTC_LENIENT, &t)) {
    case MR_RFC3339_OK:
        *out = (time_t)t.unix_sec;
        return MR_SUCCESS;
    case MR_RFC3339_BAD_ZONE:
        MR_BAIL(MR_ERR_ATTESTATION, "invalid date (UTC 'Z' required)");
    default:
        MR_BAIL(MR_ERR_ATTESTATION, "invalid date");
    }
}

void mr_ossl_subject_cn(X509 *cert, char *out, size_t cap)
{
    X509_NAME *name = X509_get_subject_name(cert);
    int idx = name ? X509_NAME_get_index_by_NID(name, NID_commonName, -1) : -1;
    const ASN1_STRING *s = NULL;
    size_t n = 0;

    out[0] = '\0';
    if (idx < 0)
        return;
    s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
    if (s == NULL)
        return;
    n = (size_t)ASN1_STRING_length(s);
    if (n >= cap)
        n = cap - 1;
    memcpy(out, ASN1_STRING_get0_data(s), n);
    out[n] = '\0';
    /* a CN with an embedded NUL is cut there, which only makes name checks stricter */
}

MR_RESULT mr_ossl_spki_sha256(X509 *cert, uint8_t out[32])
{
    unsigned char *der = NULL;
    int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
    mr_result res;

    MR_ENSURE(n > 0, MR_ERR_INTERNAL, "encoding public key");
    res = mr_sha256(der, (size_t)n, out);
    OPENSSL_free(der);
    return res;
}

bool mr_ossl_self_issued(X509 *cert)
{
    return X509_NAME_cmp(X509_get_subject_name(cert), X509_get_issuer_name(cert)) == 0;
}

MR_RESULT mr_ossl_verify_chain(X509 *leaf, STACK_OF(X509) *untrusted, STACK_OF(X509) *roots,
                               X509 **issuer_out, time_t *chain_not_before,
                               time_t *chain_not_after)
{
    mr_result res = MR_FAILURE;
    X509_STORE *store = NULL;
    X509_STORE_CTX *ctx = NULL;
    X509_VERIFY_PARAM *param = NULL;
    STACK_OF(X509) *chain = NULL;
    time_t nb = 0, na = 0;
    int err = 0;

    store = X509_STORE_new();
    ctx = X509_STORE_CTX_new();
    MR_ENSURE_OUT(store && ctx, MR_ERR_INTERNAL, "out of memory");
    for (int i = 0; i < sk_X509_num(roots); i++)
        MR_GUARD_OSSL_OUT(X509_STORE_add_cert(store, sk_X509_value(roots, i)), MR_ERR_INTERNAL,
                          "adding trusted root");
    MR_GUARD_OSSL_OUT(X509_STORE_CTX_init(ctx, store, leaf, untrusted), MR_ERR_INTERNAL,
                      "certificate verification setup");
    param = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_TRUSTED_FIRST | X509_V_FLAG_NO_CHECK_TIME);
    if (X509_verify_cert(ctx) != 1) {
        err = X509_STORE_CTX_get_error(ctx);
        ERR_clear_error();
        MR_BAIL_OUT(MR_ERR_ATTESTATION, "%s", X509_verify_cert_error_string(err));
    }
    chain = X509_STORE_CTX_get0_chain(ctx);
    MR_ENSURE_OUT(chain != NULL && sk_X509_num(chain) >= 2, MR_ERR_ATTESTATION,
                  "chain too short");
    for (int i = 0; i < sk_X509_num(chain); i++) {
        X509 *c = sk_X509_value(chain, i);
        time_t a = 0, b = 0;
        MR_GUARD_OUT(mr_ossl_asn1_time(X509_get0_notBefore(c), &a));
        MR_GUARD_OUT(mr_ossl_asn1_time(X509_get0_notAfter(c), &b));
        if (i == 0 || a > nb)
            nb = a;
        if (i == 0 || b < na)
            na = b;
    }
    if (issuer_out) {
        X509 *iss = sk_X509_value(chain, 1);
        MR_GUARD_OSSL_OUT(X509_up_ref(iss), MR_ERR_INTERNAL, "certificate reference");
        *issuer_out = iss;
    }
    if (chain_not_before)
        *chain_not_before = nb;
    if (chain_not_after)
        *chain_not_after = na;
    res = MR_SUCCESS;
out:
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return res;
}

void mr_ossl_fmt_time(time_t t, char *out, size_t cap)
{
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, cap, "%lld", (long long)t);
}
