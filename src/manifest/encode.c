/* SPDX-License-Identifier: Apache-2.0 */
/*
 * JSON of manifest values with Go json.Marshal's output rules (spec §0.1): fields in
 * declaration order, strings quoted by mr_json_quote (HTML-safe, U+2028/U+2029 escaped,
 * invalid UTF-8 as U+FFFD), nil → null, []byte → base64.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/codec.h"
#include "common/text.h"
#include "manifest/manifest_int.h"

MR_RESULT mr_manifest_json_string(const char *s, size_t len, mr_buf *out)
{
    return mr_json_quote(out, s, len);
}

static MR_RESULT put_str(mr_buf *o, const mr_mstr *s) { return mr_manifest_json_string(s->ptr, s->len, o); }

static MR_RESULT put_key(mr_buf *o, const char *k, bool first)
{
    MR_GUARD(mr_buf_append_u8(o, first ? '{' : ','));
    MR_GUARD(mr_buf_append_u8(o, '"'));
    MR_GUARD(mr_buf_append_str(o, k));
    return mr_buf_append_str(o, "\":");
}

static MR_RESULT put_bool(mr_buf *o, bool b) { return mr_buf_append_str(o, b ? "true" : "false"); }

static MR_RESULT put_u64(mr_buf *o, uint64_t v) { return mr_buf_printf(o, "%" PRIu64, v); }

static MR_RESULT put_bytes(mr_buf *o, const mr_mbytes *b)
{
    if (!b->present)
        return mr_buf_append_str(o, "null");
    MR_GUARD(mr_buf_append_u8(o, '"'));
    MR_GUARD(mr_b64_encode_buf(b->ptr, b->len, MR_B64_STD, o));
    return mr_buf_append_u8(o, '"');
}

MR_RESULT mr_manifest_encode_secret(const mr_manifest_secret *s, mr_buf *o)
{
    MR_GUARD(put_key(o, "Type", true));
    MR_GUARD(put_str(o, &s->type));
    MR_GUARD(put_key(o, "Size", false));
    MR_GUARD(put_u64(o, s->size));
    MR_GUARD(put_key(o, "Shared", false));
    MR_GUARD(put_bool(o, s->shared));
    MR_GUARD(put_key(o, "UserDefined", false));
    MR_GUARD(put_bool(o, s->user_defined));
    MR_GUARD(put_key(o, "Cert", false));
    MR_GUARD(put_bytes(o, &s->cert.raw)); /* Certificate.MarshalJSON = json.Marshal(c.Raw) */
    MR_GUARD(put_key(o, "ValidFor", false));
    MR_GUARD(put_u64(o, s->valid_for));
    MR_GUARD(put_key(o, "Private", false));
    MR_GUARD(put_bytes(o, &s->private_key));
    MR_GUARD(put_key(o, "Public", false));
    MR_GUARD(put_bytes(o, &s->public_key));
    return mr_buf_append_u8(o, '}');
}
