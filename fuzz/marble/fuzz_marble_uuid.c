/* SPDX-License-Identifier: Apache-2.0 */
/* Target: the UUID file parser (marble/uuidfile.c: mr_marble_uuid_parse_file).
 * Properties: only the four accepted lengths parse; an accepted input formats to the
 * canonical 36-character form, which parses back to the same UUID. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "marble/marble_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mr_uuid u, again;
    char text[MR_UUID_TEXT_LEN + 1];
    if (mr_ok(mr_marble_uuid_parse_file(data, size, &u))) {
        if (size != 32 && size != 36 && size != 38 && size != 45)
            abort();
        mr_uuid_format(&u, text);
        if (strlen(text) != MR_UUID_TEXT_LEN ||
            !mr_ok(mr_marble_uuid_parse_file((const uint8_t *)text, MR_UUID_TEXT_LEN, &again)) ||
            memcmp(u.b, again.b, 16) != 0)
            abort();
    }
    mr_error_clear();
    return 0;
}
