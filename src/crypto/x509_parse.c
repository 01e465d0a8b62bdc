/* SPDX-License-Identifier: Apache-2.0 */
/* Certificate and CRL parsing, encoding and field accessors. */
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <string.h>

#include "common/codec.h"
#include "crypto/hash.h"
#include "crypto/internal.h"
#include "crypto/key.h"

#define MR_CHAIN_MAX 32

MR_RESULT mr_x509_from_der(mr_slice der, X509 **out)
{
    const unsigned char *p = der.ptr;
    X509 *x = NULL;
    MR_ENSURE(der.len > 0 && der.len <= MR_X509_DER_MAX, MR_ERR_USAGE,
              "invalid certificate: bad length %zu", der.len);
    x = d2i_X509(NULL, &p, (long)der.len);
    ERR_clear_error();
    MR_ENSURE(x != NULL, MR_ERR_USAGE, "invalid certificate encoding");
    if (p != der.ptr + der.len) {
        X509_free(x);
        MR_BAIL(MR_ERR_USAGE, "invalid certificate: trailing data");
    }
    *out = x;
    return MR_SUCCESS;
}

MR_RESULT mr_x509_from_pem(mr_slice pem, X509 **out)
{
    mr_buf der;
    MR_GUARD(mr_pem_first(pem, "CERTIFICATE", MR_X509_DER_MAX, &der));
    mr_result r = mr_x509_from_der(mr_buf_slice(&der), out);
    mr_buf_free(&der);
    return r;
}

/* Parses the next PEM block of c into a certificate; *x = NULL at the end of input. */
static MR_RESULT next_cert(mr_cursor *c, X509 **x)
{
    mr_result res = MR_FAILURE;
    mr_pem_block blk;
    bool found = false;
    *x = NULL;
    mr_buf_init(&blk.der, MR_X509_DER_MAX, 0);
    MR_GUARD_OUT(mr_pem_next(c, &blk, &found));
    if (found) {
        MR_ENSURE_OUT(strcmp(blk.label, "CERTIFICATE") == 0, MR_ERR_USAGE,
                      "unexpected PEM block type \"%s\" in certificate chain", blk.label);
        MR_GUARD_OUT(mr_x509_from_der(mr_buf_slice(&blk.der), x));
    }
    res = MR_SUCCESS;
out:
    mr_buf_free(&blk.der);
    return res;
}

MR_RESULT mr_x509_chain_from_pem(mr_slice pem, STACK_OF(X509) **out)
{
    mr_result res = MR_FAILURE;
    STACK_OF(X509) *chain = sk_X509_new_null();
    X509 *x = NULL;
    mr_cursor c;
    mr_cursor_init(&c, pem.ptr, pem.len);
    MR_ENSURE_ALLOC(chain);
    for (;;) {
        MR_GUARD_OUT(next_cert(&c, &x));
        if (x == NULL)
            break;
        MR_ENSURE_OUT(sk_X509_num(chain) < MR_CHAIN_MAX, MR_ERR_USAGE,
                      "certificate chain too long");
        MR_ENSURE_ALLOC_OUT(sk_X509_push(chain, x) > 0 ? chain : NULL);
        x = NULL;
    }
    MR_ENSURE_OUT(sk_X509_num(chain) > 0, MR_ERR_USAGE, "no certificate found in PEM data");
    *out = chain;
    chain = NULL;
    res = MR_SUCCESS;
out:
    X509_free(x);
    sk_X509_pop_free(chain, X509_free);
    return res;
}

MR_RESULT mr_x509_to_der(X509 *cert, mr_buf *out)
{
    unsigned char *enc = NULL;
    int len = i2d_X509(cert, &enc);
    MR_ENSURE_OSSL(len > 0, MR_ERR_INTERNAL, "certificate encoding failed");
    mr_result r = mr_buf_append(out, enc, (size_t)len);
    OPENSSL_free(enc);
    return r;
}

MR_RESULT mr_x509_to_pem(X509 *cert, mr_buf *out)
{
    mr_buf der;
    mr_buf_init(&der, 0, 0);
    MR_GUARD(mr_x509_to_der(cert, &der));
    mr_result r = mr_pem_encode_buf("CERTIFICATE", der.data, der.len, out);
    mr_buf_free(&der);
    return r;
}

MR_RESULT mr_x509_sha256(X509 *cert, uint8_t out[32])
{
    unsigned int len = 0;
    MR_GUARD_OSSL(X509_digest(cert, EVP_sha256(), out, &len), MR_ERR_INTERNAL,
                  "certificate digest");
    return MR_SUCCESS;
}

MR_RESULT mr_x509_spki_der(X509 *cert, mr_buf *out)
{
    unsigned char *enc = NULL;
    int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &enc);
    MR_ENSURE_OSSL(len > 0, MR_ERR_INTERNAL, "public key encoding failed");
    mr_result r = mr_buf_append(out, enc, (size_t)len);
    OPENSSL_free(enc);
    return r;
}

MR_RESULT mr_der_elem(mr_cursor *c, mr_errcat cat, uint8_t *tag, mr_cursor *contents,
                      mr_slice *whole)
{
    mr_cursor start = *c;
    uint8_t b = 0;
    size_t len = 0;
    MR_GUARD(mr_cursor_u8(c, tag));
    MR_ENSURE((*tag & 0x1f) != 0x1f, cat, "unsupported DER tag");
    MR_GUARD(mr_cursor_u8(c, &b));
    if (b < 0x80) {
        len = b;
    } else {
        unsigned n = b & 0x7f;
        MR_ENSURE(n >= 1 && n <= 4, cat, "unsupported DER length");
        for (unsigned i = 0; i < n; i++) {
            MR_GUARD(mr_cursor_u8(c, &b));
            len = (len << 8) | b;
        }
    }
    size_t header = mr_cursor_remaining(&start) - mr_cursor_remaining(c);
    MR_GUARD(mr_cursor_sub(c, len, contents));
    if (whole != NULL)
        MR_GUARD(mr_cursor_view(&start, header + len, whole));
    return MR_SUCCESS;
}

static MR_RESULT der_expect(mr_cursor *c, uint8_t want, mr_cursor *contents, mr_slice *whole)
{
    uint8_t tag = 0;
    MR_GUARD(mr_der_elem(c, MR_ERR_USAGE, &tag, contents, whole));
    MR_ENSURE(tag == want, MR_ERR_USAGE, "certificate: unexpected DER tag 0x%02x (0x%02x expected)",
              tag, want);
    return MR_SUCCESS;
}

MR_RESULT mr_x509_der_spki(mr_slice der, mr_slice *spki)
{
    mr_cursor in, cert, tbs, field, probe;
    uint8_t tag = 0;
    mr_cursor_init(&in, der.ptr, der.len);
    MR_GUARD(der_expect(&in, 0x30, &cert, NULL)); /* Certificate */
    MR_GUARD(der_expect(&cert, 0x30, &tbs, NULL)); /* TBSCertificate */
    probe = tbs;
    MR_GUARD(mr_der_elem(&probe, MR_ERR_USAGE, &tag, &field, NULL));
    if (tag == 0xa0) /* [0] EXPLICIT version */
        tbs = probe;
    MR_GUARD(der_expect(&tbs, 0x02, &field, NULL)); /* serialNumber */
    for (int i = 0; i < 4; i++) /* signature, issuer, validity, subject */
        MR_GUARD(der_expect(&tbs, 0x30, &field, NULL));
    return der_expect(&tbs, 0x30, &field, spki); /* subjectPublicKeyInfo */
}

/* ---- accessors ---- */

MR_RESULT mr_x509_pubkey(X509 *cert, EVP_PKEY **borrowed)
{
    EVP_PKEY *key = X509_get0_pubkey(cert);
    ERR_clear_error();
    MR_ENSURE(key != NULL, MR_ERR_USAGE, "certificate has an unsupported public key");
    MR_GUARD(mr_key_check(key));
    *borrowed = key;
    return MR_SUCCESS;
}

MR_RESULT mr_x509_subject_cn(const X509 *cert, mr_buf *out)
{
    const X509_NAME *name = X509_get_subject_name(cert);
    int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    unsigned char *utf8 = NULL;
    if (i < 0)
        return mr_buf_nul_terminate(out);
    int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
    MR_ENSURE(len >= 0 && utf8 != NULL, MR_ERR_USAGE, "invalid common name");
    bool nul = memchr(utf8, 0, (size_t)len) != NULL;
    mr_result r = nul ? MR_FAILURE : mr_buf_append(out, utf8, (size_t)len);
    OPENSSL_free(utf8);
    MR_ENSURE(!nul, MR_ERR_USAGE, "invalid common name: embedded NUL");
    MR_GUARD(r);
    return mr_buf_nul_terminate(out);
}

MR_RESULT mr_x509_subject(const X509 *cert, mr_x509_name *out)
{
    return mr_x509_name_read(X509_get_subject_name(cert), out);
}

MR_RESULT mr_x509_sans(const X509 *cert, mr_x509_san_list *out)
{
    int crit = 0;
    GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, NULL);
    MR_ENSURE(gens != NULL || crit == -1, MR_ERR_USAGE, "invalid subject alternative names");
    mr_result r = mr_x509_gens_read(gens, out);
    GENERAL_NAMES_free(gens);
    return r;
}

static MR_RESULT to_time_t(const ASN1_TIME *t, time_t *out)
{
    struct tm tm = {0};
    MR_ENSURE(t != NULL && ASN1_TIME_to_tm(t, &tm) == 1, MR_ERR_USAGE, "invalid certificate time");
    *out = timegm(&tm);
    return MR_SUCCESS;
}

MR_RESULT mr_x509_validity(const X509 *cert, time_t *not_before, time_t *not_after)
{
    MR_GUARD(to_time_t(X509_get0_notBefore(cert), not_before));
    MR_GUARD(to_time_t(X509_get0_notAfter(cert), not_after));
    return MR_SUCCESS;
}

static mr_slice octets(const ASN1_OCTET_STRING *s)
{
    if (s == NULL)
        return MR_SLICE(NULL, 0);
    return MR_SLICE(ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s));
}

mr_slice mr_x509_ski(X509 *cert) { return octets(X509_get0_subject_key_id(cert)); }

mr_slice mr_x509_aki(X509 *cert) { return octets(X509_get0_authority_key_id(cert)); }

bool mr_x509_is_ca(X509 *cert) { return (X509_get_extension_flags(cert) & EXFLAG_CA) != 0; }

MR_RESULT mr_x509_extension(const X509 *cert, const char *oid, mr_slice *value, bool *critical,
                            bool *found)
{
    ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
    MR_ENSURE(obj != NULL, MR_ERR_USAGE, "invalid OID \"%.64s\"", oid);
    int i = X509_get_ext_by_OBJ(cert, obj, -1);
    ASN1_OBJECT_free(obj);
    *found = i >= 0;
    if (i < 0)
        return MR_SUCCESS;
    X509_EXTENSION *ext = X509_get_ext(cert, i);
    *value = octets(X509_EXTENSION_get_data(ext));
    if (critical != NULL)
        *critical = X509_EXTENSION_get_critical(ext) == 1;
    return MR_SUCCESS;
}

/* ---- CRLs ---- */

MR_RESULT mr_x509_crl_from_der(mr_slice der, X509_CRL **out)
{
    const unsigned char *p = der.ptr;
    X509_CRL *crl = NULL;
    MR_ENSURE(der.len > 0 && der.len <= MR_BUF_MAX_DEFAULT, MR_ERR_USAGE,
              "invalid CRL: bad length %zu", der.len);
    crl = d2i_X509_CRL(NULL, &p, (long)der.len);
    ERR_clear_error();
    MR_ENSURE(crl != NULL, MR_ERR_USAGE, "invalid CRL encoding");
    if (p != der.ptr + der.len) {
        X509_CRL_free(crl);
        MR_BAIL(MR_ERR_USAGE, "invalid CRL: trailing data");
    }
    *out = crl;
    return MR_SUCCESS;
}

