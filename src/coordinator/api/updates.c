/* SPDX-License-Identifier: Apache-2.0 */
/* Updates: /update, /update-manifest, /update-cancel and their /api/v2 forms (spec §4.5.6,
 * §4.5.7, §12.3, §12.4, §12.7). */
#include <string.h>

#include "common/alloc.h"
#include "coordinator/api/api_int.h"

#define ALL_ACKED "All users have acknowledged the update manifest. Update successfully applied"
#define CANCELLED "Update successfully cancelled"

/* The status of a refused acknowledgment or cancel: 404 when there is no update. */
static int refusal_status(void) { return mr_error_get()->cat == MR_ERR_NOT_FOUND ? 404 : 500; }

static MR_RESULT users_json(const mr_core_update_result *u, mr_buf *out)
{
    if (u->n_missing_users == 0)
        return mr_buf_append_str(out, "null");
    MR_GUARD(mr_buf_append_u8(out, '['));
    for (size_t i = 0; i < u->n_missing_users; i++) {
        if (i > 0)
            MR_GUARD(mr_buf_append_u8(out, ','));
        MR_GUARD(jw_str(out, u->missing_users[i]));
    }
    return mr_buf_append_u8(out, ']');
}

static MR_RESULT recovery_field(const mr_core_update_result *u, mr_buf *out)
{
    if (!u->applied || u->recovery.count == 0)
        return MR_SUCCESS;
    bool first = true;
    MR_GUARD(mr_buf_append_str(out, ",\"recoverySecrets\":{"));
    for (size_t i = 0; i < u->recovery.count; i++) {
        MR_GUARD(jw_key(out, &first, u->recovery.items[i].name));
        MR_GUARD(jw_b64(out, u->recovery.items[i].value.data, u->recovery.items[i].value.len));
    }
    return mr_buf_append_u8(out, '}');
}

/* "<n> users still need to acknowledge the update manifest" (singular for 1). */
static MR_RESULT still_need(uint64_t n, mr_buf *out)
{
    return mr_buf_printf(out, "%llu %s to acknowledge the update manifest", (unsigned long long)n,
                         n == 1 ? "user still needs" : "users still need");
}

/* ---- log ---- */

/* v2: the lines of the log (without the final line ending) as an array of strings. */
static MR_RESULT log_lines(const mr_buf *log, mr_buf *out)
{
    MR_GUARD(mr_buf_append_str(out, "{\"updateLog\":["));
    size_t end = log->len;
    while (end > 0 && (log->data[end - 1] == '\n' || log->data[end - 1] == ' '))
        end--;
    for (size_t start = 0, n = 0; start < end; n++) {
        const uint8_t *nl = memchr(log->data + start, '\n', end - start);
        size_t stop = nl != NULL ? (size_t)(nl - log->data) : end;
        if (n > 0)
            MR_GUARD(mr_buf_append_u8(out, ','));
        MR_GUARD(jw_strn(out, (const char *)log->data + start, stop - start));
        start = stop + 1;
    }
    return mr_buf_append_str(out, "]}");
}

/* The update log: v1 as one string, v2 as its lines. */
static MR_RESULT build_log(mr_api *a, bool v2, mr_buf *out)
{
    mr_result res = MR_FAILURE;
    mr_buf log;
    mr_buf_init(&log, 0, 0);
    MR_GUARD_OUT(mr_core_update_log(a->cfg.core, &log));
    if (v2)
        MR_GUARD_OUT(log_lines(&log, out));
    else
        MR_GUARD_OUT(jw_strn(out, (const char *)log.data, log.len));
    res = MR_SUCCESS;
out:
    mr_buf_free(&log);
    return res;
}

static void update_log(mr_srv_request *r, mr_api *a, bool v2)
{
    mr_buf out;
    mr_buf_init(&out, 0, 0);
    api_reply(r, build_log(a, v2, &out), &out);
    mr_buf_free(&out);
}

static void h_log_v1(mr_srv_request *r, void *arg) { update_log(r, arg, false); }
static void h_log_v2(mr_srv_request *r, void *arg) { update_log(r, arg, true); }

/* ---- apply / start ---- */

static void h_update_v1(mr_srv_request *r, void *arg)
{
    mr_api *a = arg;
    char user[API_USER_MAX];
    mr_core_update_result u;
    if (!api_user(a, r, false, user, sizeof(user)))
        return;
    mr_slice body = mr_srv_req_body(r);
    if (mr_ok(mr_core_update(a->cfg.core, user, body.ptr, body.len, &u)))
        api_success(r, NULL);
    else
        api_error(r, 400);
    mr_core_update_result_free(&u);
}

static MR_RESULT update_json(const mr_core_update_result *u, mr_buf *out)
{
    MR_GUARD(mr_buf_printf(out, "{\"missingAcknowledgments\":%llu,\"missingUsers\":",
                           (unsigned long long)u->missing));
    MR_GUARD(users_json(u, out));
    MR_GUARD(recovery_field(u, out));
    return mr_buf_append_u8(out, '}');
}

static void h_update_v2(mr_srv_request *r, void *arg)
{
    mr_api *a = arg;
    char user[API_USER_MAX];
    mr_core_update_result u;
    mr_buf m, out;
    bool present = false;
    memset(&u, 0, sizeof(u));
    mr_buf_init(&m, 0, 0);
    mr_buf_init(&out, 0, 0);
    if (!api_user(a, r, true, user, sizeof(user)))
        goto out;
    if (!mr_ok(jr_b64_field(mr_srv_req_body(r), "manifest", &m, &present))) {
        api_fail(r, 400);
        goto out;
    }
    if (!mr_ok(mr_core_update(a->cfg.core, user, m.data, m.len, &u))) {
        api_error(r, 500);
        goto out;
    }
    api_reply(r, update_json(&u, &out), &out);
out:
    mr_core_update_result_free(&u);
    mr_buf_free(&m);
    mr_buf_free(&out);
}

/* ---- pending ---- */

static MR_RESULT pending_json(mr_api *a, mr_buf *out)
{
    mr_result res = MR_FAILURE;
    mr_core_update_result u;
    mr_buf raw;
    bool first = true;
    memset(&u, 0, sizeof(u));
    mr_buf_init(&raw, 0, 0);
    MR_GUARD_OUT(mr_core_update_pending(a->cfg.core, &raw, &u));
    MR_GUARD_OUT(mr_buf_append_u8(out, '{'));
    MR_GUARD_OUT(jw_key(out, &first, "manifest"));
    MR_GUARD_OUT(jw_b64(out, raw.data != NULL ? raw.data : (const uint8_t *)"", raw.len));
    MR_GUARD_OUT(mr_buf_append_str(out, ",\"message\":\""));
    MR_GUARD_OUT(still_need(u.missing, out));
    MR_GUARD_OUT(mr_buf_append_str(out, "\",\"missingUsers\":"));
    MR_GUARD_OUT(users_json(&u, out));
    MR_GUARD_OUT(mr_buf_append_u8(out, '}'));
    res = MR_SUCCESS;
out:
    mr_core_update_result_free(&u);
    mr_buf_free(&raw);
    return res;
}

static void h_pending(mr_srv_request *r, void *arg)
{
    mr_buf out;
    mr_buf_init(&out, 0, 0);
    if (mr_ok(pending_json(arg, &out))) {
        api_success(r, &out);
    } else {
        /* the handler maps every error to 404 (spec §12.4) */
        mr_srv_reply_error(r, 404, "no update in progress");
    }
    mr_buf_free(&out);
}

/* ---- acknowledge ---- */

static MR_RESULT ack_message(const mr_core_update_result *u, bool v2, mr_buf *out)
{
    if (u->applied || u->missing == 0)
        return mr_buf_append_str(out, ALL_ACKED);
    if (!v2)
        return still_need(u->missing, out);
    MR_GUARD(mr_buf_printf(out, "%llu %s to acknowledge the update manifest.\nThe following users "
                                "have not yet accepted: ",
                           (unsigned long long)u->missing,
                           u->missing == 1 ? "user still needs" : "users still need"));
    for (size_t i = 0; i < u->n_missing_users; i++)
        MR_GUARD(mr_buf_printf(out, "%s%s", i ? ", " : "", u->missing_users[i]));
    return MR_SUCCESS;
}

/* v1: the message as a string; v2: an object with the missing users and, once the update
 * is applied, the recovery secrets. */
static MR_RESULT ack_json(const mr_core_update_result *u, bool v2, mr_buf *out)
{
    mr_result res = MR_FAILURE;
    mr_buf msg;
    bool first = true;
    mr_buf_init(&msg, 0, 0);
    MR_GUARD_OUT(ack_message(u, v2, &msg));
    if (!v2) {
        MR_GUARD_OUT(jw_strn(out, (const char *)msg.data, msg.len));
    } else {
        MR_GUARD_OUT(mr_buf_append_u8(out, '{'));
        MR_GUARD_OUT(jw_key(out, &first, "message"));
        MR_GUARD_OUT(jw_strn(out, (const char *)msg.data, msg.len));
        MR_GUARD_OUT(mr_buf_append_str(out, ",\"missingUsers\":"));
        MR_GUARD_OUT(users_json(u, out));
        MR_GUARD_OUT(mr_buf_printf(out, ",\"missingAcknowledgments\":%llu",
                                   (unsigned long long)u->missing));
        MR_GUARD_OUT(recovery_field(u, out));
        MR_GUARD_OUT(mr_buf_append_u8(out, '}'));
    }
    res = MR_SUCCESS;
out:
    mr_buf_free(&msg);
    return res;
}

static void ack(mr_srv_request *r, mr_api *a, bool v2)
{
    char user[API_USER_MAX];
    mr_core_update_result u;
    mr_buf m, out;
    bool present = false;
    memset(&u, 0, sizeof(u));
    mr_buf_init(&m, 0, 0);
    mr_buf_init(&out, 0, 0);
    if (!api_user(a, r, v2, user, sizeof(user)))
        goto out;
    mr_slice body = mr_srv_req_body(r);
    if (v2 && !mr_ok(jr_b64_field(body, "manifest", &m, &present))) {
        api_fail(r, 400);
        goto out;
    }
    if (!v2 && !mr_ok(mr_buf_set(&m, body.ptr, body.len))) {
        api_error(r, 500);
        goto out;
    }
    if (!mr_ok(mr_core_update_ack(a->cfg.core, user, m.data, m.len, &u))) {
        api_error(r, refusal_status());
        goto out;
    }
    api_reply(r, ack_json(&u, v2, &out), &out);
out:
    mr_core_update_result_free(&u);
    mr_buf_free(&m);
    mr_buf_free(&out);
}

static void h_ack_v1(mr_srv_request *r, void *arg) { ack(r, arg, false); }
static void h_ack_v2(mr_srv_request *r, void *arg) { ack(r, arg, true); }

/* ---- cancel ---- */

static void cancel(mr_srv_request *r, mr_api *a, bool v2)
{
    char user[API_USER_MAX];
    mr_buf out;
    mr_buf_init(&out, 0, 0);
    if (!api_user(a, r, v2, user, sizeof(user)))
        goto out;
    if (!mr_ok(mr_core_update_cancel(a->cfg.core, user))) {
        api_error(r, refusal_status());
        goto out;
    }
    api_reply(r, mr_buf_append_str(&out, v2 ? "{\"message\":\"" CANCELLED "\"}" : "\"" CANCELLED "\""), &out);
out:
    mr_buf_free(&out);
}

static void h_cancel_v1(mr_srv_request *r, void *arg) { cancel(r, arg, false); }
static void h_cancel_v2(mr_srv_request *r, void *arg) { cancel(r, arg, true); }

MR_RESULT api_register_updates(mr_api *a)
{
    static const struct {
        const char *method, *path;
        mr_srv_handler_fn fn;
    } routes[] = {
        {"GET", "/update", h_log_v1},
        {"GET", "/api/v2/update", h_log_v2},
        {"POST", "/update", h_update_v1},
        {"POST", "/api/v2/update", h_update_v2},
        {"GET", "/update-manifest", h_pending},
        {"GET", "/api/v2/update-manifest", h_pending},
        {"POST", "/update-manifest", h_ack_v1},
        {"POST", "/api/v2/update-manifest", h_ack_v2},
        {"POST", "/update-cancel", h_cancel_v1},
        {"POST", "/api/v2/update-cancel", h_cancel_v2},
    };
    for (size_t i = 0; i < MR_ARRAY_LEN(routes); i++)
        MR_GUARD(api_route(a, a->cfg.client_listener, routes[i].method, routes[i].path, 0,
                           routes[i].fn));
    return MR_SUCCESS;
}
