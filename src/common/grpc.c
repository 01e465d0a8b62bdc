/* SPDX-License-Identifier: Apache-2.0 */
#include "common/grpc.h"

#include <string.h>

#include "common/text.h"

const char *mr_grpc_code_name(int code)
{
    static const char *const names[MR_GRPC_CODES] = {
        "OK",       "Canceled",          "Unknown",           "InvalidArgument",
        "DeadlineExceeded", "NotFound",  "AlreadyExists",     "PermissionDenied",
        "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange",
        "Unimplemented", "Internal",     "Unavailable",       "DataLoss",
        "Unauthenticated",
    };
    if (code < 0 || code >= MR_GRPC_CODES)
        return "Unknown";
    return names[code];
}

MR_RESULT mr_grpc_frame_encode(mr_buf *out, mr_slice msg)
{
    MR_ENSURE(msg.len <= UINT32_MAX, MR_ERR_USAGE, "grpc message too large");
    uint8_t hdr[5] = {0, (uint8_t)(msg.len >> 24), (uint8_t)(msg.len >> 16),
                      (uint8_t)(msg.len >> 8), (uint8_t)msg.len};
    MR_GUARD(mr_buf_append(out, hdr, sizeof(hdr)));
    if (msg.len > 0)
        MR_GUARD(mr_buf_append(out, msg.ptr, msg.len));
    return MR_SUCCESS;
}

bool mr_grpc_frame_header(mr_slice in, uint8_t *flag, uint32_t *len)
{
    mr_cursor c;
    mr_cursor_init(&c, in.ptr, in.len);
    return mr_ok(mr_cursor_u8(&c, flag)) && mr_ok(mr_cursor_u32be(&c, len));
}

static bool identity(const char *encoding)
{
    return encoding == NULL || encoding[0] == '\0' || strcmp(encoding, "identity") == 0;
}

MR_RESULT mr_grpc_frame_parse(mr_slice in, size_t max_msg, const char *what, const char *encoding,
                              mr_slice *msg, mr_grpc_code *code)
{
    mr_cursor c;
    uint8_t flag = 0;
    uint32_t len = 0;
    *code = MR_GRPC_INTERNAL;
    MR_ENSURE(mr_grpc_frame_header(in, &flag, &len), MR_ERR_PROTOCOL,
              "grpc: %s did not contain a complete message", what);
    if (flag == 1 && !identity(encoding)) {
        *code = MR_GRPC_UNIMPLEMENTED;
        MR_BAIL(MR_ERR_PROTOCOL, "grpc: Decompressor is not installed for grpc-encoding \"%.64s\"",
                encoding);
    }
    MR_ENSURE(flag != 1, MR_ERR_PROTOCOL,
              "grpc: compressed flag set with identity or empty encoding");
    MR_ENSURE(flag == 0, MR_ERR_PROTOCOL, "grpc: received unexpected payload format %u",
              (unsigned)flag);
    if ((size_t)len > max_msg) {
        *code = MR_GRPC_RESOURCE_EXHAUSTED;
        MR_BAIL(MR_ERR_USAGE, "grpc: received message larger than max (%u vs. %zu)", len,
                max_msg);
    }
    mr_cursor_init(&c, in.ptr, in.len);
    MR_GUARD(mr_cursor_skip(&c, 5));
    MR_ENSURE(mr_ok(mr_cursor_view(&c, len, msg)), MR_ERR_PROTOCOL,
              "grpc: %s did not contain a complete message", what);
    MR_ENSURE(mr_cursor_remaining(&c) == 0, MR_ERR_PROTOCOL,
              "grpc: more than one message in a unary %s", what);
    *code = MR_GRPC_OK;
    return MR_SUCCESS;
}

MR_RESULT mr_grpc_percent_encode(mr_buf *out, const char *msg)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)msg; *p != '\0'; p++) {
        if (*p >= 0x20 && *p <= 0x7E && *p != '%') {
            MR_GUARD(mr_buf_append_u8(out, *p));
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            MR_GUARD(mr_buf_append(out, e, 3));
        }
    }
    return mr_buf_nul_terminate(out);
}

MR_RESULT mr_grpc_percent_decode(mr_buf *out, const char *msg, size_t len)
{
    return mr_percent_decode(msg, len, MR_PCT_NO_NUL, out);
}

MR_RESULT mr_grpc_timeout_parse(const char *v, uint64_t *ms)
{
    static const uint64_t day_ms = 86400000ull;
    size_t n = strlen(v);
    MR_ENSURE(n >= 2 && n <= 9, MR_ERR_PROTOCOL, "grpc: malformed grpc-timeout \"%.16s\"", v);
    uint64_t x = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        MR_ENSURE(v[i] >= '0' && v[i] <= '9', MR_ERR_PROTOCOL,
                  "grpc: malformed grpc-timeout \"%.16s\"", v);
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    switch (v[n - 1]) {
    case 'H': *ms = x * 3600000ull; break;
    case 'M': *ms = x * 60000ull; break;
    case 'S': *ms = x * 1000ull; break;
    case 'm': *ms = x; break;
    case 'u': *ms = (x + 999) / 1000; break;
    case 'n': *ms = (x + 999999) / 1000000; break;
    default: MR_BAIL(MR_ERR_PROTOCOL, "grpc: malformed grpc-timeout \"%.16s\"", v);
    }
    if (*ms > day_ms) /* 8 digits of hours: no overflow above, but no use for more either */
        *ms = day_ms;
    return MR_SUCCESS;
}
