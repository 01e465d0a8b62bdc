/* SPDX-License-Identifier: Apache-2.0 */
/* Target: key decoding (crypto/key_codec.c) in every DER format and as PEM, plus the raw
 * ECDSA signature and P-256 point helpers (crypto/p256.c) used on quote bytes. The first input
 * byte selects the format; a decoded key is re-encoded and used once. */
#include <stdint.h>
#include <stdlib.h>

#include "crypto/key.h"
#include "crypto/p256.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const mr_key_format formats[] = {MR_KEYFMT_PKCS8, MR_KEYFMT_SEC1, MR_KEYFMT_PKCS1,
                                        MR_KEYFMT_PKIX};

static void use_key(EVP_PKEY *key, mr_key_format fmt, bool priv)
{
    mr_buf enc, sig;
    mr_buf_init(&enc, 0, MR_BUF_SECRET);
    mr_buf_init(&sig, 0, 0);
    if (priv) {
        /* a decoded key must encode again in its own format */
        if (!mr_ok(mr_key_private_to_der(key, fmt, &enc)))
            abort();
        if (mr_key_type_of(key) != MR_KEY_RSA) /* keep RSA signing out of the hot loop */
            MR_IGNORE(mr_key_sign(key, MR_SLICE("m", 1), &sig));
    } else if (!mr_ok(mr_key_public_to_der(key, fmt, &enc))) {
        abort();
    }
    MR_IGNORE(mr_key_verify(key, MR_SLICE("m", 1), MR_SLICE(enc.data, enc.len)));
    mr_buf_free(&enc);
    mr_buf_free(&sig);
}

static void raw_helpers(const uint8_t *p, size_t n)
{
    mr_buf out;
    EVP_PKEY *key = NULL;
    mr_buf_init(&out, 0, 0);
    MR_IGNORE(mr_ecdsa_sig_raw_to_der(MR_SLICE(p, n), &out));
    MR_IGNORE(mr_ecdsa_sig_der_to_raw(MR_SLICE(p, n), 32, &out));
    if (mr_ok(mr_key_p256_from_raw(MR_SLICE(p, n < 64 ? n : 64), &key)))
        EVP_PKEY_free(key);
    mr_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    mr_key_format fmt = formats[data[0] % 4];
    bool priv = (data[0] & 4) == 0;
    mr_slice in = MR_SLICE(data + 1, size - 1);
    EVP_PKEY *key = NULL;
    if (mr_ok(priv ? mr_key_private_from_der(in, fmt, &key) : mr_key_public_from_der(in, fmt, &key))) {
        use_key(key, fmt, priv);
        EVP_PKEY_free(key);
        key = NULL;
    }
    if (mr_ok(priv ? mr_key_private_from_pem(in, &key) : mr_key_public_from_pem(in, &key)))
        EVP_PKEY_free(key);
    raw_helpers(data + 1, size - 1);
    mr_error_clear();
    return 0;
}
