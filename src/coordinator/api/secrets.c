/* SPDX-License-Identifier: Apache-2.0 */
/* GET/POST /secrets and /api/v2/secrets (spec §4.5.8, §4.5.9, §12.4). */
#include <jansson.h>
#include <string.h>
#include <strings.h>

#include "common/alloc.h"
#include "common/codec.h"
#include "common/jsonf.h"
#include "coordinator/api/api_int.h"

#define MAX_NAMES 256

/* ---- GET ---- */

/* The names of a GET: at least one, at most MAX_NAMES, none empty (upstream's texts). */
static MR_RESULT check_names(const mr_srv_strlist *names)
{
    MR_ENSURE(names->n > 0, MR_ERR_USAGE,
              "invalid query: endpoint requires at least one query parameter");
    MR_ENSURE(names->n <= MAX_NAMES, MR_ERR_USAGE, "invalid query: more than %d secrets requested",
              MAX_NAMES);
    for (size_t i = 0; i < names->n; i++)
        MR_ENSURE(names->v[i][0] != '\0', MR_ERR_USAGE,
                  "malformed query string: empty query parameter");
    return MR_SUCCESS;
}

/* {"secrets":<map>} (v2). */
static MR_RESULT v2_secrets(const mr_buf *map, mr_buf *out)
{
    MR_GUARD(mr_buf_append_str(out, "{\"secrets\":"));
    MR_GUARD(mr_buf_append(out, map->data, map->len));
    return mr_buf_append_u8(out, '}');
}

static void get_secrets(mr_srv_request *r, mr_api *a, bool v2)
{
    char user[API_USER_MAX];
    mr_srv_strlist names = {0};
    mr_buf out, data;
    mr_buf_init(&out, 0, MR_BUF_SECRET);
    mr_buf_init(&data, 0, MR_BUF_SECRET);
    if (!api_user(a, r, v2, user, sizeof(user)))
        goto out;
    if (!mr_ok(mr_srv_query_values(mr_srv_req_query(r), "s", false, &names))) {
        api_error(r, 500);
        goto out;
    }
    if (!mr_ok(check_names(&names))) {
        api_client_error(r, v2, 400);
        goto out;
    }
    if (!mr_ok(mr_core_get_secrets(a->cfg.core, user, (const char *const *)names.v, names.n,
                                   &out))) {
        api_error(r, v2 ? 500 : 400);
        goto out;
    }
    mr_srv_resp_mark_secret(r);
    if (v2)
        api_reply(r, v2_secrets(&out, &data), &data);
    else
        api_success(r, &out);
out:
    mr_srv_strlist_free(&names);
    mr_buf_free(&out);
    mr_buf_free(&data);
}

static void h_get_v1(mr_srv_request *r, void *arg) { get_secrets(r, arg, false); }
static void h_get_v2(mr_srv_request *r, void *arg) { get_secrets(r, arg, true); }

/* ---- POST ---- */

typedef struct uploads {
    mr_core_user_secret items[MAX_NAMES];
    mr_buf bufs[MAX_NAMES][3];
    size_t n;
} uploads;

static void uploads_free(uploads *u)
{
    for (size_t i = 0; i < u->n; i++)
        for (int k = 0; k < 3; k++)
            mr_buf_free(&u->bufs[i][k]);
}

/* Finds a field by Go's rules (exact, else case-insensitive). */
static MR_RESULT bytes_field(json_t *obj, const char *name, const char *secret, bool allow_object,
                             bool *has, mr_buf *dst)
{
    json_t *v = mr_json_field(obj, name);
    *has = false;
    if (v == NULL || json_is_null(v))
        return MR_SUCCESS;
    if (allow_object && json_is_object(v)) {
        *has = true; /* an x509 object: accepted, but carries no usable certificate */
        return MR_SUCCESS;
    }
    MR_ENSURE(json_is_string(v), MR_ERR_USAGE,
              "json: cannot unmarshal value into Go struct field UserSecret.%s of type []uint8", name);
    *has = true;
    if (!mr_ok(mr_b64_decode_buf(json_string_value(v), json_string_length(v), MR_B64_STD,
                                 MR_B64_IGNORE_NEWLINES, dst))) {
        mr_error_prefix("secret %s: %s", secret, name);
        return MR_FAILURE;
    }
    return MR_SUCCESS;
}

static MR_RESULT parse_uploads(json_t *map, uploads *u)
{
    const char *name;
    json_t *v;
    MR_ENSURE(json_is_object(map), MR_ERR_USAGE,
              "json: cannot unmarshal value into Go value of type map[string]manifest.UserSecret");
    json_object_foreach(map, name, v)
    {
        MR_ENSURE(u->n < MAX_NAMES, MR_ERR_USAGE, "too many secrets in one request");
        MR_ENSURE(json_is_object(v) || json_is_null(v), MR_ERR_USAGE,
                  "json: cannot unmarshal value into Go value of type manifest.UserSecret");
        size_t i = u->n++;
        mr_core_user_secret *s = &u->items[i];
        mr_buf_init(&u->bufs[i][0], 0, 0);
        mr_buf_init(&u->bufs[i][1], 0, MR_BUF_SECRET);
        mr_buf_init(&u->bufs[i][2], 0, MR_BUF_SECRET);
        s->name = name;
        if (json_is_null(v))
            continue;
        MR_GUARD(bytes_field(v, "Cert", name, true, &s->has_cert, &u->bufs[i][0]));
        MR_GUARD(bytes_field(v, "Private", name, false, &s->has_private, &u->bufs[i][1]));
        MR_GUARD(bytes_field(v, "Key", name, false, &s->has_key, &u->bufs[i][2]));
        s->cert = mr_buf_slice(&u->bufs[i][0]);
        s->priv = mr_buf_slice(&u->bufs[i][1]);
        s->key = mr_buf_slice(&u->bufs[i][2]);
    }
    return MR_SUCCESS;
}

/* The "secrets" member of a v2 body as a new reference (absent or null: an empty map, for "no
 * new secrets defined" from the core). */
static MR_RESULT v2_map(json_t *root, mr_slice body, size_t consumed, json_t **map)
{
    /* Unlike upstream's json.Decoder, nothing may follow the object: a body that carries
     * private keys is taken exactly or not at all (docs/security.md). */
    MR_GUARD(jr_no_trailing(body, consumed));
    json_t *m = json_is_object(root) ? mr_json_field(root, "secrets") : NULL;
    if (m == NULL || json_is_null(m))
        m = json_object();
    else
        json_incref(m);
    MR_ENSURE_ALLOC(m);
    *map = m;
    return MR_SUCCESS;
}

/* The map of uploads in a POST body as a new reference in *map: v1 the body itself, v2 its
 * "secrets" member. */
static MR_RESULT upload_map(mr_slice body, bool v2, json_t **map)
{
    json_error_t jerr;
    json_t *root = json_loadb((const char *)body.ptr, body.len, v2 ? JSON_DISABLE_EOF_CHECK : 0,
                              &jerr);
    MR_ENSURE(root != NULL, MR_ERR_USAGE, "%s",
              body.len == 0 ? "unexpected end of JSON input" : jerr.text);
    if (!v2) {
        *map = root;
        return MR_SUCCESS;
    }
    mr_result res = v2_map(root, body, (size_t)jerr.position, map);
    json_decref(root);
    return res;
}

static MR_RESULT read_uploads(mr_slice body, bool v2, json_t **map, uploads *u)
{
    MR_GUARD(upload_map(body, v2, map));
    return parse_uploads(*map, u);
}

static void post_secrets(mr_srv_request *r, mr_api *a, bool v2)
{
    char user[API_USER_MAX];
    json_t *map = NULL; /* the uploads borrow their names from it */
    uploads *u = mr_calloc(1, sizeof(*u));
    if (u == NULL) {
        mr_srv_reply_error(r, 500, "out of memory");
        return;
    }
    if (!api_user(a, r, v2, user, sizeof(user)))
        goto out;
    if (!mr_ok(read_uploads(mr_srv_req_body(r), v2, &map, u))) {
        if (!v2)
            mr_error_prefix("unmarshaling secret manifest");
        api_client_error(r, v2, 400);
        goto out;
    }
    if (!mr_ok(mr_core_set_secrets(a->cfg.core, user, u->items, u->n)))
        api_error(r, v2 ? 500 : 400);
    else
        api_success(r, NULL);
out:
    json_decref(map);
    uploads_free(u);
    mr_free(u);
}

static void h_post_v1(mr_srv_request *r, void *arg) { post_secrets(r, arg, false); }
static void h_post_v2(mr_srv_request *r, void *arg) { post_secrets(r, arg, true); }

MR_RESULT api_register_secrets(mr_api *a)
{
    int l = a->cfg.client_listener;
    MR_GUARD(api_route(a, l, "GET", "/secrets", 0, h_get_v1));
    MR_GUARD(api_route(a, l, "GET", "/api/v2/secrets", 0, h_get_v2));
    MR_GUARD(api_route(a, l, "POST", "/secrets", 0, h_post_v1));
    return api_route(a, l, "POST", "/api/v2/secrets", 0, h_post_v2);
}
