/* SPDX-License-Identifier: Apache-2.0 */
/* Target: certificate parsing (crypto/x509_parse.c: mr_x509_from_der, mr_x509_chain_from_pem,
 * mr_x509_der_spki) and every accessor the Coordinator uses on a parsed certificate. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/x509.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void use_cert(X509 *x)
{
    mr_buf cn, der;
    mr_x509_name name = {0};
    mr_x509_san_list sans = {0};
    EVP_PKEY *pk = NULL;
    time_t nb, na;
    mr_slice v;
    bool crit = false, found = false;
    uint8_t digest[32];
    mr_buf_init(&cn, 0, 0);
    mr_buf_init(&der, 0, 0);
    MR_IGNORE(mr_x509_subject_cn(x, &cn));
    MR_IGNORE(mr_x509_subject(x, &name));
    MR_IGNORE(mr_x509_sans(x, &sans));
    MR_IGNORE(mr_x509_validity(x, &nb, &na));
    MR_IGNORE(mr_x509_pubkey(x, &pk));
    MR_IGNORE(mr_x509_extension(x, "1.3.9903.2.1", &v, &crit, &found));
    MR_IGNORE(mr_x509_sha256(x, digest));
    (void)mr_x509_ski(x);
    (void)mr_x509_aki(x);
    (void)mr_x509_is_ca(x);
    MR_IGNORE(mr_x509_to_der(x, &der));
    /* a certificate verified against itself exercises the chain code on hostile input */
    mr_x509_verify_opts o = {.purpose = MR_X509_PURPOSE_ANY, .at = 1700000000};
    MR_IGNORE(mr_x509_verify(x, x, &o));
    mr_x509_name_clear(&name);
    mr_x509_san_list_clear(&sans);
    mr_buf_free(&cn);
    mr_buf_free(&der);
}

/* What mr_x509_der_spki finds in a certificate OpenSSL accepted is that certificate's
 * SubjectPublicKeyInfo: the view lies inside the input, is one whole X509_PUBKEY, and encodes
 * again as the parsed certificate's key does. (It may refuse BER that OpenSSL tolerates, such
 * as indefinite lengths; the unit tests show it finds the key of real certificates.) */
static void check_der_spki(X509 *x, const uint8_t *data, size_t size)
{
    mr_slice got = {0};
    mr_buf want;
    if (!mr_ok(mr_x509_der_spki(MR_SLICE(data, size), &got)))
        return;
    if (got.ptr < data || got.len > size || (size_t)(got.ptr - data) > size - got.len)
        abort();
    const unsigned char *p = got.ptr;
    X509_PUBKEY *k = d2i_X509_PUBKEY(NULL, &p, (long)got.len);
    if (k == NULL || p != got.ptr + got.len)
        abort();
    unsigned char *enc = NULL;
    int n = i2d_X509_PUBKEY(k, &enc);
    mr_buf_init(&want, 0, 0);
    if (mr_ok(mr_x509_spki_der(x, &want)) &&
        (n <= 0 || (size_t)n != want.len || memcmp(enc, want.data, want.len) != 0))
        abort();
    OPENSSL_free(enc);
    X509_PUBKEY_free(k);
    mr_buf_free(&want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    X509 *x = NULL;
    STACK_OF(X509) *chain = NULL;
    mr_slice spki = {0};
    MR_IGNORE(mr_x509_der_spki(MR_SLICE(data, size), &spki)); /* any bytes: no overrun */
    if (mr_ok(mr_x509_from_der(MR_SLICE(data, size), &x))) {
        check_der_spki(x, data, size);
        use_cert(x);
        X509_free(x);
    }
    if (mr_ok(mr_x509_chain_from_pem(MR_SLICE(data, size), &chain)))
        sk_X509_pop_free(chain, X509_free);
    mr_error_clear();
    return 0;
}
