/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Template engine, execution: the functions MarbleRun gives templates (index, pem, hex, raw,
 * base64, string), see template_exec_int.h.
 */
#include "manifest/template_exec_int.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#include "common/codec.h"

static MR_RESULT to_scratch(exec *x, size_t off, val *out)
{
    *out = (val){.kind = V_STRING, .scratch = true, .off = off,
                 .bytes = {.ptr = NULL, .len = x->scratch.len - off}};
    return MR_SUCCESS;
}

/* Exact size of an encoded function result. */
static size_t encoded_len(uint8_t fn, const char *label, size_t n)
{
    if (fn == FN_HEX)
        return n > SIZE_MAX / 2 ? SIZE_MAX : 2 * n;
    size_t b = mr_b64_encoded_len(n);
    if (fn == FN_BASE64)
        return b;
    return b + (b + 63) / 64 + 2 * strlen(label) + sizeof("-----BEGIN -----\n-----END -----\n") - 1;
}

/* Where a function result goes: straight into the output for the action's last command
 * (no copy), else the scratch buffer. */
static MR_RESULT finish_result(exec *x, mr_buf *dst, size_t off, val *out)
{
    if (dst == x->out) {
        *out = (val){.kind = V_EMITTED};
        return MR_SUCCESS;
    }
    return to_scratch(x, off, out);
}

/* PEM block as Go's pem.EncodeToMemory writes it (64-character lines), encoded in place in
 * dst: no temporary buffer, so rendering a key costs no extra (secret) allocation. */
static MR_RESULT pem_into(mr_buf *dst, const char *label, mr_slice der)
{
    size_t start = dst->len;
    size_t b = mr_b64_encoded_len(der.len);
    size_t lines = (b + 63) / 64;
    mr_result res = MR_FAILURE;
    MR_GUARD(mr_buf_reserve(dst, encoded_len(FN_PEM, label, der.len)));
    MR_GUARD_OUT(mr_buf_append_str(dst, "-----BEGIN "));
    MR_GUARD_OUT(mr_buf_append_str(dst, label));
    MR_GUARD_OUT(mr_buf_append_str(dst, "-----\n"));
    size_t at = dst->len;
    MR_GUARD_OUT(mr_b64_encode_buf(der.ptr, der.len, MR_B64_STD, dst));
    MR_GUARD_OUT(mr_buf_reserve(dst, lines));
    for (size_t i = lines; i-- > 0;) {
        size_t k = b - 64 * i < 64 ? b - 64 * i : 64;
        uint8_t *to = dst->data + at + 65 * i;
        memmove(to, dst->data + at + 64 * i, k);
        to[k] = '\n';
    }
    dst->len += lines;
    MR_GUARD_OUT(mr_buf_append_str(dst, "-----END "));
    MR_GUARD_OUT(mr_buf_append_str(dst, label));
    MR_GUARD_OUT(mr_buf_append_str(dst, "-----\n"));
    res = MR_SUCCESS;
out:
    if (!mr_ok(res) && dst->data != NULL) {
        OPENSSL_cleanse(dst->data + start, dst->len - start);
        dst->len = start;
    }
    return res;
}

/* EncodeSecretDataToRaw's type switch; returns the Go error text or NULL. */
static const char *raw_bytes(const val *v, mr_slice *out)
{
    switch (v->kind) {
    case V_BYTES:
    case V_PRIVATE:
    case V_PUBLIC:
    case V_CERT:
        *out = v->bytes;
        break;
    case V_SECRET:
        *out = mr_tmpl_secret_part_(v->sec, P_PUB);
        break;
    case V_NONE:
    case V_NIL:
        return "secret does not exist";
    default:
        return "invalid secret type";
    }
    return out->len == 0 ? "tried to parse secret with empty value" : NULL;
}

static MR_RESULT fn_pem(exec *x, mr_buf *dst, const val *v, val *out, const char **goerr)
{
    const char *label;
    switch (v->kind) {
    case V_CERT:
        label = "CERTIFICATE";
        break;
    case V_PUBLIC:
        label = "PUBLIC KEY";
        break;
    case V_PRIVATE:
        label = "PRIVATE KEY";
        break;
    case V_NONE:
    case V_NIL:
        *goerr = "secret does not exist";
        return MR_SUCCESS;
    default:
        *goerr = "invalid secret type for pem encoding";
        return MR_SUCCESS;
    }
    if (v->bytes.len == 0) {
        *goerr = "tried to parse secret with empty value";
        return MR_SUCCESS;
    }
    size_t off = dst->len;
    MR_GUARD(mr_tmpl_check_room_(x, dst, encoded_len(FN_PEM, label, v->bytes.len)));
    MR_GUARD(pem_into(dst, label, v->bytes));
    return finish_result(x, dst, off, out);
}

static MR_RESULT fn_string(const val *v, val *out, const char **goerr)
{
    static const char *const only_plain =
        "only secrets of type plain are allowed to use string encoding for environment variables";
    if (v->kind == V_NONE || v->kind == V_NIL) {
        *goerr = "secret does not exist";
        return MR_SUCCESS;
    }
    if (v->kind != V_SECRET || v->sec->type == NULL || strcmp(v->sec->type, "plain") != 0) {
        *goerr = only_plain;
        return MR_SUCCESS;
    }
    mr_slice pub = mr_tmpl_secret_part_(v->sec, P_PUB);
    if (pub.len > 0 && memchr(pub.ptr, 0, pub.len) != NULL) {
        *goerr = "secret contains null bytes";
        return MR_SUCCESS;
    }
    mr_slice raw;
    *goerr = raw_bytes(v, &raw);
    if (*goerr == NULL)
        *out = (val){.kind = V_STRING, .bytes = raw};
    return MR_SUCCESS;
}

static MR_RESULT fn_encode(exec *x, mr_buf *dst, uint8_t fn, const val *v, val *out,
                           const char **goerr)
{
    mr_slice raw;
    *goerr = raw_bytes(v, &raw);
    if (*goerr != NULL)
        return MR_SUCCESS;
    if (fn == FN_RAW) {
        *out = (val){.kind = V_STRING, .bytes = raw};
        return MR_SUCCESS;
    }
    size_t off = dst->len;
    MR_GUARD(mr_tmpl_check_room_(x, dst, encoded_len(fn, "", raw.len)));
    if (fn == FN_HEX)
        MR_GUARD(mr_hex_encode_buf(raw.ptr, raw.len, dst));
    else
        MR_GUARD(mr_b64_encode_buf(raw.ptr, raw.len, MR_B64_STD, dst));
    return finish_result(x, dst, off, out);
}

static bool is_int_like(const val *v)
{
    return v->kind == V_INT || v->kind == V_UINT || v->kind == V_UINT8;
}

/* One step of Go's builtin index on *item. On failure *err is the Go error text. */
static bool index_one(exec *x, val *item, const val *ix, const char **err)
{
    switch (item->kind) {
    case V_MAP: {
        if (ix->kind == V_NIL) {
            *err = "value is nil; should be of type string";
            return false;
        }
        if (ix->kind != V_STRING) {
            snprintf(x->goerr, sizeof(x->goerr), "value has type %s; should be string",
                     mr_tmpl_type_name_(ix));
            *err = x->goerr;
            return false;
        }
        mr_slice key = mr_tmpl_vbytes_(x, ix);
        *item = mr_tmpl_v_secret_(mr_tmpl_lookup_(x, item->map, key.ptr, key.len));
        return true;
    }
    case V_PUBLIC:
    case V_PRIVATE:
    case V_BYTES:
    case V_STRING: {
        if (ix->kind == V_NIL) {
            *err = "cannot index slice/array with nil";
            return false;
        }
        if (!is_int_like(ix)) {
            snprintf(x->goerr, sizeof(x->goerr), "cannot index slice/array with type %s",
                     mr_tmpl_type_name_(ix));
            *err = x->goerr;
            return false;
        }
        int64_t i = ix->kind == V_INT ? ix->i : (int64_t)ix->u;
        mr_slice b = mr_tmpl_vbytes_(x, item);
        if (i < 0 || (uint64_t)i > b.len) {
            snprintf(x->goerr, sizeof(x->goerr), "index out of range: %lld", (long long)i);
            *err = x->goerr;
            return false;
        }
        if ((uint64_t)i == b.len) { /* Go's check lets this through; reflect then panics */
            *err = item->kind == V_STRING ? "reflect: string index out of range"
                                          : "reflect: slice index out of range";
            return false;
        }
        *item = (val){.kind = V_UINT8, .u = b.ptr[i]};
        return true;
    }
    default:
        snprintf(x->goerr, sizeof(x->goerr), "can't index item of type %s",
                 mr_tmpl_type_name_(item));
        *err = x->goerr;
        return false;
    }
}

MR_RESULT mr_tmpl_call_fn_(exec *x, mr_buf *dst, uint8_t fn, const val *argv, size_t argc,
                           val *out, const char **goerr)
{
    *goerr = NULL;
    switch (fn) {
    case FN_INDEX:
        if (argv[0].kind == V_NIL) {
            *goerr = "index of untyped nil";
            return MR_SUCCESS;
        }
        *out = argv[0];
        for (size_t i = 1; i < argc; i++)
            if (!index_one(x, out, &argv[i], goerr))
                break;
        return MR_SUCCESS;
    case FN_PEM:
        return fn_pem(x, dst, &argv[0], out, goerr);
    case FN_STRING:
        return fn_string(&argv[0], out, goerr);
    default:
        return fn_encode(x, dst, fn, &argv[0], out, goerr);
    }
}
