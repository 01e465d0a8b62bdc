/* SPDX-License-Identifier: Apache-2.0 */
/* Target: the CLI's parsers of Coordinator answers and policy files: mr_cli_jsend_parse for
 * every status class (first byte selects it) and mr_cli_era_parse. */
#include <jansson.h>
#include <stdint.h>

#include "cli/client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const long codes[] = {200, 401, 405, 500};
    if (size == 0)
        return 0;
    json_t *d = NULL;
    if (mr_ok(mr_cli_jsend_parse("GET", "https://h/x", codes[data[0] & 3], data + 1, size - 1,
                                 &d))) {
        (void)mr_cli_json_str(d, "message");
        json_decref(d);
    }
    mr_cli_era era;
    MR_IGNORE(mr_cli_era_parse((const char *)data + 1, size - 1, &era));
    return 0;
}
