/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gRPC over HTTP/2, the parts both ends share (the Coordinator's mesh server, the premain's
 * client, the future etcd and key-API clients): status codes and the names grpc-go prints,
 * length-prefixed message framing, grpc-message percent-encoding and grpc-timeout parsing.
 * No I/O here: the transports live in coordinator/server (nghttp2) and marble/rpc.c.
 *
 * Errors: the parsers fail with MR_ERR_PROTOCOL (MR_ERR_USAGE for an oversized message) and a
 * grpc-go text; mr_grpc_frame_parse also gives the status code to answer with.
 */
#ifndef MR_COMMON_GRPC_H
#define MR_COMMON_GRPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/result.h"

/* google.rpc.Code */
typedef enum mr_grpc_code {
    MR_GRPC_OK = 0,
    MR_GRPC_CANCELLED = 1,
    MR_GRPC_UNKNOWN = 2,
    MR_GRPC_INVALID_ARGUMENT = 3,
    MR_GRPC_DEADLINE_EXCEEDED = 4,
    MR_GRPC_NOT_FOUND = 5,
    MR_GRPC_ALREADY_EXISTS = 6,
    MR_GRPC_PERMISSION_DENIED = 7,
    MR_GRPC_RESOURCE_EXHAUSTED = 8,
    MR_GRPC_FAILED_PRECONDITION = 9,
    MR_GRPC_ABORTED = 10,
    MR_GRPC_OUT_OF_RANGE = 11,
    MR_GRPC_UNIMPLEMENTED = 12,
    MR_GRPC_INTERNAL = 13,
    MR_GRPC_UNAVAILABLE = 14,
    MR_GRPC_DATA_LOSS = 15,
    MR_GRPC_UNAUTHENTICATED = 16,
} mr_grpc_code;
#define MR_GRPC_CODES 17

/* The name grpc-go prints ("rpc error: code = PermissionDenied") and go-grpc-middleware
 * labels metrics with: "OK", "Canceled", ...; "Unknown" outside 0..16. */
const char *mr_grpc_code_name(int code);

/* Appends the 5-byte prefix (uncompressed, big-endian length) and msg. */
MR_RESULT mr_grpc_frame_encode(mr_buf *out, mr_slice msg);
/* The prefix of a length-prefixed message: false until 5 bytes are there. */
bool mr_grpc_frame_header(mr_slice in, uint8_t *flag, uint32_t *len);
/* Exactly one uncompressed message filling `in`. `what` names the direction in the texts
 * ("request" on the server, "response" on the client); `encoding` is the peer's grpc-encoding
 * header or NULL. On failure *code is the status a server answers with: INTERNAL for bad
 * framing, UNIMPLEMENTED for a message compressed with an encoding we do not have,
 * RESOURCE_EXHAUSTED for one over max_msg. */
MR_RESULT mr_grpc_frame_parse(mr_slice in, size_t max_msg, const char *what, const char *encoding,
                              mr_slice *msg, mr_grpc_code *code);

/* grpc-message: bytes outside 0x20..0x7E and '%' become %XX (NUL-terminated output). */
MR_RESULT mr_grpc_percent_encode(mr_buf *out, const char *msg);
/* The reverse, as grpc-go: a '%' not followed by two hex digits stays literal, and so does
 * "%00" (the result is used as a C string). NUL-terminated output. */
MR_RESULT mr_grpc_percent_decode(mr_buf *out, const char *msg, size_t len);

/* grpc-timeout: at most 8 digits and a unit (H, M, S, m, u, n). *ms is rounded up; a value
 * over a day is capped at one day. Fails (MR_ERR_PROTOCOL) on anything else. */
MR_RESULT mr_grpc_timeout_parse(const char *v, uint64_t *ms);

#endif
