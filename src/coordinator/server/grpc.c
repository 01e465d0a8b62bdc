/* SPDX-License-Identifier: Apache-2.0 */
/* gRPC over HTTP/2 details: length-prefixed messages, status names, grpc-message encoding. */
#include <string.h>

#include "coordinator/server/internal.h"

enum {
    GRPC_INTERNAL = 13,
    GRPC_RESOURCE_EXHAUSTED = 8,
};

MR_RESULT mr_srv_grpc_frame_parse(mr_slice in, size_t max_msg, mr_slice *msg, int *code)
{
    mr_cursor c;
    uint8_t flag = 0;
    uint32_t len = 0;
    mr_cursor_init(&c, in.ptr, in.len);
    *code = GRPC_INTERNAL;
    MR_ENSURE(mr_ok(mr_cursor_u8(&c, &flag)) && mr_ok(mr_cursor_u32be(&c, &len)), MR_ERR_PROTOCOL,
              "grpc: request did not contain a complete message");
    MR_ENSURE(flag != 1, MR_ERR_PROTOCOL,
              "grpc: compressed flag set with identity or empty encoding");
    MR_ENSURE(flag == 0, MR_ERR_PROTOCOL, "grpc: received unexpected payload format %u",
              (unsigned)flag);
    if ((size_t)len > max_msg) {
        *code = GRPC_RESOURCE_EXHAUSTED;
        MR_BAIL(MR_ERR_USAGE, "grpc: received message larger than max (%u vs. %zu)", len,
                max_msg);
    }
    MR_ENSURE(mr_ok(mr_cursor_view(&c, len, msg)), MR_ERR_PROTOCOL,
              "grpc: request did not contain a complete message");
    MR_ENSURE(mr_cursor_remaining(&c) == 0, MR_ERR_PROTOCOL,
              "grpc: more than one message in a unary request");
    *code = 0;
    return MR_SUCCESS;
}

MR_RESULT mr_srv_grpc_frame_encode(mr_buf *out, mr_slice msg)
{
    MR_ENSURE(msg.len <= UINT32_MAX, MR_ERR_USAGE, "grpc message too large");
    uint8_t hdr[5] = {0, (uint8_t)(msg.len >> 24), (uint8_t)(msg.len >> 16),
                      (uint8_t)(msg.len >> 8), (uint8_t)msg.len};
    MR_GUARD(mr_buf_append(out, hdr, sizeof(hdr)));
    if (msg.len > 0)
        MR_GUARD(mr_buf_append(out, msg.ptr, msg.len));
    return MR_SUCCESS;
}

const char *mr_srv_grpc_code_name(int code)
{
    static const char *const names[MR_SRV_GRPC_CODES] = {
        "OK",       "Canceled",          "Unknown",           "InvalidArgument",
        "DeadlineExceeded", "NotFound",  "AlreadyExists",     "PermissionDenied",
        "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange",
        "Unimplemented", "Internal",     "Unavailable",       "DataLoss",
        "Unauthenticated",
    };
    if (code < 0 || code >= MR_SRV_GRPC_CODES)
        return "Unknown";
    return names[code];
}

MR_RESULT mr_srv_grpc_percent_encode(mr_buf *out, const char *msg)
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

static int hexd(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

MR_RESULT mr_srv_grpc_percent_decode(mr_buf *out, const char *msg)
{
    /* As grpc-go: a '%' not followed by two hex digits is kept literally. */
    mr_cursor c;
    mr_cursor_init(&c, msg, strlen(msg));
    while (mr_cursor_remaining(&c) > 0) {
        uint8_t b;
        MR_GUARD(mr_cursor_u8(&c, &b));
        if (b == '%' && mr_cursor_remaining(&c) >= 2) {
            mr_cursor probe = c;
            uint8_t h[2];
            MR_GUARD(mr_cursor_read(&probe, h, 2));
            int hi = hexd(h[0]), lo = hexd(h[1]);
            if (hi >= 0 && lo >= 0) {
                b = (uint8_t)(hi * 16 + lo);
                c = probe;
            }
        }
        MR_GUARD(mr_buf_append_u8(out, b));
    }
    return mr_buf_nul_terminate(out);
}
