/* SPDX-License-Identifier: Apache-2.0 */
/* JSON string quoting as Go's encoding/json does it, and the JSend envelopes (spec §0.1,
 * §4.3, §12.4). */
#include <string.h>

#include "coordinator/server/internal.h"

/* Decodes one UTF-8 sequence like Go's utf8.DecodeRune: *rune = -1 when invalid (then one
 * byte is consumed). */
static mr_result next_rune(mr_cursor *c, int32_t *rune, size_t *size)
{
    uint8_t b0;
    MR_GUARD(mr_cursor_u8(c, &b0));
    *size = 1;
    *rune = -1;
    if (b0 < 0x80) {
        *rune = b0;
        return MR_SUCCESS;
    }
    int need;
    int32_t r;
    int32_t min;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        need = 1, r = b0 & 0x1F, min = 0x80;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        need = 2, r = b0 & 0x0F, min = 0x800;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        need = 3, r = b0 & 0x07, min = 0x10000;
    } else {
        return MR_SUCCESS;
    }
    mr_cursor probe = *c;
    for (int i = 0; i < need; i++) {
        uint8_t b;
        if (!mr_ok(mr_cursor_u8(&probe, &b)) || (b & 0xC0) != 0x80)
            return MR_SUCCESS;
        r = (r << 6) | (b & 0x3F);
    }
    if (r < min || r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF))
        return MR_SUCCESS;
    *c = probe;
    *rune = r;
    *size = (size_t)need + 1;
    return MR_SUCCESS;
}

MR_RESULT mr_srv_json_quote(mr_buf *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    mr_cursor c;
    mr_cursor_init(&c, s, n);
    MR_GUARD(mr_buf_append_u8(out, '"'));
    while (mr_cursor_remaining(&c) > 0) {
        mr_cursor start = c;
        int32_t r;
        size_t size;
        MR_GUARD(next_rune(&c, &r, &size));
        if (r < 0) {
            MR_GUARD(mr_buf_append_str(out, "\\ufffd"));
        } else if (r == 0x2028 || r == 0x2029) {
            MR_GUARD(mr_buf_append_str(out, r == 0x2028 ? "\\u2028" : "\\u2029"));
        } else if (r >= 0x80) {
            mr_slice raw;
            MR_GUARD(mr_cursor_view(&start, size, &raw));
            MR_GUARD(mr_buf_append(out, raw.ptr, raw.len));
        } else if (r == '"' || r == '\\') {
            char e[2] = {'\\', (char)r};
            MR_GUARD(mr_buf_append(out, e, 2));
        } else if (r == '\n' || r == '\r' || r == '\t' || r == '\b' || r == '\f') {
            char e[2] = {'\\', 'f'};
            if (r == '\n')
                e[1] = 'n';
            else if (r == '\r')
                e[1] = 'r';
            else if (r == '\t')
                e[1] = 't';
            else if (r == '\b')
                e[1] = 'b';
            MR_GUARD(mr_buf_append(out, e, 2));
        } else if (r < 0x20 || r == '<' || r == '>' || r == '&') {
            char e[6] = {'\\', 'u', '0', '0', hex[r >> 4], hex[r & 15]};
            MR_GUARD(mr_buf_append(out, e, 6));
        } else {
            MR_GUARD(mr_buf_append_u8(out, (uint8_t)r));
        }
    }
    return mr_buf_append_u8(out, '"');
}

static mr_result envelope(mr_buf *out, const char *status, const char *data_json,
                          const char *msg)
{
    MR_GUARD(mr_buf_append_str(out, "{\"status\":\""));
    MR_GUARD(mr_buf_append_str(out, status));
    MR_GUARD(mr_buf_append_str(out, "\",\"data\":"));
    MR_GUARD(mr_buf_append_str(out, data_json != NULL ? data_json : "null"));
    if (msg != NULL && msg[0] != '\0') {
        MR_GUARD(mr_buf_append_str(out, ",\"message\":"));
        MR_GUARD(mr_srv_json_quote(out, msg, strlen(msg)));
    }
    return mr_buf_append_str(out, "}\n");
}

MR_RESULT mr_srv_jsend_success(mr_buf *out, const char *data_json)
{
    return envelope(out, "success", data_json, NULL);
}

MR_RESULT mr_srv_jsend_error(mr_buf *out, const char *msg)
{
    return envelope(out, "error", NULL, msg);
}

MR_RESULT mr_srv_jsend_fail(mr_buf *out, const char *data_json, const char *msg)
{
    return envelope(out, "fail", data_json, msg);
}
