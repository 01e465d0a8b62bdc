/* SPDX-License-Identifier: Apache-2.0 */
/* The mesh API: gRPC /rpc.Marble/Activate (spec §5). */
#include <string.h>

#include "common/alloc.h"
#include "coordinator/api/api_int.h"
#include "proto/coordinator.pb-c.h"

typedef struct resp_msg {
    Rpc__ActivationResp resp;
    Rpc__Parameters params;
    Rpc__Parameters__FilesEntry *files;
    Rpc__Parameters__FilesEntry **file_ptrs;
    Rpc__Parameters__EnvEntry *env;
    Rpc__Parameters__EnvEntry **env_ptrs;
} resp_msg;

static void resp_msg_free(resp_msg *m)
{
    mr_free(m->files);
    mr_free(m->file_ptrs);
    mr_free(m->env);
    mr_free(m->env_ptrs);
}

/* Builds the protobuf view of the core's answer; the bytes are borrowed from `a`. */
static MR_RESULT build_resp(const mr_core_activation_resp *a, resp_msg *m)
{
    memset(m, 0, sizeof(*m));
    rpc__activation_resp__init(&m->resp);
    rpc__parameters__init(&m->params);
    m->resp.parameters = &m->params;
    m->files = mr_calloc(a->n_files + 1, sizeof(*m->files));
    m->file_ptrs = mr_calloc(a->n_files + 1, sizeof(*m->file_ptrs)); // NOLINT(bugprone-sizeof-expression): array of pointers
    m->env = mr_calloc(a->n_env + 1, sizeof(*m->env));
    m->env_ptrs = mr_calloc(a->n_env + 1, sizeof(*m->env_ptrs)); // NOLINT(bugprone-sizeof-expression): array of pointers
    MR_ENSURE_ALLOC(m->files);
    MR_ENSURE_ALLOC(m->file_ptrs);
    MR_ENSURE_ALLOC(m->env);
    MR_ENSURE_ALLOC(m->env_ptrs);
    for (size_t i = 0; i < a->n_files; i++) {
        rpc__parameters__files_entry__init(&m->files[i]);
        m->files[i].key = a->files[i].name;
        m->files[i].value.data = a->files[i].value.data;
        m->files[i].value.len = a->files[i].value.len;
        m->file_ptrs[i] = &m->files[i];
    }
    for (size_t i = 0; i < a->n_env; i++) {
        rpc__parameters__env_entry__init(&m->env[i]);
        m->env[i].key = a->env[i].name;
        m->env[i].value.data = a->env[i].value.data;
        m->env[i].value.len = a->env[i].value.len;
        m->env_ptrs[i] = &m->env[i];
    }
    m->params.n_files = a->n_files;
    m->params.files = m->file_ptrs;
    m->params.n_env = a->n_env;
    m->params.env = m->env_ptrs;
    m->params.n_argv = a->argc;
    m->params.argv = a->argv;
    return MR_SUCCESS;
}

static void h_activate(mr_srv_request *r, void *arg)
{
    mr_api *a = arg;
    mr_slice body = mr_srv_req_body(r);
    Rpc__ActivationReq *req = rpc__activation_req__unpack(NULL, body.len, body.ptr);
    if (req == NULL) {
        mr_srv_grpc_fail(r, MR_GRPC_INTERNAL, "grpc: error unmarshalling request: invalid protobuf message");
        return;
    }
    mr_core_activation_req creq = {
        .quote = MR_SLICE(req->quote.data, req->quote.len),
        .csr = MR_SLICE(req->csr.data, req->csr.len),
        .marble_type = req->marbletype,
        .uuid = req->uuid,
    };
    api_count_activation(a, req->marbletype, req->uuid, false);
    creq.peer_cert = mr_srv_req_peer_leaf(r);
    mr_core_activation_resp resp;
    resp_msg msg;
    memset(&msg, 0, sizeof(msg));
    if (!mr_ok(mr_core_activate(a->cfg.core, &creq, &resp))) {
        mr_srv_grpc_fail_from(r, mr_error_get());
    } else if (!mr_ok(build_resp(&resp, &msg))) {
        mr_srv_grpc_fail(r, MR_GRPC_INTERNAL, "out of memory");
    } else {
        api_count_activation(a, req->marbletype, req->uuid, true);
        mr_srv_resp_mark_secret(r); /* keys and secrets of the marble */
        api_record_event(a, resp.marble_type, resp.uuid, creq.quote);
        mr_srv_grpc_reply_msg(r, &msg.resp.base);
    }
    resp_msg_free(&msg);
    mr_core_activation_resp_free(&resp);
    rpc__activation_req__free_unpacked(req, NULL);
}

MR_RESULT api_register_mesh(mr_api *a)
{
    return api_grpc_method(a, a->cfg.mesh_listener, "rpc.Marble", "Activate", h_activate);
}
