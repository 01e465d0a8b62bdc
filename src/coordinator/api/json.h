/* SPDX-License-Identifier: Apache-2.0 */
/* Small helpers to write JSON the way Go's encoding/json does (HTML-safe strings, []byte as
 * padded base64, null for absent values) and to read v2 request bodies (field names matched
 * case-insensitively, trailing data ignored, as json.Decoder.Decode). */
#ifndef MR_COORDINATOR_API_JSON_H
#define MR_COORDINATOR_API_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/result.h"

/* Appends `,` unless *first, then "key":. */
MR_RESULT jw_key(mr_buf *b, bool *first, const char *key);
MR_RESULT jw_str(mr_buf *b, const char *s);
MR_RESULT jw_strn(mr_buf *b, const char *s, size_t n);
/* "base64" of the bytes, or null when data == NULL. */
MR_RESULT jw_b64(mr_buf *b, const uint8_t *data, size_t n);
MR_RESULT jw_int(mr_buf *b, long long v);

/* Decodes a v2 body object and returns the string value of `field` (case-insensitive match,
 * exact match preferred) decoded from padded base64. *present = false when the field is
 * missing or null. Fails (MR_ERR_USAGE, Go-like text) on bad JSON or a non-string value. */
MR_RESULT jr_b64_field(mr_slice body, const char *field, mr_buf *out, bool *present);

/* After a value decoded from the first `consumed` bytes of body: fails (MR_ERR_USAGE) with
 * json.Unmarshal's text "invalid character 'x' after top-level value" unless only JSON
 * whitespace follows. For bodies that must not carry anything after their object. */
MR_RESULT jr_no_trailing(mr_slice body, size_t consumed);

#endif
