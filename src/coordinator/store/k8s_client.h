/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small client of the Kubernetes API for the Coordinator's kubernetes store backend: Secrets
 * and ConfigMaps of one namespace read and written whole (with resourceVersion compare-and-
 * swap), and the addresses behind a Service from its EndpointSlices. HTTP/2 over TLS
 * (coordinator/rpc), JSON with jansson.
 *
 * In-cluster configuration (defaults): the API at KUBERNETES_SERVICE_HOST/PORT (or the same
 * names with EDG_ in front, which enclave runtimes pass on), the service-account token, CA and
 * namespace in /var/run/secrets/kubernetes.io/serviceaccount/. The token file is read again
 * when it changes (projected tokens rotate).
 *
 * Errors: an API that cannot be reached, answers 429 or 5xx, or does not answer within
 * timeout_ms fails with MR_ERR_UNAVAILABLE "kubernetes API unavailable: ..."; any other
 * refusal (401, 403, 422, ...) with MR_ERR_INTERNAL "kubernetes refused the request: <code>
 * <reason>: <message>".
 *
 * Threads: any number of threads may call at once (a small pool of connections).
 */
#ifndef MR_COORDINATOR_STORE_K8S_CLIENT_H
#define MR_COORDINATOR_STORE_K8S_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "common/result.h"

typedef struct mr_k8s mr_k8s;

typedef struct mr_k8s_config {
    const char *host;       /* NULL: (EDG_)KUBERNETES_SERVICE_HOST */
    const char *port;       /* NULL: (EDG_)KUBERNETES_SERVICE_PORT, else 443 */
    const char *sa_dir;     /* NULL: /var/run/secrets/kubernetes.io/serviceaccount */
    const char *ns;         /* NULL: <sa_dir>/namespace */
    unsigned timeout_ms;    /* 0: 5000 */
} mr_k8s_config;

MR_RESULT mr_k8s_open(const mr_k8s_config *cfg, mr_k8s **out);
void mr_k8s_close(mr_k8s *k);
const char *mr_k8s_namespace(const mr_k8s *k);

/* One data entry of an object (its bytes, decoded). */
typedef struct mr_k8s_entry {
    char *name;
    mr_buf value; /* MR_BUF_SECRET: entries may be sealed key material */
} mr_k8s_entry;

typedef struct mr_k8s_obj {
    bool found;
    char rv[64];          /* metadata.resourceVersion */
    mr_k8s_entry *items;
    size_t count;
} mr_k8s_obj;
void mr_k8s_obj_free(mr_k8s_obj *o);
/* The entry called name, or NULL. */
const mr_k8s_entry *mr_k8s_obj_entry(const mr_k8s_obj *o, const char *name);

typedef enum mr_k8s_kind { MR_K8S_SECRET = 0, MR_K8S_CONFIGMAP = 1 } mr_k8s_kind;

/* GET (a quorum read: the newest committed object); out->found = false for 404. */
MR_RESULT mr_k8s_get(mr_k8s *k, mr_k8s_kind kind, const char *name, mr_k8s_obj *out);

/* Writes the object with exactly these entries (Secret: data; ConfigMap: binaryData) and the
 * label app.kubernetes.io/part-of=marblerun. rv NULL creates it (POST); otherwise it replaces
 * the object whose resourceVersion is rv (PUT). *conflict when the object was created or
 * changed by someone else first (409): nothing was written. new_rv receives the written
 * object's resourceVersion. */
MR_RESULT mr_k8s_put(mr_k8s *k, mr_k8s_kind kind, const char *name, const char *rv,
                     const mr_k8s_entry *items, size_t n, bool *conflict, char new_rv[64]);

/* The label the kubernetes store puts on its state Secrets (value: the state's name), so a
 * watch selects exactly them. */
#define MR_K8S_STATE_LABEL "marblerun.edgeless.systems/state"
/* True for a usable label value: 1 to 63 of [A-Za-z0-9._-], alphanumeric at both ends. */
bool mr_k8s_label_ok(const char *v);
/* mr_k8s_put with one more label, MR_K8S_STATE_LABEL=label (NULL: none). */
MR_RESULT mr_k8s_put_labeled(mr_k8s *k, mr_k8s_kind kind, const char *name, const char *rv,
                             const char *label, const mr_k8s_entry *items, size_t n,
                             bool *conflict, char new_rv[64]);

/* Deletes the object (absent is fine). With rv, only while its resourceVersion is rv. */
MR_RESULT mr_k8s_delete(mr_k8s *k, mr_k8s_kind kind, const char *name, const char *rv);

/* Every ready address of the Service's EndpointSlices (label kubernetes.io/service-name) with
 * the port called port_name, appended to peers as "host:port" joined by commas ("[v6]:port"
 * for IPv6). */
MR_RESULT mr_k8s_service_peers(mr_k8s *k, const char *service, const char *port_name,
                               mr_buf *peers);

/* The parsers of the API's answers, on their own for tests and fuzzing: a Secret (data) or
 * ConfigMap (binaryData) object, and an EndpointSliceList (the peers, as mr_k8s_service_peers
 * appends them). Malformed answers fail with MR_ERR_PROTOCOL. */
MR_RESULT mr_k8s_parse_object(mr_k8s_kind kind, mr_slice body, mr_k8s_obj *out);
MR_RESULT mr_k8s_parse_peers(mr_slice body, const char *port_name, mr_buf *peers);

/* ---- watches ----
 * A watch (GET ...?watch=1) answers with one JSON event per line:
 * {"type":"ADDED|MODIFIED|DELETED|BOOKMARK|ERROR","object":{...}}. */
typedef enum mr_k8s_event_type {
    MR_K8S_EV_ADDED = 0,
    MR_K8S_EV_MODIFIED,
    MR_K8S_EV_DELETED,
    MR_K8S_EV_BOOKMARK,
    MR_K8S_EV_ERROR,
} mr_k8s_event_type;

typedef struct mr_k8s_event {
    mr_k8s_event_type type;
    char name[256];  /* metadata.name ("" for BOOKMARK and ERROR) */
    mr_k8s_obj obj;  /* ADDED/MODIFIED/DELETED: parsed as mr_k8s_parse_object does; BOOKMARK:
                      * only obj.rv */
    int code;        /* ERROR: the Status object's code (410: the resourceVersion is gone) */
    char message[256]; /* ERROR: its message */
} mr_k8s_event;
void mr_k8s_event_free(mr_k8s_event *ev);

/* Takes one complete line (without its newline) off the front of acc: *got false while no
 * newline has arrived yet. A line longer than max_line fails with MR_ERR_TOO_LARGE. */
MR_RESULT mr_k8s_take_line(mr_buf *acc, size_t max_line, mr_buf *line, bool *got);
/* Parses one event line. Malformed events fail with MR_ERR_PROTOCOL. */
MR_RESULT mr_k8s_parse_watch_event(mr_k8s_kind kind, mr_slice line, mr_k8s_event *ev);

/* A streaming GET of path on a connection of its own (not the pool), for watches: *conn and
 * *stream are the caller's to close (mr_rpc_stream_close, then mr_rpc_close). */
struct mr_rpc_conn;
struct mr_rpc_stream;
MR_RESULT mr_k8s_stream_get(mr_k8s *k, const char *path, size_t max_buf, uint64_t deadline_ms,
                            struct mr_rpc_conn **conn, struct mr_rpc_stream **stream);

/* A watch of the namespace's objects of one kind with a label selector, on its own thread:
 * every object event goes to fn (on that thread). It starts at resource version rv ("" or
 * NULL: the current objects first, as ADDED events), reconnects after a broken stream with a
 * bounded backoff from the last version seen, and starts over from the current objects when
 * that version is gone (410). */
typedef void (*mr_k8s_watch_fn)(void *ud, const mr_k8s_event *ev);
typedef struct mr_k8s_watch mr_k8s_watch;
MR_RESULT mr_k8s_watch_start(mr_k8s *k, mr_k8s_kind kind, const char *selector, const char *rv,
                             mr_k8s_watch_fn fn, void *ud, mr_k8s_watch **out);
/* Stops the thread (within a fraction of a second) and frees the watch. NULL-safe. */
void mr_k8s_watch_stop(mr_k8s_watch *w);
/* Events handed to fn, and reconnects after the first connection, so far. */
void mr_k8s_watch_counts(mr_k8s_watch *w, uint64_t *events, uint64_t *reconnects);

#endif
