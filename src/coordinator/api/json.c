/* SPDX-License-Identifier: Apache-2.0 */
#include "coordinator/api/json.h"

#include <jansson.h>
#include <string.h>
#include <strings.h>

#include "common/codec.h"
#include "common/jsonf.h"
#include "common/text.h"

MR_RESULT jw_key(mr_buf *b, bool *first, const char *key)
{
    if (!*first)
        MR_GUARD(mr_buf_append_u8(b, ','));
    *first = false;
    MR_GUARD(jw_str(b, key));
    return mr_buf_append_u8(b, ':');
}

MR_RESULT jw_str(mr_buf *b, const char *s) { return jw_strn(b, s, strlen(s)); }

MR_RESULT jw_strn(mr_buf *b, const char *s, size_t n) { return mr_json_quote(b, s, n); }

MR_RESULT jw_b64(mr_buf *b, const uint8_t *data, size_t n)
{
    if (data == NULL)
        return mr_buf_append_str(b, "null");
    MR_GUARD(mr_buf_append_u8(b, '"'));
    MR_GUARD(mr_b64_encode_buf(data, n, MR_B64_STD, b));
    return mr_buf_append_u8(b, '"');
}

MR_RESULT jw_int(mr_buf *b, long long v) { return mr_buf_printf(b, "%lld", v); }

/* The base64 string `field` of a decoded body (see jr_b64_field). */
static MR_RESULT b64_member(json_t *root, const char *field, mr_buf *out, bool *present)
{
    MR_ENSURE(json_is_object(root), MR_ERR_USAGE,
              "json: cannot unmarshal %s into Go value of type object",
              json_is_array(root) ? "array" : json_is_string(root) ? "string" : "value");
    json_t *val = mr_json_field(root, field);
    if (val == NULL || json_is_null(val))
        return MR_SUCCESS;
    MR_ENSURE(json_is_string(val), MR_ERR_USAGE,
              "json: cannot unmarshal value into Go struct field .%s of type []uint8", field);
    MR_GUARD(mr_b64_decode_buf(json_string_value(val), json_string_length(val), MR_B64_STD,
                               MR_B64_IGNORE_NEWLINES, out));
    *present = true;
    return MR_SUCCESS;
}

MR_RESULT jr_b64_field(mr_slice body, const char *field, mr_buf *out, bool *present)
{
    json_error_t err;
    *present = false;
    json_t *root = json_loadb((const char *)body.ptr, body.len,
                              JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY, &err);
    MR_ENSURE(root != NULL, MR_ERR_USAGE, "%s", body.len == 0 ? "EOF" : err.text);
    mr_result res = b64_member(root, field, out, present);
    json_decref(root);
    return res;
}

MR_RESULT jr_no_trailing(mr_slice body, size_t consumed)
{
    for (size_t i = consumed; i < body.len; i++) {
        unsigned char ch = body.ptr[i];
        if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r')
            continue;
        if (ch >= 0x20 && ch < 0x7f && ch != '\'')
            MR_BAIL(MR_ERR_USAGE, "invalid character '%c' after top-level value", ch);
        MR_BAIL(MR_ERR_USAGE, "invalid character '\\x%02x' after top-level value", ch);
    }
    return MR_SUCCESS;
}
