/* SPDX-License-Identifier: Apache-2.0 */
/* Shared set-up for the network-layer fuzz targets: one server without sockets, with inline
 * echo handlers on a virtual client listener and a virtual mesh listener. */
#ifndef MR_FUZZ_SERVER_HARNESS_H
#define MR_FUZZ_SERVER_HARNESS_H

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "coordinator/server/internal.h"

static mr_srv *fz_srv;
static int fz_client = -1, fz_mesh = -1, fz_plain = -1;

static void fz_echo(mr_srv_request *r, void *arg)
{
    (void)arg;
    mr_srv_strlist l;
    if (mr_ok(mr_srv_query_values(mr_srv_req_query(r), "s", false, &l)))
        mr_srv_strlist_free(&l);
    MR_IGNORE(mr_srv_resp_header(r, "x-echo", mr_srv_req_path(r)));
    mr_srv_resp_send(r, 200, "application/octet-stream", mr_srv_req_body(r));
}

static void fz_grpc(mr_srv_request *r, void *arg)
{
    (void)arg;
    mr_slice b = mr_srv_req_body(r);
    if (b.len > 0 && b.ptr[0] == 'x')
        mr_srv_grpc_fail(r, 7, "denied: 100%\n");
    else
        mr_srv_grpc_reply(r, b);
}

/* Takes the body only when the client asks for it: the withheld-body path gets fuzzed too. */
static bool fz_precheck(const mr_srv_request *r, void *arg)
{
    (void)arg;
    return mr_srv_req_header(r, "x-take") != NULL;
}

static MR_RESULT fz_setup(void)
{
    mr_srv_limits lim;
    mr_srv_limits_default(&lim);
    lim.max_header_bytes = 4096;
    lim.max_body_bytes = 4096;
    lim.max_grpc_msg_bytes = 2048;
    lim.h2_max_streams = 16;
    MR_GUARD(mr_srv_new(&lim, 1, &fz_srv));
    MR_GUARD(mr_srv_listen_virtual(fz_srv, MR_SRV_LISTENER_CLIENT, &fz_client));
    MR_GUARD(mr_srv_listen_virtual(fz_srv, MR_SRV_LISTENER_MESH, &fz_mesh));
    MR_GUARD(mr_srv_listen_virtual(fz_srv, MR_SRV_LISTENER_PLAIN, &fz_plain));
    MR_GUARD(mr_srv_route(fz_srv, fz_client, "GET", "/status", MR_SRV_ROUTE_INLINE, fz_echo, NULL));
    MR_GUARD(mr_srv_route(fz_srv, fz_client, "POST", "/manifest", MR_SRV_ROUTE_INLINE, fz_echo,
                          NULL));
    MR_GUARD(mr_srv_route(fz_srv, fz_client, "POST", "/secrets", MR_SRV_ROUTE_INLINE, fz_echo,
                          NULL));
    MR_GUARD(mr_srv_route_body(fz_srv, fz_client, "POST", "/secrets", 4096, fz_precheck));
    MR_GUARD(mr_srv_route(fz_srv, fz_plain, "GET", "/metrics", MR_SRV_ROUTE_INLINE, fz_echo, NULL));
    return mr_srv_grpc_method(fz_srv, fz_mesh, "rpc.Marble", "Activate", MR_SRV_ROUTE_INLINE,
                              fz_grpc, NULL);
}

static void fz_init(void)
{
    if (fz_srv != NULL)
        return;
    mr_log_init(MR_LOG_FATAL, MR_LOG_JSON);
    if (!mr_ok(fz_setup()))
        abort();
}

/* Feeds data in pieces whose sizes come from the first byte, running the loop in between so
 * that answers are produced while more input arrives. */
static void fz_feed(int listener, mr_srv_proto proto, const uint8_t *data, size_t size)
{
    fz_init();
    mr_srv_conn *c = mr_srv_conn_new_virtual(fz_srv, listener, proto);
    if (c == NULL)
        abort();
    size_t step = size > 0 ? (size_t)(data[0] % 64) + 1 : 1;
    mr_cursor cur;
    mr_cursor_init(&cur, data, size);
    while (mr_cursor_remaining(&cur) > 0 && !c->closed) {
        size_t n = mr_cursor_remaining(&cur) < step ? mr_cursor_remaining(&cur) : step;
        mr_slice part;
        if (!mr_ok(mr_cursor_view(&cur, n, &part)))
            break;
        evbuffer_add(c->in, part.ptr, part.len);
        mr_srv_conn_process(c);
        event_base_loop(fz_srv->base, EVLOOP_NONBLOCK);
        evbuffer_drain(c->out, evbuffer_get_length(c->out));
        if (!c->closed && c->h1_req == NULL && c->state == CONN_H1_HEAD)
            mr_srv_conn_process(c);
    }
    mr_srv_conn_free_virtual(c);
    event_base_loop(fz_srv->base, EVLOOP_NONBLOCK); /* drop answers for the closed conn */
    mr_error_clear();
}

#endif
