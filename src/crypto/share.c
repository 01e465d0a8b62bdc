/* SPDX-License-Identifier: Apache-2.0 */
#include "crypto/share.h"

#include <openssl/crypto.h>
#include <string.h>

#include "crypto/rand.h"

static MR_RESULT need_secret_buf(const mr_buf *b)
{
    MR_ENSURE((b->flags & MR_BUF_SECRET) != 0, MR_ERR_INTERNAL,
              "secret shares need a secret buffer");
    return MR_SUCCESS;
}

static MR_RESULT check_secret(mr_slice secret)
{
    MR_ENSURE(secret.len > 0 && secret.len <= MR_SHARE_SECRET_MAX, MR_ERR_USAGE,
              "secret length %zu out of range (1..%d)", secret.len, MR_SHARE_SECRET_MAX);
    return MR_SUCCESS;
}

/* ---- XOR ---- */

MR_RESULT mr_xor_split(mr_slice secret, unsigned n, mr_buf *shares)
{
    size_t start = shares->len;
    size_t len = secret.len;
    MR_GUARD(need_secret_buf(shares));
    MR_GUARD(check_secret(secret));
    MR_ENSURE(n >= 1 && n <= MR_SHARE_MAX, MR_ERR_USAGE, "number of shares %u out of range", n);
    MR_GUARD(mr_buf_reserve(shares, (size_t)n * len));
    uint8_t *base = shares->data + start;
    uint8_t *last = base + (size_t)(n - 1) * len;
    if (!mr_ok(mr_crypto_random(base, (size_t)(n - 1) * len))) {
        OPENSSL_cleanse(base, (size_t)n * len);
        return MR_FAILURE;
    }
    memcpy(last, secret.ptr, len);
    for (unsigned i = 0; i + 1 < n; i++)
        for (size_t k = 0; k < len; k++)
            last[k] ^= base[(size_t)i * len + k];
    shares->len = start + (size_t)n * len;
    return MR_SUCCESS;
}

/* Checks count and that all shares are `want` bytes long (want = first share's length). */
static MR_RESULT check_shares(const mr_slice *shares, size_t count, size_t min_len)
{
    MR_ENSURE(count >= 1 && count <= MR_SHARE_MAX, MR_ERR_USAGE,
              "number of shares %zu out of range", count);
    size_t len = shares[0].len;
    MR_ENSURE(len >= min_len && len <= MR_SHARE_SECRET_MAX + 1, MR_ERR_USAGE,
              "invalid share length %zu", len);
    for (size_t i = 1; i < count; i++)
        MR_ENSURE(shares[i].len == len, MR_ERR_USAGE, "shares have different lengths");
    return MR_SUCCESS;
}

MR_RESULT mr_xor_combine(const mr_slice *shares, size_t count, mr_buf *secret)
{
    MR_GUARD(need_secret_buf(secret));
    MR_GUARD(check_shares(shares, count, 1));
    size_t len = shares[0].len;
    MR_GUARD(mr_buf_reserve(secret, len));
    uint8_t *dst = secret->data + secret->len;
    memset(dst, 0, len);
    for (size_t i = 0; i < count; i++)
        for (size_t k = 0; k < len; k++)
            dst[k] ^= shares[i].ptr[k];
    secret->len += len;
    return MR_SUCCESS;
}

/* ---- GF(2^8) ---- */

uint8_t mr_gf256_mul(uint8_t a, uint8_t b)
{
    unsigned r = 0, x = a, y = b;
    for (int i = 0; i < 8; i++) {
        r ^= x & (0u - (y & 1u));                 /* add x when the low bit of y is set */
        unsigned carry = 0u - ((x >> 7) & 1u);    /* all ones when x overflows */
        x = ((x << 1) ^ (carry & 0x11Bu)) & 0xFFu;
        y >>= 1;
    }
    return (uint8_t)r;
}

uint8_t mr_gf256_inv(uint8_t a)
{
    /* a^254 = a^-1 by a fixed square-and-multiply chain (254 = 0b11111110). */
    uint8_t r = 1, p = a;
    for (int i = 1; i < 8; i++) {
        p = mr_gf256_mul(p, p); /* p = a^(2^i) */
        r = mr_gf256_mul(r, p);
    }
    return r;
}

/* ---- Shamir ---- */

/* n distinct random x coordinates in 1..255 (a partial Fisher-Yates shuffle; public values). */
static MR_RESULT random_xs(unsigned n, uint8_t *xs)
{
    uint8_t pool[255];
    for (unsigned i = 0; i < 255; i++)
        pool[i] = (uint8_t)(i + 1);
    for (unsigned i = 0; i < n; i++) {
        unsigned span = 255 - i, limit = 256 - 256 % span, j;
        uint8_t r;
        do
            MR_GUARD(mr_crypto_random(&r, 1));
        while (r >= limit);
        j = i + r % span;
        uint8_t tmp = pool[i];
        pool[i] = pool[j];
        pool[j] = tmp;
        xs[i] = pool[i];
    }
    return MR_SUCCESS;
}

/* Evaluates the polynomial with coefficients c[0..t-1] at x (Horner). */
static uint8_t poly_eval(const uint8_t *c, unsigned t, uint8_t x)
{
    uint8_t y = 0;
    for (unsigned k = t; k-- > 0;)
        y = (uint8_t)(mr_gf256_mul(y, x) ^ c[k]);
    return y;
}

/* Fills share bytes at position `pos` of every share for one secret byte. */
static MR_RESULT split_byte(uint8_t s, unsigned t, unsigned n, const uint8_t *xs, uint8_t *base,
                            size_t share_len, size_t pos)
{
    mr_result res = MR_FAILURE;
    uint8_t coef[MR_SHARE_MAX];
    coef[0] = s;
    if (t > 1)
        MR_GUARD_OUT(mr_crypto_random(coef + 1, t - 1));
    for (unsigned i = 0; i < n; i++)
        base[(size_t)i * share_len + pos] = poly_eval(coef, t, xs[i]);
    res = MR_SUCCESS;
out:
    OPENSSL_cleanse(coef, sizeof(coef));
    return res;
}

MR_RESULT mr_shamir_split(mr_slice secret, unsigned t, unsigned n, mr_buf *shares)
{
    uint8_t xs[MR_SHARE_MAX];
    size_t start = shares->len;
    MR_GUARD(need_secret_buf(shares));
    MR_GUARD(check_secret(secret));
    MR_ENSURE(t >= 1 && t <= n && n <= MR_SHARE_MAX, MR_ERR_USAGE,
              "invalid Shamir parameters: threshold %u of %u shares", t, n);
    size_t share_len = secret.len + 1;
    MR_GUARD(mr_buf_reserve(shares, (size_t)n * share_len));
    uint8_t *base = shares->data + start;
    MR_GUARD(random_xs(n, xs));
    for (size_t k = 0; k < secret.len; k++) {
        if (!mr_ok(split_byte(secret.ptr[k], t, n, xs, base, share_len, k))) {
            OPENSSL_cleanse(base, (size_t)n * share_len);
            return MR_FAILURE;
        }
    }
    for (unsigned i = 0; i < n; i++)
        base[(size_t)i * share_len + secret.len] = xs[i];
    shares->len = start + (size_t)n * share_len;
    return MR_SUCCESS;
}

/* Lagrange basis polynomials at 0 for the x coordinates (public). */
static MR_RESULT lagrange_at_zero(const mr_slice *shares, size_t count, uint8_t *basis)
{
    size_t xpos = shares[0].len - 1;
    for (size_t i = 0; i < count; i++) {
        uint8_t xi = shares[i].ptr[xpos];
        uint8_t num = 1, den = 1;
        MR_ENSURE(xi != 0, MR_ERR_USAGE, "invalid share: x coordinate 0");
        for (size_t j = 0; j < count; j++) {
            uint8_t xj = shares[j].ptr[xpos];
            if (j == i)
                continue;
            MR_ENSURE(xj != xi, MR_ERR_USAGE, "duplicate share");
            num = mr_gf256_mul(num, xj);
            den = mr_gf256_mul(den, (uint8_t)(xi ^ xj));
        }
        basis[i] = mr_gf256_mul(num, mr_gf256_inv(den));
    }
    return MR_SUCCESS;
}

MR_RESULT mr_shamir_combine(const mr_slice *shares, size_t count, mr_buf *secret)
{
    uint8_t basis[MR_SHARE_MAX];
    MR_GUARD(need_secret_buf(secret));
    MR_GUARD(check_shares(shares, count, 2));
    size_t len = shares[0].len - 1;
    MR_GUARD(lagrange_at_zero(shares, count, basis));
    MR_GUARD(mr_buf_reserve(secret, len));
    uint8_t *dst = secret->data + secret->len;
    for (size_t k = 0; k < len; k++) {
        uint8_t acc = 0;
        for (size_t i = 0; i < count; i++)
            acc ^= mr_gf256_mul(shares[i].ptr[k], basis[i]);
        dst[k] = acc;
    }
    secret->len += len;
    return MR_SUCCESS;
}
