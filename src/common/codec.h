/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Text encodings of bytes: hex, base64 (standard and URL-safe alphabets, always padded, as
 * Go's StdEncoding/URLEncoding), and PEM.
 *
 * All encoders and decoders here run in constant time with respect to the byte values
 * (no table lookups indexed by data, no data-dependent branches), so they are safe for key
 * material. Only the length and the position of an invalid character may leak.
 *
 * Output buffers: the *_buf functions append to an mr_buf (use MR_BUF_SECRET for secrets);
 * on failure nothing is appended.
 */
#ifndef MR_COMMON_CODEC_H
#define MR_COMMON_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/result.h"

/* hex: lower-case out; upper or lower case in; even length required. */
MR_RESULT mr_hex_encode_buf(const uint8_t *in, size_t len, mr_buf *out);
MR_RESULT mr_hex_decode_buf(const char *in, size_t len, mr_buf *out);
/* Decodes exactly out_len bytes (in must have 2*out_len characters). */
MR_RESULT mr_hex_decode_fixed(const char *in, size_t len, uint8_t *out, size_t out_len);

typedef enum mr_b64_alphabet { MR_B64_STD = 0, MR_B64_URL = 1 } mr_b64_alphabet;

enum {
    /* Skip CR and LF inside the input (Go's decoder does this for []byte JSON fields). */
    MR_B64_IGNORE_NEWLINES = 1u << 0,
};

size_t mr_b64_encoded_len(size_t len);
MR_RESULT mr_b64_encode_buf(const uint8_t *in, size_t len, mr_b64_alphabet a, mr_buf *out);
/* Decodes padded base64. Rejects missing or excess padding and characters outside the
 * alphabet. Like Go's non-strict decoders, non-zero unused bits in the last symbol are
 * accepted. */
MR_RESULT mr_b64_decode_buf(const char *in, size_t len, mr_b64_alphabet a, unsigned flags,
                            mr_buf *out);

/* PEM. A block is "-----BEGIN <label>-----" ... "-----END <label>-----" with base64 lines in
 * between; RFC 1421 headers ("Name: value" lines before a blank line) are skipped. */
#define MR_PEM_LABEL_MAX 64

typedef struct mr_pem_block {
    char label[MR_PEM_LABEL_MAX];
    mr_buf der; /* initialise with mr_buf_init before decoding; caller frees */
} mr_pem_block;

/* Finds the next PEM block at or after the cursor (text before it is skipped, as Go's
 * pem.Decode does). On success *found says whether a block was found; when found, the
 * decoded bytes are appended to out->der and the cursor is moved past the END line. An
 * unterminated block or bad base64 inside a block is an error. */
MR_RESULT mr_pem_next(mr_cursor *in, mr_pem_block *out, bool *found);
/* Appends a PEM block (64-character lines, trailing newline) to out. */
MR_RESULT mr_pem_encode_buf(const char *label, const uint8_t *der, size_t len, mr_buf *out);

#endif
