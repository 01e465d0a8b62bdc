/* SPDX-License-Identifier: Apache-2.0 */
#include "common/config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const mr_config_var vars[] = {
    /* Coordinator (spec/coordinator.md §1.1, §12.13) */
    {"EDG_COORDINATOR_CLIENT_ADDR", ":4433", "coordinator",
     "Listen address of the client REST API (HTTPS)."},
    {"EDG_COORDINATOR_MESH_ADDR", ":2001", "coordinator",
     "Listen address of the marble gRPC mesh API."},
    {"EDG_COORDINATOR_PROMETHEUS_ADDR", NULL, "coordinator",
     "Listen address of the plain-HTTP metrics server (/metrics, /events, /healthz, /readyz); "
     "unset disables it."},
    {"EDG_COORDINATOR_DNS_NAMES", "localhost", "coordinator",
     "Comma-separated SANs of the Coordinator certificates (IP entries become IP SANs)."},
    {"EDG_COORDINATOR_SEAL_DIR", NULL, "coordinator",
     "Directory of the sealed state; default <cwd>/marblerun-coordinator-data."},
    {"EDG_COORDINATOR_DEV_MODE", "0", "coordinator",
     "1 = development logging and tolerate quote-generation errors at startup."},
    {"EDG_COORDINATOR_SIMULATION", "0", "coordinator",
     "1 = simulation mode: no own quote, marble quotes are not checked (insecure)."},
    {"EDG_COORDINATOR_KEY_CURVE", "P-256", "coordinator",
     "Curve of the Coordinator CA keys: P-256 (default, fast) or P-384 (MarbleRun 1.9 parity)."},
    {"EDG_COORDINATOR_KEK", NULL, "coordinator",
     "Key-encryption-key provider: gramine, file:<path> or none; default file:<seal dir>/kek "
     "outside an enclave."},
    {"EDG_STARTUP_MANIFEST", NULL, "coordinator",
     "Path of a manifest applied at startup as POST /manifest would; errors are fatal."},
    {"EDG_CWD", NULL, "all", "Working directory used for default paths instead of getcwd()."},
    {"OE_SIMULATION", NULL, "all", "1 = simulation mode (as with OpenEnclave/EGo)."},
    {"EDG_HTTP_ERROR_LOG_LEVEL", "error", "coordinator",
     "Level of TLS-handshake and HTTP-server error logs."},
    {"EDG_COORDINATOR_STOP_GRACE_MS", "10000", "coordinator",
     "Milliseconds SIGTERM/SIGINT waits for in-flight requests before the remaining connections "
     "are closed (1..3600000); requests already being handled still finish before exit."},
    /* A group of instances sharing one state (MarbleRun-C; docs/distributed.md) */
    {"EDG_COORDINATOR_STORE", "embedded", "coordinator",
     "Where the state lives: embedded (the seal directory), etcd (shared by every instance "
     "with the same etcd settings) or kubernetes (Secrets of the namespace, shared by the "
     "instances of one deployment)."},
    {"EDG_STORE_BACKEND", NULL, "coordinator",
     "MarbleRun's name for the same choice: k8s-secret means kubernetes (used when "
     "EDG_COORDINATOR_STORE is not set)."},
    {"EDG_K8S_NAMESPACE", NULL, "coordinator",
     "kubernetes store: namespace of the state; default the service account's."},
    {"EDG_K8S_STATE_NAME", "marblerun-state", "coordinator",
     "kubernetes store: name of the state Secret (its shards are <name>-<n>)."},
    {"EDG_K8S_SERVICE_NAME", "coordinator-key-api", "coordinator",
     "kubernetes store: the key-API Service whose EndpointSlices list the peer instances."},
    {"EDG_K8S_KEK_MAP", "marblerun-sealed-kek", "coordinator",
     "kubernetes store: the ConfigMap that keeps every instance's sealed copy of the state key "
     "(entry = the sealing host's id), for pods that come back without their seal directory."},
    {"EDG_K8S_SERVICE_ACCOUNT_DIR", "/var/run/secrets/kubernetes.io/serviceaccount",
     "coordinator", "kubernetes store: where the service-account token, CA and namespace are."},
    {"KUBERNETES_SERVICE_HOST", NULL, "coordinator",
     "kubernetes store: the API server (also read as EDG_KUBERNETES_SERVICE_HOST)."},
    {"KUBERNETES_SERVICE_PORT", "443", "coordinator",
     "kubernetes store: the API server's port (also read as EDG_KUBERNETES_SERVICE_PORT)."},
    {"EDG_COORDINATOR_ETCD_ENDPOINTS", NULL, "coordinator",
     "etcd store: comma-separated http:// or https:// URLs of the etcd members."},
    {"EDG_COORDINATOR_ETCD_PREFIX", "/marblerun/", "coordinator",
     "etcd store: key prefix of the shared state."},
    {"EDG_COORDINATOR_ETCD_CA", NULL, "coordinator",
     "etcd store: PEM file of the CA that signs the etcd members' certificates (https)."},
    {"EDG_COORDINATOR_ETCD_CERT", NULL, "coordinator",
     "etcd store: PEM client certificate presented to etcd (with EDG_COORDINATOR_ETCD_KEY)."},
    {"EDG_COORDINATOR_ETCD_KEY", NULL, "coordinator",
     "etcd store: PEM private key of EDG_COORDINATOR_ETCD_CERT."},
    {"EDG_COORDINATOR_KEY_SERVER_ADDR", ":5433", "coordinator",
     "etcd store: listen address of the key API (keypb.API) that hands the state key to peer "
     "instances of the same enclave product."},
    {"EDG_COORDINATOR_PEERS", NULL, "coordinator",
     "etcd store: comma-separated host:port of the peers' key APIs (a host name stands for all "
     "its addresses); asked for the state key when this instance has no sealed copy."},
    /* Limits under hostile load (MarbleRun-C; docs/security.md) */
    {"EDG_COORDINATOR_CLIENT_MAX_CONNS", "1024", "coordinator",
     "Connections the client API holds at once; when full, the longest-idle one is closed for "
     "a new client."},
    {"EDG_COORDINATOR_MESH_MAX_CONNS", "4096", "coordinator",
     "Connections the mesh API holds at once (its own budget: a flood of the client API takes "
     "none of it)."},
    {"EDG_COORDINATOR_MAX_CONNS_PER_SOURCE", "256", "coordinator",
     "Connections one peer address may hold on each listener; 0 = no limit."},
    {"EDG_COORDINATOR_HANDSHAKE_TIMEOUT", "5", "coordinator",
     "Seconds a new connection has to complete its TLS handshake."},
    {"EDG_COORDINATOR_IDLE_TIMEOUT", "60", "coordinator",
     "Seconds a connection may stay open without a request."},
    {"EDG_COORDINATOR_BODY_BUDGET", "33554432", "coordinator",
     "Bytes of request bodies the Coordinator holds in memory at once, all listeners together "
     "(one peer address: a quarter; bodies over 64 KiB: three quarters); beyond, requests get "
     "503 / RESOURCE_EXHAUSTED."},
    /* Logging */
    {"EDG_LOG_FORMAT", NULL, "all", "json or console; default json (console in dev mode)."},
    {"EDG_LOG_LEVEL", NULL, "all", "debug, info, warn or error; default info."},
    {"EDG_DEBUG_LOGGING", "0", "all", "1 = debug level."},
    /* Attestation (issue/verify) */
    {"EDG_ATTESTATION", "auto", "all",
     "Quote source: auto, gramine, occlum, tsm, simulation or softsgx."},
    {"EDG_ATTESTATION_ROOT_CA", NULL, "all",
     "PEM file of the attestation root CA; default the embedded Intel SGX Root CA. Any other "
     "root is logged loudly."},
    {"EDG_ATTESTATION_COLLATERAL", NULL, "all",
     "File or directory with DCAP collateral (TCB Info, QE Identity, CRLs) in JSON."},
    {"EDG_ATTESTATION_PCCS_URL", NULL, "all",
     "Base URL of a PCCS or Intel PCS to fetch collateral (TLS certificate checked for Intel's "
     "PCS only; connected to directly, http_proxy/https_proxy are not used)."},
    {"EDG_ATTESTATION_TSM_DIR", "/sys/kernel/config/tsm/report", "all",
     "configfs-tsm report directory of a TDX or SEV-SNP guest (docs/cvm.md); tests point it at "
     "a fake one."},
    {"EDG_ATTESTATION_SNP_VCEK", NULL, "all",
     "SEV-SNP: where VCEKs that a report's evidence does not carry come from: a directory "
     "(<CHIP_ID hex>-<REPORTED_TCB hex>.der, optional cert_chain.pem) or the AMD KDS base URL "
     "(https://kdsintf.amd.com); cached in memory. Unset: only VCEKs carried in the evidence."},
    {"EDG_ATTESTATION_SNP_PRODUCT", NULL, "all",
     "SEV-SNP: Milan or Genoa: the only AMD root accepted and the KDS product; unset = any "
     "compiled-in root, KDS product from the report's CPUID (Milan for version 2 reports)."},
    {"EDG_ATTESTATION_SNP_ROOT", NULL, "all",
     "SEV-SNP, TESTS ONLY: PEM file of a self-signed ARK used instead of AMD's compiled-in "
     "roots (marblerun-softsnp); logged loudly."},
    {"EDG_SOFTSGX_DIR", NULL, "all", "softsgx (tests only): directory made by marblerun-softsgx init."},
    {"EDG_SOFTSGX_MRENCLAVE", NULL, "all", "softsgx: MRENCLAVE (hex) of quotes made in-process."},
    {"EDG_SOFTSGX_MRSIGNER", NULL, "all", "softsgx: MRSIGNER (hex) of quotes made in-process."},
    {"EDG_SOFTSGX_ISVPRODID", "0", "all", "softsgx: ISVPRODID of quotes made in-process."},
    {"EDG_SOFTSGX_ISVSVN", "0", "all", "softsgx: ISVSVN of quotes made in-process."},
    {"EDG_SOFTSGX_DEBUG", "0", "all", "softsgx: 1 = set the DEBUG attribute."},
    /* Marble (spec/marble-cli-k8s.md §1.2) */
    {"EDG_MARBLE_COORDINATOR_ADDR", "localhost:2001", "marble",
     "host:port of the Coordinator mesh API."},
    {"EDG_MARBLE_TYPE", NULL, "marble", "Marble type; must name an entry of the manifest's Marbles."},
    {"EDG_MARBLE_DNS_NAMES", "localhost", "marble", "Comma-separated SANs of the marble certificate."},
    {"EDG_MARBLE_UUID_FILE", NULL, "marble", "UUID file; default <cwd>/uuid."},
    {"EDG_MARBLE_KEY_CURVE", "P-384", "marble",
     "Curve of the premain's ephemeral TLS key: P-384 (MarbleRun 1.9 parity) or P-256."},
    {"EDG_MARBLE_COORDINATOR_ROOT_CA", NULL, "marble",
     "Pin the Coordinator: PEM of its root certificate, or a file holding it (off by default)."},
    {"EDG_MARBLE_COORDINATOR_CLIENT_ADDR", NULL, "marble",
     "host:port of the Coordinator client API, for pinning; default <mesh host>:4433."},
    {"EDG_MARBLE_ATTESTATION", NULL, "marble",
     "Quote source of the premain (auto, gramine, occlum, tsm, simulation, softsgx); wins over "
     "EDG_ATTESTATION. tsm: a TDX or SEV-SNP guest's configfs-tsm (docs/cvm.md)."},
    {"EDG_MARBLE_COORDINATOR_POLICY", NULL, "marble",
     "Pin the Coordinator by measurement: JSON era-style policy file (off by default)."},
    /* Transparent TLS (docs/ttls.md) */
    {"EDG_MARBLE_TTLS", "on", "marble",
     "off = do not preload libmarble-ttls.so when the marble has a TTLS config (the application "
     "handles MARBLE_TTLS_CONFIG itself)."},
    {"EDG_MARBLE_TTLS_LIB", NULL, "marble",
     "Path of libmarble-ttls.so; default: next to the premain, or in ../lib from it."},
    {"EDG_MARBLE_TTLS_HANDSHAKE_TIMEOUT_MS", "10000", "marble",
     "TTLS: a TLS handshake not finished after this many milliseconds fails (100..3600000)."},
    {"EDG_MARBLE_TTLS_ACCEPT_WAIT_MS", "1000", "marble",
     "TTLS: how long a blocking accept() waits for the handshake before it returns the "
     "connection anyway (0..60000); a handshake that fails within it gives ECONNABORTED."},
    {"EDG_MARBLE_TTLS_CONNECT_WAIT_MS", "10000", "marble",
     "TTLS: how long a blocking connect() waits for the handshake (0..3600000); a handshake "
     "that fails within it gives ECONNREFUSED, one still running is finished in the background "
     "(the server may not have called accept() yet)."},
    {"EDG_MARBLE_TTLS_THREADS", "1", "marble", "TTLS: engine threads per process (1..16)."},
};

const mr_config_var *mr_config_table(size_t *count)
{
    *count = MR_ARRAY_LEN(vars);
    return vars;
}

static const mr_config_var *lookup(const char *name)
{
    for (size_t i = 0; i < MR_ARRAY_LEN(vars); i++)
        if (strcmp(vars[i].name, name) == 0)
            return &vars[i];
    return NULL;
}

const char *mr_config_get(const char *name)
{
    const mr_config_var *v = lookup(name);
    const char *val = getenv(name);
    if (val != NULL && val[0] != '\0')
        return val;
    return v != NULL ? v->def : NULL;
}

bool mr_config_bool(const char *name)
{
    const char *v = mr_config_get(name);
    if (v == NULL)
        return false;
    return strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0 ||
           strcasecmp(v, "on") == 0;
}

MR_RESULT mr_config_u64(const char *name, uint64_t *out)
{
    const char *v = mr_config_get(name);
    MR_ENSURE(v != NULL, MR_ERR_USAGE, "environment variable not set: %s", name);
    char *end = NULL;
    errno = 0;
    MR_ENSURE(v[0] >= '0' && v[0] <= '9', MR_ERR_USAGE, "%s: not an unsigned number: %s", name,
              v);
    unsigned long long x = strtoull(v, &end, 10);
    MR_ENSURE(errno == 0 && end != NULL && *end == '\0', MR_ERR_USAGE,
              "%s: not an unsigned number: %s", name, v);
    *out = (uint64_t)x;
    return MR_SUCCESS;
}

void mr_config_write_markdown(FILE *f)
{
    fprintf(f, "# Configuration\n\nEvery environment variable MarbleRun-C reads. An empty value "
               "counts as unset.\n\n| Variable | Default | Used by | Meaning |\n|---|---|---|---|\n");
    for (size_t i = 0; i < MR_ARRAY_LEN(vars); i++)
        fprintf(f, "| `%s` | %s%s%s | %s | %s |\n", vars[i].name, vars[i].def ? "`" : "",
                vars[i].def ? vars[i].def : "unset", vars[i].def ? "`" : "", vars[i].component,
                vars[i].help);
}
