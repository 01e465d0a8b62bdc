/* SPDX-License-Identifier: Apache-2.0 */
#include "common/jsonf.h"

#include <strings.h>

json_t *mr_json_field(json_t *obj, const char *name)
{
    if (!json_is_object(obj))
        return NULL;
    json_t *exact = json_object_get(obj, name);
    if (exact != NULL)
        return exact;
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        if (strcasecmp(k, name) == 0)
            return v;
    }
    return NULL;
}
