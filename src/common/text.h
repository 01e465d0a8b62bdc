/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Text decoders and encoders shared by the modules, each written once: hex digits, UTF-8 as
 * Go's unicode/utf8, JSON string literals as Go's encoding/json, percent-decoding, RFC 3339
 * timestamps. All inputs are borrowed byte ranges (no NUL needed); outputs are appended to
 * caller buffers (on failure the buffer may hold a partial result: reset it).
 *
 * Unlike common/codec.h these are not constant time (except mr_hex_digit): do not feed them
 * key material.
 */
#ifndef MR_COMMON_TEXT_H
#define MR_COMMON_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/result.h"

/* ---- hex digit ---- */

/* 0..15 for '0'-'9', 'a'-'f', 'A'-'F'; -1 for any other byte. Constant time. */
int mr_hex_digit(uint8_t c);

/* ---- UTF-8 (Go's unicode/utf8) ---- */

#define MR_UTF8_RUNE_ERROR 0xFFFDu
#define MR_UTF8_MAX 4 /* bytes of one encoded rune */

/* Decodes the rune at p[0..avail) like utf8.DecodeRune: an invalid, overlong, surrogate,
 * out-of-range or truncated sequence (and avail == 0) gives MR_UTF8_RUNE_ERROR with *size 1
 * (0 for avail == 0 is not distinguished: *size is 1). A valid U+FFFD has *size 3. */
uint32_t mr_utf8_decode(const uint8_t *p, size_t avail, size_t *size);
/* Encodes r (r <= 0x10FFFF, not a surrogate: callers check) into out, returns the length. */
size_t mr_utf8_encode(uint32_t r, uint8_t out[MR_UTF8_MAX]);
MR_RESULT mr_utf8_append(mr_buf *b, uint32_t r);

/* ---- JSON string literal (Go's encoding/json) ---- */

/* Appends s[0..len) as a quoted JSON string the way json.Marshal writes it (HTML-safe):
 * '"' and '\\' and \b \f \n \r \t as two-character escapes, other bytes below 0x20 and
 * '<', '>', '&' as \u00xx (lower-case hex), U+2028 and U+2029 as \u2028 / \u2029, every
 * invalid UTF-8 byte as \ufffd, everything else verbatim. s may be NULL when len is 0. */
MR_RESULT mr_json_quote(mr_buf *out, const char *s, size_t len);

/* ---- percent-decoding ---- */

enum {
    /* An escape that is not '%' + two hex digits is an error (MR_ERR_USAGE
     * `invalid URL escape "%.."`, Go's url.PathUnescape text). Without it such a '%' is kept
     * literally, as grpc-go decodes a grpc-message. */
    MR_PCT_STRICT = 1u << 0,
    /* '+' decodes to a space (Go's url.QueryUnescape). */
    MR_PCT_PLUS_SPACE = 1u << 1,
    /* A decoded NUL byte is refused: an error (MR_ERR_USAGE "invalid NUL in URL escape")
     * with MR_PCT_STRICT, else "%00" is kept literally. For outputs used as C strings. */
    MR_PCT_NO_NUL = 1u << 2,
};

/* Appends the decoded bytes of in[0..len) to out, then a NUL terminator that is not counted
 * in out->len. */
MR_RESULT mr_percent_decode(const char *in, size_t len, unsigned flags, mr_buf *out);

/* ---- RFC 3339 ---- */

enum {
    /* Also 't' and 'z' (RFC 3339 §5.6 allows lower case; Go does not). */
    MR_RFC3339_LOWER = 1u << 0,
    /* Only "Z": no numeric offset. */
    MR_RFC3339_UTC_ONLY = 1u << 1,
    /* Day 1..31 whatever the month, second 60, a '.' without digits; such dates are
     * normalised as timegm does (Feb 30 = Mar 1 or 2, second 60 = next minute). */
    MR_RFC3339_LOOSE = 1u << 2,
};
/* No flags: strict RFC 3339 as Go's time.Time.UnmarshalJSON accepts it
 * ("2006-01-02T15:04:05.999999999Z07:00", upper-case T and Z, real calendar dates).
 * Attestation collateral (Intel's issueDate / nextUpdate) and the CLI's --at: this set. */
#define MR_RFC3339_UTC_LENIENT (MR_RFC3339_LOWER | MR_RFC3339_UTC_ONLY | MR_RFC3339_LOOSE)

typedef enum mr_rfc3339_status {
    MR_RFC3339_OK = 0,
    MR_RFC3339_BAD_LAYOUT, /* not YYYY-MM-DDTHH:MM:SS with digits, or a bad fraction/offset */
    MR_RFC3339_BAD_ZONE,   /* what follows the seconds (and fraction) is not an allowed zone */
    MR_RFC3339_BAD_RANGE,  /* a field out of range */
} mr_rfc3339_status;

typedef struct mr_rfc3339_time {
    int64_t unix_sec; /* seconds since 1970-01-01T00:00:00Z (negative before) */
    int32_t nsec;     /* 0..999999999; digits after the ninth are ignored */
} mr_rfc3339_time;

/* Checks in this order: layout, zone, ranges; the first problem found is returned. *out is
 * set only on MR_RFC3339_OK. */
mr_rfc3339_status mr_rfc3339_parse(const char *s, size_t len, unsigned flags,
                                   mr_rfc3339_time *out);

/* Days since 1970-01-01 of a proleptic Gregorian date (month 1..12; day may exceed the
 * month's length and then counts on into the next months). */
int64_t mr_days_from_civil(int64_t year, unsigned month, unsigned day);

#endif
