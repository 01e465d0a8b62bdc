/* SPDX-License-Identifier: Apache-2.0 */
/* UUIDs as MarbleRun parses them (Go google/uuid): canonical 36-character form, 32 hex digits
 * without dashes, "{...}" and "urn:uuid:..." forms, any hex case. Output is canonical
 * lower case. */
#ifndef MR_COMMON_UUID_H
#define MR_COMMON_UUID_H

#include <stddef.h>
#include <stdint.h>

#include "common/result.h"

#define MR_UUID_TEXT_LEN 36

typedef struct mr_uuid {
    uint8_t b[16];
} mr_uuid;

/* Fails (MR_ERR_USAGE) with Go's texts: "invalid UUID length: <n>", "invalid UUID format",
 * "invalid urn prefix: "<p>"". */
MR_RESULT mr_uuid_parse(const char *s, size_t len, mr_uuid *out);
/* Writes the canonical lower-case form and a NUL (37 bytes). */
void mr_uuid_format(const mr_uuid *u, char out[MR_UUID_TEXT_LEN + 1]);
/* A random (version 4, RFC 4122 variant) UUID. */
MR_RESULT mr_uuid_random(mr_uuid *out);

#endif
