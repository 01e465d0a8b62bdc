/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers shared by the command groups; see client.h. */
#include <openssl/crypto.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "common/alloc.h"
#include "common/codec.h"
#include "crypto/hash.h"

json_t *mr_cli_json_b64(const void *data, size_t len)
{
    mr_buf b; /* may hold a secret in base64: wiped on free */
    mr_buf_init(&b, 0, MR_BUF_SECRET);
    json_t *s = NULL;
    if (mr_ok(mr_b64_encode_buf(data, len, MR_B64_STD, &b)))
        s = json_stringn(b.len > 0 ? (const char *)b.data : "", b.len);
    mr_buf_free(&b);
    return s;
}

MR_RESULT mr_cli_json_b64_member(json_t *obj, const char *key, mr_buf *out)
{
    json_t *v = mr_cli_json_get(obj, key);
    if (v == NULL || json_is_null(v))
        return MR_SUCCESS;
    MR_ENSURE(json_is_string(v), MR_ERR_PROTOCOL, "invalid response: %s is not a string", key);
    if (!mr_ok(mr_b64_decode_buf(json_string_value(v), json_string_length(v), MR_B64_STD, 0,
                                 out))) {
        mr_error_prefix("invalid response: decoding %s", key);
        return MR_FAILURE;
    }
    return MR_SUCCESS;
}

MR_RESULT mr_cli_sha256_hex(const void *data, size_t len, char hex[65])
{
    static const char digits[] = "0123456789abcdef";
    uint8_t h[MR_SHA256_LEN];
    MR_GUARD(mr_sha256(data, len, h));
    for (size_t i = 0; i < sizeof(h); i++) {
        hex[2 * i] = digits[h[i] >> 4];
        hex[2 * i + 1] = digits[h[i] & 15];
    }
    hex[64] = '\0';
    return MR_SUCCESS;
}

MR_RESULT mr_cli_save_recovery(const char *file, json_t *secrets)
{
    mr_result res = MR_FAILURE;
    json_t *doc = json_pack("{sO}", "RecoverySecrets", secrets);
    char *text = NULL;
    MR_ENSURE_ALLOC_OUT(doc);
    text = json_dumps(doc, JSON_COMPACT);
    MR_ENSURE_ALLOC_OUT(text);
    if (file == NULL || file[0] == '\0') {
        printf("%s\n", text);
    } else {
        MR_GUARD_OUT(mr_cli_write_file(file, text, strlen(text)));
        printf("Recovery data saved to: %s\n", file);
    }
    res = MR_SUCCESS;
out:
    mr_wipe_free(text); /* jansson allocates with mr_wipe_malloc (common/alloc.c) */
    json_decref(doc);
    return res;
}

MR_RESULT mr_cli_require_flag(const mr_cli *cli, const char *name)
{
    const char *v = mr_cli_str(cli, name);
    MR_ENSURE(v != NULL && v[0] != '\0', MR_ERR_USAGE, "required flag(s) \"%s\" not set", name);
    return MR_SUCCESS;
}

bool mr_cli_want_json(const mr_cli *cli) { return mr_cli_output_json(cli); }

void mr_cli_json_wipe(json_t *v)
{
    if (json_is_string(v)) {
        /* jansson owns the bytes and hands out only a const view; they are overwritten in
         * place right before the release, which jansson does not observe */
        const char *view = json_string_value(v);
        char *bytes = NULL;
        memcpy(&bytes, &view, sizeof(bytes));
        OPENSSL_cleanse(bytes, json_string_length(v));
    } else if (json_is_object(v)) {
        const char *k;
        json_t *e;
        json_object_foreach(v, k, e) {
            mr_cli_json_wipe(e);
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) {
            mr_cli_json_wipe(e);
        }
    }
}
