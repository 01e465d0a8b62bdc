/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SetManifest checks that need X.509: user certificates (§8.1, Go GenerateUsers) and recovery
 * public keys (§6.8, PEM "PUBLIC KEY" with an RSA key). The other file of the module that
 * parses DER with OpenSSL is decode_cert.c (a Secret's base64 DER certificate).
 */
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/codec.h"
#include "manifest/manifest_int.h"

/* The first PEM block of text (text before it is skipped, as Go's pem.Decode does). *found
 * is false when there is none or when it is malformed (unterminated, bad base64), where Go
 * would go on to look for a later block. Fails only when out of memory. */
static MR_RESULT first_pem_block(const mr_mstr *text, mr_pem_block *blk, bool *found)
{
    mr_cursor c;
    mr_cursor_init(&c, text->ptr, text->len);
    *found = false;
    if (mr_ok(mr_pem_next(&c, blk, found)))
        return MR_SUCCESS;
    *found = false;
    MR_ENSURE(mr_error_get()->cat != MR_ERR_INTERNAL, MR_ERR_INTERNAL, "out of memory");
    mr_error_clear();
    return MR_SUCCESS;
}

MR_RESULT mr_manifest_user_cert_der(const mr_manifest_user *u, mr_buf *out)
{
    mr_result res = MR_FAILURE;
    X509 *x = NULL;
    mr_pem_block blk = {0};
    mr_buf_init(&blk.der, 0, 0);
    bool found = false;
    MR_GUARD_OUT(first_pem_block(&u->certificate, &blk, &found));
    MR_ENSURE_OUT(found, MR_ERR_USAGE, "received invalid certificate for user %s",
                  u->name.ptr ? u->name.ptr : "");
    const unsigned char *p = blk.der.data;
    x = blk.der.len ? d2i_X509(NULL, &p, (long)blk.der.len) : NULL;
    MR_ENSURE_OUT(x != NULL, MR_ERR_USAGE, "x509: malformed certificate");
    MR_ENSURE_OUT(p == blk.der.data + blk.der.len, MR_ERR_USAGE, "x509: trailing data");
    if (out)
        MR_GUARD_OUT(mr_buf_set(out, blk.der.data, blk.der.len));
    res = MR_SUCCESS;
out:
    X509_free(x);
    mr_buf_free(&blk.der);
    return res;
}

MR_RESULT mr_manifest_check_user_certs(const mr_manifest *m)
{
    MR_ENSURE_REF(m);
    for (size_t i = 0; i < m->users.count; i++)
        MR_GUARD(mr_manifest_user_cert_der(&m->users.items[i], NULL));
    return MR_SUCCESS;
}

MR_RESULT mr_manifest_recovery_key_der(const mr_manifest_recovery_key *k, mr_buf *out)
{
    mr_result res = MR_FAILURE;
    EVP_PKEY *key = NULL;
    mr_pem_block blk = {0};
    mr_buf_init(&blk.der, 0, 0);
    bool found = false;
    MR_GUARD_OUT(first_pem_block(&k->pem, &blk, &found));
    MR_ENSURE_OUT(found && strcmp(blk.label, "PUBLIC KEY") == 0, MR_ERR_USAGE,
                  "given PEM data is not a public key");
    const unsigned char *p = blk.der.data;
    key = blk.der.len ? d2i_PUBKEY(NULL, &p, (long)blk.der.len) : NULL;
    MR_ENSURE_OUT(key != NULL, MR_ERR_USAGE, "x509: failed to parse public key");
    MR_ENSURE_OUT(p == blk.der.data + blk.der.len, MR_ERR_USAGE,
                  "x509: trailing data after ASN.1 of public-key");
    MR_ENSURE_OUT(EVP_PKEY_base_id(key) == EVP_PKEY_RSA, MR_ERR_USAGE,
                  "unsupported type of public key");
    if (out)
        MR_GUARD_OUT(mr_buf_set(out, blk.der.data, blk.der.len));
    res = MR_SUCCESS;
out:
    EVP_PKEY_free(key);
    mr_buf_free(&blk.der);
    return res;
}

MR_RESULT mr_manifest_check_recovery_keys(const mr_manifest *m)
{
    MR_ENSURE_REF(m);
    for (size_t i = 0; i < m->recovery_keys.count; i++)
        MR_GUARD(mr_manifest_recovery_key_der(&m->recovery_keys.items[i], NULL));
    return MR_SUCCESS;
}
