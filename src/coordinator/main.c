/* SPDX-License-Identifier: Apache-2.0 */
/*
 * marblerun-coordinator: reads its configuration from the environment (docs/configuration.md),
 * opens the core (sealed state or a fresh CA), applies EDG_STARTUP_MANIFEST, and serves the
 * client API, the mesh API and, when configured, the metrics listener until SIGTERM/SIGINT.
 *
 *   marblerun-coordinator                 run the daemon
 *   marblerun-coordinator --help | -h     usage on stdout, exit 0
 *   marblerun-coordinator --version       "marblerun-coordinator <version>", exit 0
 * Any other argument: usage on stderr, exit 2.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/collateral.h"
#include "attest/dcap.h"
#include "attest/issuer.h"
#include "attest/snp_source.h"
#include "common/alloc.h"
#include "common/config.h"
#include "common/file.h"
#include "common/log.h"
#include "coordinator/api/api.h"
#include "coordinator/core/core.h"
#include "coordinator/server/server.h"
#include "crypto/rsa_pool.h"

#ifndef MR_VERSION
#define MR_VERSION "0.0.0"
#endif
#ifndef MR_COMMIT
#define MR_COMMIT "unknown"
#endif

#define MAX_DNS 64
#define MANIFEST_MAX ((size_t)16 << 20)
#define RSA_POOL_KEYS 8

typedef struct daemon {
    char *dns_buf;
    const char *dns[MAX_DNS];
    size_t n_dns;
    mr_issuer *issuer;
    mr_attest_roots *roots;
    mr_collateral_source *collateral;
    mr_snp_source *snp;
    mr_core *core;
    mr_rsa_pool *rsa_pool;
    mr_srv *srv;
    mr_api *api;
    unsigned stop_grace_ms;
} daemon_t;

/* EDG_COORDINATOR_DNS_NAMES: split on ',' without trimming (spec §1.1). */
static MR_RESULT split_dns(daemon_t *d)
{
    d->dns_buf = mr_strdup(mr_config_get("EDG_COORDINATOR_DNS_NAMES"));
    MR_ENSURE_ALLOC(d->dns_buf);
    for (char *p = d->dns_buf;;) {
        MR_ENSURE(d->n_dns < MAX_DNS, MR_ERR_USAGE, "EDG_COORDINATOR_DNS_NAMES: too many names");
        d->dns[d->n_dns++] = p;
        char *comma = strchr(p, ',');
        if (comma == NULL)
            break;
        *comma = '\0';
        p = comma + 1;
    }
    return MR_SUCCESS;
}

static bool simulation_requested(void)
{
    return mr_config_bool("EDG_COORDINATOR_SIMULATION") || mr_config_bool("OE_SIMULATION");
}

static MR_RESULT open_attestation(daemon_t *d)
{
    if (!simulation_requested()) {
        MR_GUARD(mr_issuer_open(NULL, &d->issuer));
        if (mr_issuer_get_kind(d->issuer) == MR_ISSUER_SIMULATION) {
            mr_issuer_free(d->issuer);
            d->issuer = NULL;
        }
    }
    if (d->issuer != NULL) {
        MR_GUARD(mr_attest_roots_from_config(&d->roots));
        MR_GUARD(mr_collateral_source_from_config(&d->collateral));
        MR_GUARD(mr_snp_source_from_config(&d->snp));
    }
    return MR_SUCCESS;
}

static MR_RESULT client_cert(void *arg, X509 **cert, EVP_PKEY **key)
{
    return mr_core_client_identity(arg, cert, key);
}

static MR_RESULT mesh_cert(void *arg, X509 **cert, EVP_PKEY **key)
{
    return mr_core_mesh_identity(arg, cert, key);
}

static MR_RESULT startup_manifest(daemon_t *d)
{
    mr_result res = MR_FAILURE;
    const char *path = mr_config_get("EDG_STARTUP_MANIFEST");
    if (path == NULL)
        return MR_SUCCESS;
    mr_buf m;
    mr_core_recovery_secrets secrets = {0};
    mr_buf_init(&m, MANIFEST_MAX, 0);
    MR_GUARD_OUT(mr_file_read(path, MANIFEST_MAX, &m));
    MR_GUARD_OUT(mr_core_set_manifest(d->core, m.data, m.len, &secrets));
    if (secrets.count > 0)
        MR_LOG_WARN("the startup manifest defines recovery keys, but its recovery secrets are "
                    "only returned by POST /manifest; they are not shown here");
    res = MR_SUCCESS;
out:
    if (!mr_ok(res))
        mr_error_prefix("applying EDG_STARTUP_MANIFEST %s", path);
    mr_core_recovery_secrets_free(&secrets);
    mr_buf_free(&m);
    return res;
}

/* The network layer's limits under hostile load (docs/security.md). */
static MR_RESULT server_limits(mr_srv_limits *l)
{
    uint64_t client = 0, mesh = 0, per_source = 0, handshake = 0, idle = 0, budget = 0;
    MR_GUARD(mr_config_u64("EDG_COORDINATOR_CLIENT_MAX_CONNS", &client));
    MR_GUARD(mr_config_u64("EDG_COORDINATOR_MESH_MAX_CONNS", &mesh));
    MR_GUARD(mr_config_u64("EDG_COORDINATOR_MAX_CONNS_PER_SOURCE", &per_source));
    MR_GUARD(mr_config_u64("EDG_COORDINATOR_HANDSHAKE_TIMEOUT", &handshake));
    MR_GUARD(mr_config_u64("EDG_COORDINATOR_IDLE_TIMEOUT", &idle));
    MR_GUARD(mr_config_u64("EDG_COORDINATOR_BODY_BUDGET", &budget));
    MR_ENSURE(client > 0 && client <= 1000000 && mesh > 0 && mesh <= 1000000, MR_ERR_USAGE,
              "EDG_COORDINATOR_CLIENT_MAX_CONNS and EDG_COORDINATOR_MESH_MAX_CONNS must be "
              "between 1 and 1000000");
    MR_ENSURE(handshake > 0 && handshake <= 3600 && idle > 0 && idle <= 86400, MR_ERR_USAGE,
              "EDG_COORDINATOR_HANDSHAKE_TIMEOUT must be 1..3600 and "
              "EDG_COORDINATOR_IDLE_TIMEOUT 1..86400 seconds");
    /* a budget must hold at least one largest body of its listener (8 MiB REST, 4 MiB gRPC) */
    MR_ENSURE(budget >= ((uint64_t)8 << 20) + 5 && budget <= ((uint64_t)1 << 40), MR_ERR_USAGE,
              "EDG_COORDINATOR_BODY_BUDGET must be at least 8388613 bytes (one largest body)");
    mr_srv_limits_default(l);
    l->max_conns = (unsigned)client;
    l->mesh_max_conns = (unsigned)mesh;
    l->max_conns_per_source = per_source == 0 || per_source > 1000000 ? UINT_MAX
                                                                      : (unsigned)per_source;
    l->handshake_timeout_ms = (unsigned)handshake * 1000u;
    l->idle_timeout_ms = (unsigned)idle * 1000u;
    l->body_budget = (size_t)budget;
    return MR_SUCCESS;
}

static MR_RESULT serve(daemon_t *d)
{
    int client = -1, mesh = -1, metrics = -1, keys = -1;
    const char *prom = mr_config_get("EDG_COORDINATOR_PROMETHEUS_ADDR");
    mr_srv_limits lim;
    MR_GUARD(server_limits(&lim));
    lim.stop_grace_ms = d->stop_grace_ms;
    MR_GUARD(mr_srv_new(&lim, 0, &d->srv));
    MR_GUARD(mr_srv_listen(d->srv, MR_SRV_LISTENER_CLIENT, mr_config_get("EDG_COORDINATOR_CLIENT_ADDR"),
                           client_cert, d->core, &client));
    MR_GUARD(mr_srv_listen(d->srv, MR_SRV_LISTENER_MESH, mr_config_get("EDG_COORDINATOR_MESH_ADDR"),
                           mesh_cert, d->core, &mesh));
    if (prom != NULL)
        MR_GUARD(mr_srv_listen(d->srv, MR_SRV_LISTENER_PLAIN, prom, NULL, NULL, &metrics));
    if (mr_core_shared(d->core))
        MR_GUARD(mr_srv_listen(d->srv, MR_SRV_LISTENER_MESH,
                               mr_config_get("EDG_COORDINATOR_KEY_SERVER_ADDR"),
                               mr_core_key_identity, d->core, &keys));
    mr_api_config ac = {.core = d->core, .srv = d->srv, .client_listener = client,
                        .mesh_listener = mesh, .metrics_listener = metrics,
                        .has_key_listener = keys >= 0, .key_listener = keys,
                        .version = MR_VERSION, .commit = MR_COMMIT};
    MR_GUARD(mr_api_new(&ac, &d->api));
    MR_LOG_INFO("Coordinator ready", MR_F_UINT("clientPort", mr_srv_listener_port(d->srv, client)),
                MR_F_UINT("meshPort", mr_srv_listener_port(d->srv, mesh)),
                MR_F_UINT("keyPort", keys >= 0 ? mr_srv_listener_port(d->srv, keys) : 0),
                MR_F_INT("state", mr_core_state(d->core)));
    return mr_srv_run(d->srv, true);
}

static MR_RESULT run(daemon_t *d)
{
    mr_key_type curve = MR_KEY_EC_P256;
    const char *c = mr_config_get("EDG_COORDINATOR_KEY_CURVE");
    if (c != NULL && strcmp(c, "P-384") == 0)
        curve = MR_KEY_EC_P384;
    else
        MR_ENSURE(c == NULL || strcmp(c, "P-256") == 0, MR_ERR_USAGE,
                  "EDG_COORDINATOR_KEY_CURVE must be P-256 or P-384, not %s", c);
    uint64_t grace = 0;
    MR_GUARD(mr_config_u64("EDG_COORDINATOR_STOP_GRACE_MS", &grace));
    MR_ENSURE(grace >= 1 && grace <= 3600000, MR_ERR_USAGE,
              "EDG_COORDINATOR_STOP_GRACE_MS must be between 1 and 3600000, not %llu",
              (unsigned long long)grace);
    d->stop_grace_ms = (unsigned)grace;
    MR_GUARD(split_dns(d));
    MR_GUARD(open_attestation(d));
    mr_core_config cfg = {
        .seal_dir = mr_config_get("EDG_COORDINATOR_SEAL_DIR"),
        .kek = mr_config_get("EDG_COORDINATOR_KEK"),
        .dns_names = d->dns,
        .n_dns_names = d->n_dns,
        .curve = curve,
        .issuer = d->issuer,
        .verify = {.roots = d->roots, .source = d->collateral, .snp = d->snp},
        .dev_mode = mr_config_bool("EDG_COORDINATOR_DEV_MODE"),
    };
    mr_core_dist_config dist = {
        .etcd_endpoints = mr_config_get("EDG_COORDINATOR_ETCD_ENDPOINTS"),
        .etcd_prefix = mr_config_get("EDG_COORDINATOR_ETCD_PREFIX"),
        .etcd_ca = mr_config_get("EDG_COORDINATOR_ETCD_CA"),
        .etcd_cert = mr_config_get("EDG_COORDINATOR_ETCD_CERT"),
        .etcd_key = mr_config_get("EDG_COORDINATOR_ETCD_KEY"),
        .peers = mr_config_get("EDG_COORDINATOR_PEERS"),
    };
    const char *store = getenv("EDG_COORDINATOR_STORE");
    const char *upstream = getenv("EDG_STORE_BACKEND");
    if ((store == NULL || store[0] == '\0') && upstream != NULL && strcmp(upstream, "k8s-secret") == 0)
        store = "kubernetes";
    if (store == NULL || store[0] == '\0')
        store = "embedded";
    MR_ENSURE(strcmp(store, "embedded") == 0 || strcmp(store, "etcd") == 0 ||
                  strcmp(store, "kubernetes") == 0,
              MR_ERR_USAGE, "EDG_COORDINATOR_STORE must be embedded, etcd or kubernetes, not %s",
              store);
    dist.kubernetes = strcmp(store, "kubernetes") == 0;
    dist.k8s_namespace = mr_config_get("EDG_K8S_NAMESPACE");
    dist.k8s_state = mr_config_get("EDG_K8S_STATE_NAME");
    dist.k8s_service = mr_config_get("EDG_K8S_SERVICE_NAME");
    dist.k8s_sa_dir = mr_config_get("EDG_K8S_SERVICE_ACCOUNT_DIR");
    dist.k8s_kek_map = mr_config_get("EDG_K8S_KEK_MAP");
    if (strcmp(store, "embedded") != 0)
        cfg.dist = &dist;
    /* cert-rsa 2048 keys come from a pool refilled at nice 19 (rsa_pool.h); it generates
     * nothing until a manifest's cert-rsa secret first asks for a key. */
    MR_GUARD(mr_rsa_pool_new(2048, RSA_POOL_KEYS, &d->rsa_pool));
    mr_rsa_pool_set_default(d->rsa_pool);
    MR_GUARD(mr_core_open(&cfg, &d->core));
    MR_GUARD(startup_manifest(d));
    return serve(d);
}

static void usage(FILE *f)
{
    fputs("Usage: marblerun-coordinator [--help | --version]\n"
          "\n"
          "Runs the MarbleRun-C Coordinator: the client REST API (HTTPS), the marble gRPC mesh\n"
          "API and, when configured, the plain-HTTP metrics listener, until SIGTERM or SIGINT.\n"
          "It takes no other arguments: configuration is by environment variables, all of them\n"
          "listed in docs/configuration.md (printed by marblerun-config-doc). The main ones:\n"
          "\n"
          "  EDG_COORDINATOR_CLIENT_ADDR      client API listen address (default :4433)\n"
          "  EDG_COORDINATOR_MESH_ADDR        mesh API listen address (default :2001)\n"
          "  EDG_COORDINATOR_PROMETHEUS_ADDR  metrics listen address (default: none)\n"
          "  EDG_COORDINATOR_DNS_NAMES        SANs of the Coordinator certificates (default localhost)\n"
          "  EDG_COORDINATOR_SEAL_DIR         sealed state directory\n"
          "  EDG_COORDINATOR_STORE            embedded (default), etcd or kubernetes\n"
          "                                   (default ./marblerun-coordinator-data)\n"
          "  EDG_COORDINATOR_KEK              key-encryption key: gramine, file:<path> or none\n"
          "  EDG_COORDINATOR_KEY_CURVE        P-256 (default) or P-384\n"
          "  EDG_STARTUP_MANIFEST             manifest applied at startup\n"
          "  EDG_COORDINATOR_SIMULATION=1     simulation mode: marble quotes are NOT checked\n"
          "  EDG_COORDINATOR_DEV_MODE=1       development logging\n"
          "\n"
          "  --help, -h   show this help\n"
          "  --version    print the version\n",
          f);
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        bool one = argc == 2;
        if (one && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
            usage(stdout);
            return fflush(stdout) == 0 ? 0 : 1;
        }
        if (one && strcmp(argv[1], "--version") == 0) {
            printf("marblerun-coordinator %s\n", MR_VERSION);
            return fflush(stdout) == 0 ? 0 : 1;
        }
        fprintf(stderr, "marblerun-coordinator: unknown argument \"%s\"\n\n", argv[one ? 1 : 2]);
        usage(stderr);
        return 2;
    }
    daemon_t d;
    memset(&d, 0, sizeof(d));
    mr_log_init_from_env(mr_config_bool("EDG_COORDINATOR_DEV_MODE"));
    MR_LOG_INFO("starting MarbleRun-C Coordinator", MR_F_STR("version", MR_VERSION),
                MR_F_STR("commit", MR_COMMIT));
    int rc = 0;
    if (!mr_ok(run(&d))) {
        MR_LOG_FATAL("Coordinator failed", MR_F_ERR(),
                     MR_F_STR("at", mr_error_get()->file != NULL ? mr_error_get()->file : ""),
                     MR_F_INT("line", mr_error_get()->line));
        rc = 1;
    }
    /* The server goes first. After a stop that timed out, handlers (h_activate, ...) can still
     * be running on the worker pool or be queued there, and they use the api and the core:
     * mr_srv_free closes the remaining connections and frees the pool, which runs the queued
     * jobs and joins every worker. Only then are the api and the core freed. */
    mr_srv_free(d.srv);
    d.srv = NULL;
    mr_api_free(d.api);
    mr_core_free(d.core);
    mr_snp_source_free(d.snp);
    mr_rsa_pool_free(d.rsa_pool); /* also clears the default */
    mr_collateral_source_free(d.collateral);
    mr_attest_roots_free(d.roots);
    mr_issuer_free(d.issuer);
    mr_free(d.dns_buf);
    return rc;
}
