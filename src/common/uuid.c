/* SPDX-License-Identifier: Apache-2.0 */
#include "common/uuid.h"

#include <openssl/rand.h>
#include <string.h>
#include <strings.h>

#include "common/codec.h"

static MR_RESULT parse_dashed(const char *s, mr_uuid *out)
{
    static const int groups[] = {8, 4, 4, 4, 12};
    char hex[32];
    size_t pos = 0, h = 0;
    for (size_t g = 0; g < MR_ARRAY_LEN(groups); g++) {
        if (g > 0) {
            MR_ENSURE(s[pos] == '-', MR_ERR_USAGE, "invalid UUID format");
            pos++;
        }
        memcpy(hex + h, s + pos, (size_t)groups[g]);
        pos += (size_t)groups[g];
        h += (size_t)groups[g];
    }
    if (!mr_ok(mr_hex_decode_fixed(hex, sizeof(hex), out->b, sizeof(out->b))))
        MR_BAIL(MR_ERR_USAGE, "invalid UUID format");
    return MR_SUCCESS;
}

MR_RESULT mr_uuid_parse(const char *s, size_t len, mr_uuid *out)
{
    switch (len) {
    case 36:
        return parse_dashed(s, out);
    case 36 + 9:
        MR_ENSURE(strncasecmp(s, "urn:uuid:", 9) == 0, MR_ERR_USAGE, "invalid urn prefix: \"%.9s\"", s);
        return parse_dashed(s + 9, out);
    case 36 + 2:
        MR_ENSURE(s[0] == '{' && s[37] == '}', MR_ERR_USAGE, "invalid UUID format");
        return parse_dashed(s + 1, out);
    case 32:
        if (!mr_ok(mr_hex_decode_fixed(s, 32, out->b, sizeof(out->b))))
            MR_BAIL(MR_ERR_USAGE, "invalid UUID format");
        return MR_SUCCESS;
    default:
        MR_BAIL(MR_ERR_USAGE, "invalid UUID length: %zu", len);
    }
}

void mr_uuid_format(const mr_uuid *u, char out[MR_UUID_TEXT_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = digits[u->b[i] >> 4];
        out[o++] = digits[u->b[i] & 15];
    }
    out[o] = '\0';
}

MR_RESULT mr_uuid_random(mr_uuid *out)
{
    MR_ENSURE(RAND_bytes(out->b, sizeof(out->b)) == 1, MR_ERR_INTERNAL, "random source failed");
    out->b[6] = (uint8_t)((out->b[6] & 0x0f) | 0x40);
    out->b[8] = (uint8_t)((out->b[8] & 0x3f) | 0x80);
    return MR_SUCCESS;
}
