/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests: random, hashes, AES-256-GCM, HKDF, RSA-OAEP/PKCS#1, XOR/Shamir shares. */
#include "helpers.h"

#include <openssl/crypto.h>

#include "common/alloc.h"
#include "crypto/aead.h"
#include "crypto/hash.h"
#include "crypto/kdf.h"
#include "crypto/key.h"
#include "crypto/rand.h"
#include "crypto/rsa.h"
#include "crypto/share.h"

/* ---- rand / hash ---- */

static void test_random(void **state)
{
    (void)state;
    uint8_t a[32] = {0}, b[32] = {0}, zero[32] = {0};
    MR_ASSERT_OK(mr_crypto_random(a, sizeof(a)));
    MR_ASSERT_OK(mr_crypto_random(b, sizeof(b)));
    assert_memory_not_equal(a, b, sizeof(a));
    assert_memory_not_equal(a, zero, sizeof(a));
    MR_ASSERT_OK(mr_crypto_random_key(a, sizeof(a)));
    assert_memory_not_equal(a, b, sizeof(a));
    assert_memory_not_equal(a, zero, sizeof(a));
    MR_ASSERT_OK(mr_crypto_random(NULL, 0));
    MR_ASSERT_OK(mr_crypto_random_key(NULL, 0));
}

static void test_sha(void **state)
{
    (void)state;
    uint8_t d256[MR_SHA256_LEN];
    MR_ASSERT_OK(mr_sha256("abc", 3, d256));
    assert_hex_equal(d256, sizeof(d256),
                     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    mr_slice parts[] = {MR_SLICE("a", 1), MR_SLICE("", 0), MR_SLICE("bc", 2)};
    uint8_t dv[MR_SHA256_LEN];
    MR_ASSERT_OK(mr_sha256_v(parts, 3, dv));
    assert_memory_equal(dv, d256, sizeof(dv));
    MR_ASSERT_OK(mr_sha256("", 0, d256));
    assert_hex_equal(d256, sizeof(d256),
                     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    MR_ASSERT_OK(mr_sha256(NULL, 0, dv));
    assert_memory_equal(dv, d256, sizeof(dv));
    MR_ASSERT_OK(mr_sha256_v(NULL, 0, dv));
    assert_memory_equal(dv, d256, sizeof(dv));
}

/* RFC 4231 test cases 1, 2 and 6 (key longer than the block size); one context reused. */
static void test_hmac_sha256(void **state)
{
    (void)state;
    uint8_t mac[MR_SHA256_LEN], k_case1[20], k_case6[131];
    memset(k_case1, 0x0b, sizeof(k_case1));
    memset(k_case6, 0xaa, sizeof(k_case6));
    mr_hmac_sha256 *h = NULL;
    MR_ASSERT_OK(mr_hmac_sha256_new(MR_SLICE(k_case1, sizeof(k_case1)), &h));
    for (int round = 0; round < 2; round++) {
        MR_ASSERT_OK(mr_hmac_sha256_mac(h, MR_SLICE_STR("Hi There"), mac));
        assert_hex_equal(mac, sizeof(mac),
                         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    }
    mr_hmac_sha256_free(h);
    MR_ASSERT_OK(mr_hmac_sha256_new(MR_SLICE_STR("Jefe"), &h));
    MR_ASSERT_OK(mr_hmac_sha256_mac(h, MR_SLICE_STR("what do ya want for nothing?"), mac));
    assert_hex_equal(mac, sizeof(mac),
                     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    mr_hmac_sha256_free(h);
    MR_ASSERT_OK(mr_hmac_sha256_new(MR_SLICE(k_case6, sizeof(k_case6)), &h));
    MR_ASSERT_OK(mr_hmac_sha256_mac(
        h, MR_SLICE_STR("Test Using Larger Than Block-Size Key - Hash Key First"), mac));
    assert_hex_equal(mac, sizeof(mac),
                     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    mr_hmac_sha256_free(h);
    mr_hmac_sha256_free(NULL);
    /* allocation failure */
    h = NULL;
    mr_alloc_fail_after(0);
    MR_ASSERT_FAIL(mr_hmac_sha256_new(MR_SLICE_STR("Jefe"), &h), MR_ERR_INTERNAL,
                   "out of memory");
    mr_alloc_fail_reset();
    assert_null(h);
}

/* ---- AES-256-GCM ---- */

typedef struct gcm_vector {
    const char *key, *iv, *pt, *aad, *ct, *tag;
} gcm_vector;

/* McGrew & Viega, "The Galois/Counter Mode of Operation", test cases 13-16 (AES-256). */
static const gcm_vector gcm_vectors[] = {
    {"0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"},
    {"0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "00000000000000000000000000000000", "",
     "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919"},
    {"feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
     "cafebabefacedbaddecaf888",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
     "",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad",
     "b094dac5d93471bdec1a502270e3cc6c"},
    {"feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
     "cafebabefacedbaddecaf888",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
     "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
     "76fc6ece0f4e1768cddf8853bb2d551b"},
};

static void check_gcm_vector(const gcm_vector *v)
{
    mr_buf key = hexbuf(v->key), iv = hexbuf(v->iv), pt = hexbuf(v->pt), aad = hexbuf(v->aad);
    uint8_t ct[64], back[64], tag[MR_AEAD_TAG_LEN];
    assert_true(pt.len <= sizeof(ct));
    MR_ASSERT_OK(mr_aead_encrypt(mr_buf_slice(&key), iv.data, mr_buf_slice(&aad),
                                 mr_buf_slice(&pt), ct, tag));
    assert_hex_equal(ct, pt.len, v->ct);
    assert_hex_equal(tag, sizeof(tag), v->tag);
    MR_ASSERT_OK(mr_aead_decrypt(mr_buf_slice(&key), iv.data, mr_buf_slice(&aad),
                                 MR_SLICE(ct, pt.len), tag, back));
    if (pt.len > 0)
        assert_memory_equal(back, pt.data, pt.len);
    /* in place */
    if (pt.len > 0) {
        memcpy(back, pt.data, pt.len);
        MR_ASSERT_OK(mr_aead_encrypt(mr_buf_slice(&key), iv.data, mr_buf_slice(&aad),
                                     MR_SLICE(back, pt.len), back, tag));
        assert_hex_equal(back, pt.len, v->ct);
        MR_ASSERT_OK(mr_aead_decrypt(mr_buf_slice(&key), iv.data, mr_buf_slice(&aad),
                                     MR_SLICE(back, pt.len), tag, back));
        assert_memory_equal(back, pt.data, pt.len);
    }
    mr_buf_free(&key);
    mr_buf_free(&iv);
    mr_buf_free(&pt);
    mr_buf_free(&aad);
}

static void test_aead_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < MR_ARRAY_LEN(gcm_vectors); i++)
        check_gcm_vector(&gcm_vectors[i]);
}

/* nonce || ciphertext || tag, as the store's and the sealed key's file formats lay it out */
static void test_aead_tamper(void **state)
{
    (void)state;
    uint8_t key[32], sealed[MR_AEAD_NONCE_LEN + 14 + MR_AEAD_TAG_LEN], out[14];
    static const uint8_t zero[14];
    uint8_t *nonce = sealed, *ct = sealed + MR_AEAD_NONCE_LEN, *tag = ct + 14;
    MR_ASSERT_OK(mr_crypto_random(key, sizeof(key)));
    MR_ASSERT_OK(mr_crypto_random(nonce, MR_AEAD_NONCE_LEN));
    mr_slice k = MR_SLICE(key, sizeof(key)), aad = MR_SLICE_STR("header");
    MR_ASSERT_OK(mr_aead_encrypt(k, nonce, aad, MR_SLICE_STR("attack at dawn"), ct, tag));
    MR_ASSERT_OK(mr_aead_decrypt(k, nonce, aad, MR_SLICE(ct, 14), tag, out));
    assert_memory_equal(out, "attack at dawn", 14);
    /* every single bit flip anywhere (nonce, ciphertext, tag) is detected, and the output
     * is wiped */
    for (size_t bit = 0; bit < sizeof(sealed) * 8; bit++) {
        sealed[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        memcpy(out, "attack at dawn", 14);
        MR_ASSERT_FAIL(mr_aead_decrypt(k, nonce, aad, MR_SLICE(ct, 14), tag, out), MR_ERR_AUTH,
                       "message authentication failed");
        assert_memory_equal(out, zero, sizeof(out));
        sealed[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    MR_ASSERT_FAIL(mr_aead_decrypt(k, nonce, MR_SLICE_STR("Header"), MR_SLICE(ct, 14), tag, out),
                   MR_ERR_AUTH, "authentication failed");
    MR_ASSERT_FAIL(mr_aead_decrypt(k, nonce, MR_SLICE(NULL, 0), MR_SLICE(ct, 14), tag, out),
                   MR_ERR_AUTH, "authentication failed");
    key[0] ^= 1;
    MR_ASSERT_FAIL(mr_aead_decrypt(k, nonce, aad, MR_SLICE(ct, 14), tag, out), MR_ERR_AUTH,
                   "authentication failed");
}

static void test_aead_bad_input(void **state)
{
    (void)state;
    uint8_t key[32] = {0}, nonce[MR_AEAD_NONCE_LEN] = {0}, tag[MR_AEAD_TAG_LEN] = {0}, out[4];
    MR_ASSERT_FAIL(mr_aead_encrypt(MR_SLICE(key, 16), nonce, MR_SLICE(NULL, 0), MR_SLICE("x", 1),
                                   out, tag),
                   MR_ERR_USAGE, "32-byte key");
    MR_ASSERT_FAIL(mr_aead_decrypt(MR_SLICE(key, 31), nonce, MR_SLICE(NULL, 0), MR_SLICE("x", 1),
                                   tag, out),
                   MR_ERR_USAGE, "32-byte key");
    MR_ASSERT_FAIL(mr_aead_encrypt(MR_SLICE(key, 32), nonce, MR_SLICE(NULL, 0),
                                   MR_SLICE(key, MR_AEAD_MAX_INPUT + 1), out, tag),
                   MR_ERR_USAGE, "too large");
    MR_ASSERT_FAIL(mr_aead_decrypt(MR_SLICE(key, 32), nonce, MR_SLICE(key, MR_AEAD_MAX_INPUT + 1),
                                   MR_SLICE(NULL, 0), tag, out),
                   MR_ERR_USAGE, "too large");
    /* empty plaintext and AAD: only the tag */
    MR_ASSERT_OK(mr_aead_encrypt(MR_SLICE(key, 32), nonce, MR_SLICE(NULL, 0), MR_SLICE(NULL, 0),
                                 out, tag));
    assert_hex_equal(tag, sizeof(tag), "530f8afbc74536b9a963b4f1c4cb738b");
    MR_ASSERT_OK(mr_aead_decrypt(MR_SLICE(key, 32), nonce, MR_SLICE(NULL, 0), MR_SLICE(NULL, 0),
                                 tag, out));
}

/* ---- HKDF ---- */

static void check_hkdf(mr_buf ikm, mr_buf salt, mr_buf info, size_t len, const char *okm)
{
    mr_buf out = secret_buf();
    uint8_t raw[128];
    MR_ASSERT_OK(mr_hkdf_sha256(mr_buf_slice(&ikm), mr_buf_slice(&salt), mr_buf_slice(&info),
                                len, &out));
    assert_hex_equal(out.data, out.len, okm);
    /* the caller-memory form gives the same bytes */
    assert_true(len <= sizeof(raw));
    MR_ASSERT_OK(mr_hkdf_sha256_raw(mr_buf_slice(&ikm), mr_buf_slice(&salt), mr_buf_slice(&info),
                                    raw, len));
    assert_hex_equal(raw, len, okm);
    mr_buf_free(&out);
    mr_buf_free(&ikm);
    mr_buf_free(&salt);
    mr_buf_free(&info);
}

static mr_buf range_buf(unsigned from, unsigned to)
{
    mr_buf b = plain_buf();
    for (unsigned i = from; i < to; i++)
        MR_ASSERT_OK(mr_buf_append_u8(&b, (uint8_t)i));
    return b;
}

static void test_hkdf_rfc5869(void **state)
{
    (void)state;
    /* RFC 5869 A.1 */
    check_hkdf(hexbuf("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"), range_buf(0, 13),
               range_buf(0xf0, 0xfa), 42,
               "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
               "34007208d5b887185865");
    /* A.2 */
    check_hkdf(range_buf(0, 0x50), range_buf(0x60, 0xb0), range_buf(0xb0, 0x100), 82,
               "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
               "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
               "cc30c58179ec3e87c14c01d5c1f3434f1d87");
    /* A.3: empty salt and info */
    check_hkdf(hexbuf("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"), plain_buf(), plain_buf(),
               42,
               "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
               "9d201395faa4b61a96c8");
}

static void test_hkdf_limits(void **state)
{
    (void)state;
    mr_buf out = secret_buf();
    mr_slice ikm = MR_SLICE_STR("ikm"), none = MR_SLICE(NULL, 0);
    MR_ASSERT_FAIL(mr_hkdf_sha256(ikm, none, none, 0, &out), MR_ERR_USAGE, "out of range");
    MR_ASSERT_FAIL(mr_hkdf_sha256(ikm, none, none, 8161, &out), MR_ERR_USAGE, "out of range");
    MR_ASSERT_OK(mr_hkdf_sha256(ikm, none, none, 8160, &out));
    assert_int_equal(out.len, 8160);
    uint8_t raw[4] = {1, 2, 3, 4};
    MR_ASSERT_FAIL(mr_hkdf_sha256_raw(ikm, none, none, raw, 0), MR_ERR_USAGE, "out of range");
    MR_ASSERT_FAIL(mr_hkdf_sha256_raw(ikm, none, none, raw, 8161), MR_ERR_USAGE,
                   "out of range");
    /* deterministic; salt changes the output */
    mr_buf a = secret_buf(), b = secret_buf();
    MR_ASSERT_OK(mr_hkdf_sha256(ikm, MR_SLICE_STR("uuid-name"), none, 32, &a));
    MR_ASSERT_OK(mr_hkdf_sha256(ikm, MR_SLICE_STR("uuid-name"), none, 32, &b));
    assert_memory_equal(a.data, b.data, 32);
    mr_buf_reset(&b);
    MR_ASSERT_OK(mr_hkdf_sha256(ikm, MR_SLICE_STR("uuid-nam3"), none, 32, &b));
    assert_memory_not_equal(a.data, b.data, 32);
    mr_buf_free(&a);
    mr_buf_free(&b);
    mr_buf_free(&out);
}

/* ---- RSA ---- */

static EVP_PKEY *rsa_a, *rsa_b, *ec_key;

static int rsa_setup(void **state)
{
    (void)state;
    if (!mr_ok(mr_key_generate(MR_KEY_RSA, 2048, &rsa_a)) ||
        !mr_ok(mr_key_generate(MR_KEY_RSA, 2048, &rsa_b)) ||
        !mr_ok(mr_key_generate(MR_KEY_EC_P256, 0, &ec_key)))
        return -1;
    return 0;
}

static int rsa_teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(rsa_a);
    EVP_PKEY_free(rsa_b);
    EVP_PKEY_free(ec_key);
    return 0;
}

static void test_rsa_oaep(void **state)
{
    (void)state;
    uint8_t dek[32];
    MR_ASSERT_OK(mr_crypto_random(dek, sizeof(dek)));
    mr_buf ct = plain_buf(), pt = secret_buf(), plain = plain_buf();
    MR_ASSERT_OK(mr_rsa_oaep_encrypt(rsa_a, MR_SLICE(dek, 32), &ct));
    assert_int_equal(ct.len, 256);
    MR_ASSERT_OK(mr_rsa_oaep_decrypt(rsa_a, mr_buf_slice(&ct), &pt));
    assert_int_equal(pt.len, 32);
    assert_memory_equal(pt.data, dek, 32);
    mr_buf_reset(&pt);
    MR_ASSERT_FAIL(mr_rsa_oaep_decrypt(rsa_b, mr_buf_slice(&ct), &pt), MR_ERR_AUTH,
                   "decryption failed");
    assert_int_equal(pt.len, 0);
    ct.data[10] ^= 0x40;
    MR_ASSERT_FAIL(mr_rsa_oaep_decrypt(rsa_a, mr_buf_slice(&ct), &pt), MR_ERR_AUTH,
                   "decryption failed");
    MR_ASSERT_FAIL(mr_rsa_oaep_decrypt(rsa_a, mr_buf_slice(&ct), &plain), MR_ERR_INTERNAL,
                   "secret buffer");
    MR_ASSERT_FAIL(mr_rsa_oaep_encrypt(ec_key, MR_SLICE(dek, 32), &ct), MR_ERR_USAGE,
                   "wrong key type");
    /* too long for OAEP-SHA256 with a 2048-bit key (max 190 bytes) */
    uint8_t big[191] = {0};
    MR_ASSERT_FAIL(mr_rsa_oaep_encrypt(rsa_a, MR_SLICE(big, sizeof(big)), &ct), MR_ERR_USAGE,
                   "encryption failed");
    mr_buf_free(&ct);
    mr_buf_free(&pt);
}

static void test_rsa_pkcs1(void **state)
{
    (void)state;
    mr_buf sig = plain_buf();
    mr_slice msg = MR_SLICE_STR("recovery secret");
    MR_ASSERT_OK(mr_rsa_sign_pkcs1_sha256(rsa_a, msg, &sig));
    assert_int_equal(sig.len, 256);
    MR_ASSERT_OK(mr_rsa_verify_pkcs1_sha256(rsa_a, msg, mr_buf_slice(&sig)));
    MR_ASSERT_FAIL(mr_rsa_verify_pkcs1_sha256(rsa_b, msg, mr_buf_slice(&sig)), MR_ERR_AUTH,
                   "signature verification failed");
    MR_ASSERT_FAIL(mr_rsa_verify_pkcs1_sha256(rsa_a, MR_SLICE_STR("other"),
                                              mr_buf_slice(&sig)),
                   MR_ERR_AUTH, "signature verification failed");
    MR_ASSERT_FAIL(mr_rsa_sign_pkcs1_sha256(ec_key, msg, &sig), MR_ERR_USAGE, "wrong key type");
    mr_buf_free(&sig);
}

/* ---- shares ---- */

static void test_gf256(void **state)
{
    (void)state;
    assert_int_equal(mr_gf256_mul(0x53, 0xCA), 0x01); /* FIPS-197 §4.4 inverse pair */
    assert_int_equal(mr_gf256_mul(0x57, 0x83), 0xC1); /* FIPS-197 §4.2 example */
    assert_int_equal(mr_gf256_mul(0x57, 0x13), 0xFE);
    assert_int_equal(mr_gf256_inv(0), 0);
    for (unsigned a = 1; a < 256; a++) {
        assert_int_equal(mr_gf256_mul((uint8_t)a, mr_gf256_inv((uint8_t)a)), 1);
        assert_int_equal(mr_gf256_mul((uint8_t)a, 1), a);
        assert_int_equal(mr_gf256_mul((uint8_t)a, 0), 0);
    }
}

static void test_xor_shares(void **state)
{
    (void)state;
    uint8_t secret[32];
    MR_ASSERT_OK(mr_crypto_random(secret, sizeof(secret)));
    for (unsigned n = 1; n <= 5; n++) {
        mr_buf shares = secret_buf(), out = secret_buf();
        MR_ASSERT_OK(mr_xor_split(MR_SLICE(secret, 32), n, &shares));
        assert_int_equal(shares.len, 32 * n);
        mr_slice parts[5];
        for (unsigned i = 0; i < n; i++)
            parts[i] = MR_SLICE(shares.data + 32 * i, 32);
        MR_ASSERT_OK(mr_xor_combine(parts, n, &out));
        assert_memory_equal(out.data, secret, 32);
        if (n > 1) {
            mr_buf_reset(&out);
            MR_ASSERT_OK(mr_xor_combine(parts, n - 1, &out));
            assert_memory_not_equal(out.data, secret, 32);
        }
        mr_buf_free(&shares);
        mr_buf_free(&out);
    }
    mr_buf shares = secret_buf(), plain = plain_buf();
    MR_ASSERT_FAIL(mr_xor_split(MR_SLICE(secret, 32), 0, &shares), MR_ERR_USAGE, "out of range");
    MR_ASSERT_FAIL(mr_xor_split(MR_SLICE(secret, 0), 2, &shares), MR_ERR_USAGE, "out of range");
    MR_ASSERT_FAIL(mr_xor_split(MR_SLICE(secret, 32), 2, &plain), MR_ERR_INTERNAL,
                   "secret buffer");
    mr_slice uneven[] = {MR_SLICE(secret, 32), MR_SLICE(secret, 16)};
    MR_ASSERT_FAIL(mr_xor_combine(uneven, 2, &shares), MR_ERR_USAGE, "different lengths");
}

/* Combines the shares selected by bit mask and compares with the secret. */
static void combine_subset(const mr_buf *shares, size_t share_len, unsigned n, unsigned mask,
                           const uint8_t *secret, bool expect_match)
{
    mr_slice parts[8];
    size_t count = 0;
    for (unsigned i = 0; i < n; i++)
        if (mask & (1u << i))
            parts[count++] = MR_SLICE(shares->data + share_len * i, share_len);
    mr_buf out = secret_buf();
    MR_ASSERT_OK(mr_shamir_combine(parts, count, &out));
    assert_int_equal(out.len, share_len - 1);
    if (expect_match)
        assert_memory_equal(out.data, secret, share_len - 1);
    else
        assert_memory_not_equal(out.data, secret, share_len - 1);
    mr_buf_free(&out);
}

static void check_shamir_all_subsets(unsigned t, unsigned n)
{
    uint8_t secret[32];
    MR_ASSERT_OK(mr_crypto_random(secret, sizeof(secret)));
    mr_buf shares = secret_buf();
    MR_ASSERT_OK(mr_shamir_split(MR_SLICE(secret, 32), t, n, &shares));
    assert_int_equal(shares.len, 33 * n);
    /* x coordinates (last byte) are distinct and non-zero */
    for (unsigned i = 0; i < n; i++) {
        assert_int_not_equal(shares.data[33 * i + 32], 0);
        for (unsigned j = 0; j < i; j++)
            assert_int_not_equal(shares.data[33 * i + 32], shares.data[33 * j + 32]);
    }
    for (unsigned mask = 1; mask < (1u << n); mask++) {
        unsigned k = (unsigned)__builtin_popcount(mask);
        if (k >= t)
            combine_subset(&shares, 33, n, mask, secret, true);
        else if (k >= 2)
            combine_subset(&shares, 33, n, mask, secret, false);
    }
    mr_buf_free(&shares);
}

static void test_shamir_subsets(void **state)
{
    (void)state;
    check_shamir_all_subsets(2, 3);
    check_shamir_all_subsets(3, 5);
    check_shamir_all_subsets(2, 2);
    check_shamir_all_subsets(5, 5);
    check_shamir_all_subsets(2, 6);
}

/* Hand-computed shares pin the layout (y bytes, then x) and the field (0x11B). */
static void test_shamir_known_answer(void **state)
{
    (void)state;
    /* f(x) = 0x42 + 0x01 x: f(1) = 0x43, f(2) = 0x40 */
    static const uint8_t a1[] = {0x43, 0x01}, a2[] = {0x40, 0x02};
    /* f(x) = 0x42 + 0x80 x: 0x80*2 = 0x1B (reduced), 0x80*3 = 0x9B */
    static const uint8_t b2[] = {0x42 ^ 0x1B, 0x02}, b3[] = {0x42 ^ 0x9B, 0x03};
    mr_slice a[] = {MR_SLICE(a2, 2), MR_SLICE(a1, 2)}, b[] = {MR_SLICE(b2, 2), MR_SLICE(b3, 2)};
    mr_buf out = secret_buf();
    MR_ASSERT_OK(mr_shamir_combine(a, 2, &out));
    MR_ASSERT_OK(mr_shamir_combine(b, 2, &out));
    assert_int_equal(out.len, 2);
    assert_int_equal(out.data[0], 0x42);
    assert_int_equal(out.data[1], 0x42);
    mr_buf_free(&out);
}

static void test_shamir_edges(void **state)
{
    (void)state;
    uint8_t secret[16] = "0123456789abcde";
    mr_buf shares = secret_buf(), out = secret_buf(), plain = plain_buf();
    /* t = 1: every share alone is the secret, and n up to 255 */
    MR_ASSERT_OK(mr_shamir_split(MR_SLICE(secret, 16), 1, 255, &shares));
    assert_int_equal(shares.len, 17 * 255);
    assert_memory_equal(shares.data + 17 * 200, secret, 16);
    mr_buf_reset(&shares);
    MR_ASSERT_FAIL(mr_shamir_split(MR_SLICE(secret, 16), 0, 3, &shares), MR_ERR_USAGE,
                   "threshold");
    MR_ASSERT_FAIL(mr_shamir_split(MR_SLICE(secret, 16), 4, 3, &shares), MR_ERR_USAGE,
                   "threshold");
    MR_ASSERT_FAIL(mr_shamir_split(MR_SLICE(secret, 16), 2, 256, &shares), MR_ERR_USAGE,
                   "threshold");
    MR_ASSERT_FAIL(mr_shamir_split(MR_SLICE(secret, 16), 2, 3, &plain), MR_ERR_INTERNAL,
                   "secret buffer");
    MR_ASSERT_OK(mr_shamir_split(MR_SLICE(secret, 16), 2, 3, &shares));
    mr_slice dup[] = {MR_SLICE(shares.data, 17), MR_SLICE(shares.data, 17)};
    MR_ASSERT_FAIL(mr_shamir_combine(dup, 2, &out), MR_ERR_USAGE, "duplicate share");
    uint8_t zero_x[17];
    memcpy(zero_x, shares.data, 17);
    zero_x[16] = 0;
    mr_slice zx[] = {MR_SLICE(zero_x, 17), MR_SLICE(shares.data + 17, 17)};
    MR_ASSERT_FAIL(mr_shamir_combine(zx, 2, &out), MR_ERR_USAGE, "x coordinate 0");
    mr_slice uneven[] = {MR_SLICE(shares.data, 17), MR_SLICE(shares.data + 17, 16)};
    MR_ASSERT_FAIL(mr_shamir_combine(uneven, 2, &out), MR_ERR_USAGE, "different lengths");
    MR_ASSERT_FAIL(mr_shamir_combine(uneven, 0, &out), MR_ERR_USAGE, "out of range");
    mr_slice tiny[] = {MR_SLICE(shares.data, 1)};
    MR_ASSERT_FAIL(mr_shamir_combine(tiny, 1, &out), MR_ERR_USAGE, "share length");
    /* allocation failure while growing the output */
    mr_buf fresh = secret_buf();
    mr_alloc_fail_after(0);
    MR_ASSERT_FAIL(mr_shamir_split(MR_SLICE(secret, 16), 2, 3, &fresh), MR_ERR_INTERNAL,
                   "out of memory");
    mr_alloc_fail_reset();
    assert_int_equal(fresh.len, 0);
    mr_buf_free(&shares);
    mr_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_sha),
        cmocka_unit_test(test_hmac_sha256),
        cmocka_unit_test(test_aead_vectors),
        cmocka_unit_test(test_aead_tamper),
        cmocka_unit_test(test_aead_bad_input),
        cmocka_unit_test(test_hkdf_rfc5869),
        cmocka_unit_test(test_hkdf_limits),
        cmocka_unit_test(test_gf256),
        cmocka_unit_test(test_xor_shares),
        cmocka_unit_test(test_shamir_subsets),
        cmocka_unit_test(test_shamir_known_answer),
        cmocka_unit_test(test_shamir_edges),
    };
    const struct CMUnitTest rsa_tests[] = {
        cmocka_unit_test(test_rsa_oaep),
        cmocka_unit_test(test_rsa_pkcs1),
    };
    int failed = cmocka_run_group_tests_name("crypto", tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("crypto-rsa", rsa_tests, rsa_setup, rsa_teardown);
    return failed;
}
