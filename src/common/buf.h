/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Bounded byte buffers. All bytes that come from outside (requests, protobuf frames, quotes,
 * collateral, PEM/DER, JSON) are read through these types; no other code does pointer
 * arithmetic on them.
 *
 *  mr_slice   a borrowed, read-only view (pointer + size). Never freed.
 *  mr_cursor  a read cursor over borrowed bytes: every read checks the remaining size and
 *             fails (MR_ERR_PROTOCOL, "truncated ...") instead of overrunning.
 *  mr_buf     an owned, growable buffer with a maximum fixed at creation. Appending past the
 *             maximum fails (MR_ERR_TOO_LARGE, a refinement of MR_ERR_USAGE, "... too large").
 *             With MR_BUF_SECRET the storage comes from the secret allocator and is wiped when
 *             it moves, shrinks or is freed.
 *
 * A zero-initialised mr_buf is an empty buffer with no limit other than MR_BUF_MAX_DEFAULT.
 */
#ifndef MR_COMMON_BUF_H
#define MR_COMMON_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "common/result.h"

#define MR_BUF_MAX_DEFAULT ((size_t)64 << 20) /* 64 MiB */

typedef struct mr_slice {
    const uint8_t *ptr;
    size_t len;
} mr_slice;

#define MR_SLICE(p, n) ((mr_slice){.ptr = (const uint8_t *)(p), .len = (n)})
#define MR_SLICE_STR(s) ((mr_slice){.ptr = (const uint8_t *)(s), .len = strlen(s)})

typedef struct mr_cursor {
    const uint8_t *ptr;
    size_t len;
    size_t pos;
} mr_cursor;

void mr_cursor_init(mr_cursor *c, const void *data, size_t len);
size_t mr_cursor_remaining(const mr_cursor *c);
MR_RESULT mr_cursor_read(mr_cursor *c, void *out, size_t n);
MR_RESULT mr_cursor_skip(mr_cursor *c, size_t n);
/* A borrowed view of the next n bytes; advances the cursor. */
MR_RESULT mr_cursor_view(mr_cursor *c, size_t n, mr_slice *out);
/* A new cursor over the next n bytes; advances this cursor past them. */
MR_RESULT mr_cursor_sub(mr_cursor *c, size_t n, mr_cursor *out);
MR_RESULT mr_cursor_u8(mr_cursor *c, uint8_t *out);
MR_RESULT mr_cursor_u16le(mr_cursor *c, uint16_t *out);
MR_RESULT mr_cursor_u32le(mr_cursor *c, uint32_t *out);
MR_RESULT mr_cursor_u64le(mr_cursor *c, uint64_t *out);
MR_RESULT mr_cursor_u16be(mr_cursor *c, uint16_t *out);
MR_RESULT mr_cursor_u32be(mr_cursor *c, uint32_t *out);

/* MR_BUF_SECRET: secret-allocator storage (locked, no core dumps), wiped when it moves or is
 * freed. MR_BUF_WIPE: ordinary heap storage that is wiped when it moves or is freed, for
 * buffers that may hold secrets in transit (request and response bodies). Neither can be
 * stolen (mr_buf_steal returns NULL). */
enum { MR_BUF_SECRET = 1u << 0, MR_BUF_WIPE = 1u << 1 };

typedef struct mr_buf {
    uint8_t *data; /* owned; NULL while empty */
    size_t len;
    size_t cap;
    size_t max;    /* 0 = MR_BUF_MAX_DEFAULT */
    unsigned flags;
} mr_buf;

void mr_buf_init(mr_buf *b, size_t max, unsigned flags);
MR_RESULT mr_buf_reserve(mr_buf *b, size_t extra);
MR_RESULT mr_buf_append(mr_buf *b, const void *data, size_t n);
MR_RESULT mr_buf_append_str(mr_buf *b, const char *s);
MR_RESULT mr_buf_append_u8(mr_buf *b, uint8_t v);
MR_RESULT mr_buf_append_u16le(mr_buf *b, uint16_t v);
MR_RESULT mr_buf_append_u32le(mr_buf *b, uint32_t v);
MR_RESULT mr_buf_append_u64le(mr_buf *b, uint64_t v);
MR_RESULT mr_buf_printf(mr_buf *b, const char *fmt, ...) MR_PRINTF(2, 3);
/* Appends a NUL after the content without counting it in len (for C-string use). */
MR_RESULT mr_buf_nul_terminate(mr_buf *b);
/* Replaces the content with a copy of data. */
MR_RESULT mr_buf_set(mr_buf *b, const void *data, size_t n);
mr_slice mr_buf_slice(const mr_buf *b);
/* Empties the buffer (wiping it when secret) but keeps the storage and settings. */
void mr_buf_reset(mr_buf *b);
/* Releases the storage (wiping it when secret); the buffer stays initialised and empty. */
void mr_buf_free(mr_buf *b);
/* Hands the storage to the caller, who frees it with mr_free (or mr_secret_free(p, cap) for
 * a secret buffer: use mr_buf_free instead). Returns NULL when empty. Not for secret buffers. */
uint8_t *mr_buf_steal(mr_buf *b, size_t *len);

#endif
