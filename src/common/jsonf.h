/* SPDX-License-Identifier: Apache-2.0 */
/* Reading JSON objects the way Go's encoding/json maps them onto struct fields. */
#ifndef MR_COMMON_JSONF_H
#define MR_COMMON_JSONF_H

#include <jansson.h>

/* The member of obj that Go would decode into field `name`: an exact match first, else the
 * first case-insensitive (ASCII) match. NULL when obj is not an object or has no such member.
 * The result is borrowed from obj. */
json_t *mr_json_field(json_t *obj, const char *name);

#endif
