/* SPDX-License-Identifier: Apache-2.0 */
/* The premain flow up to applying the parameters (spec/marble-cli-k8s.md §1.2-§1.4). */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "attest/issuer.h"
#include "common/alloc.h"
#include "common/config.h"
#include "common/log.h"
#include "crypto/hash.h"
#include "marble/marble_int.h"
#include "proto/coordinator.pb-c.h"

#define PIN_MAX 128

MR_RESULT mr_marble_config_from_env(mr_marble_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->marble_type = mr_config_get("EDG_MARBLE_TYPE");
    MR_ENSURE(cfg->marble_type != NULL, MR_ERR_USAGE,
              "environment variable not set: EDG_MARBLE_TYPE");
    cfg->coordinator_addr = mr_config_get("EDG_MARBLE_COORDINATOR_ADDR");
    cfg->dns_names = mr_config_get("EDG_MARBLE_DNS_NAMES");
    if (cfg->coordinator_addr == NULL)
        cfg->coordinator_addr = "localhost:2001";
    if (cfg->dns_names == NULL)
        cfg->dns_names = "localhost";
    const char *uf = mr_config_get("EDG_MARBLE_UUID_FILE");
    if (uf != NULL) {
        int n = snprintf(cfg->uuid_file, sizeof(cfg->uuid_file), "%s", uf);
        MR_ENSURE(n > 0 && (size_t)n < sizeof(cfg->uuid_file), MR_ERR_USAGE,
                  "EDG_MARBLE_UUID_FILE too long");
    } else {
        char cwd[PATH_MAX];
        const char *base = mr_config_get("EDG_CWD");
        if (base == NULL) {
            MR_ENSURE(getcwd(cwd, sizeof(cwd)) != NULL, MR_ERR_IO,
                      "cannot determine the working directory");
            base = cwd;
        }
        int n = snprintf(cfg->uuid_file, sizeof(cfg->uuid_file), "%s/uuid", base);
        MR_ENSURE(n > 0 && (size_t)n < sizeof(cfg->uuid_file), MR_ERR_USAGE,
                  "UUID file path too long");
    }
    const char *curve = mr_config_get("EDG_MARBLE_KEY_CURVE");
    cfg->curve = MR_KEY_EC_P384;
    if (curve != NULL) {
        if (strcasecmp(curve, "P-256") == 0 || strcasecmp(curve, "P256") == 0)
            cfg->curve = MR_KEY_EC_P256;
        else
            MR_ENSURE(strcasecmp(curve, "P-384") == 0 || strcasecmp(curve, "P384") == 0,
                      MR_ERR_USAGE, "EDG_MARBLE_KEY_CURVE: want P-256 or P-384, got \"%s\"",
                      curve);
    }
    cfg->pin_root_ca = mr_config_get("EDG_MARBLE_COORDINATOR_ROOT_CA");
    cfg->pin_policy = mr_config_get("EDG_MARBLE_COORDINATOR_POLICY");
    const char *ca = mr_config_get("EDG_MARBLE_COORDINATOR_CLIENT_ADDR");
    if (ca != NULL) {
        int n = snprintf(cfg->client_addr, sizeof(cfg->client_addr), "%s", ca);
        MR_ENSURE(n > 0 && (size_t)n < sizeof(cfg->client_addr), MR_ERR_USAGE,
                  "EDG_MARBLE_COORDINATOR_CLIENT_ADDR too long");
    } else {
        /* the mesh host with the client API's default port */
        const char *a = cfg->coordinator_addr;
        const char *colon = strrchr(a, ':');
        size_t hl = colon != NULL ? (size_t)(colon - a) : strlen(a);
        int n = snprintf(cfg->client_addr, sizeof(cfg->client_addr), "%.*s:4433", (int)hl, a);
        MR_ENSURE(n > 0 && (size_t)n < sizeof(cfg->client_addr), MR_ERR_USAGE,
                  "client address too long");
    }
    return MR_SUCCESS;
}

/* Step 6: a quote binding SHA-256(cert DER); any issuer failure means an empty quote. */
static MR_RESULT get_quote(const mr_buf *cert_der, mr_buf *quote)
{
    uint8_t hash[32];
    mr_issuer *is = NULL;
    mr_tee_type tee = MR_TEE_NONE;
    MR_GUARD(mr_sha256(cert_der->data, cert_der->len, hash));
    MR_LOG_INFO("generating quote");
    /* EDG_MARBLE_ATTESTATION wins over EDG_ATTESTATION; TDX and SNP guests use configfs-tsm
     * (docs/cvm.md), whose SNP report travels with its auxblob (attest/evidence.h) */
    const char *mode = mr_config_get("EDG_MARBLE_ATTESTATION");
    mr_issuer_opts o = {.mode = mode, .mode_var = mode != NULL ? "EDG_MARBLE_ATTESTATION" : NULL};
    if (!mr_ok(mr_issuer_open(&o, &is)) || !mr_ok(mr_issuer_evidence(is, hash, 32, quote, &tee))) {
        char line[MR_ERR_MSG_MAX + 64];
        (void)snprintf(line, sizeof(line), "failed to get quote: %s. Proceeding in simulation mode",
                       mr_error_get()->msg);
        MR_LOG_WARN(line);
        mr_error_clear();
        mr_buf_reset(quote);
    }
    mr_issuer_free(is);
    return MR_SUCCESS;
}

MR_RESULT mr_marble_activate(const mr_marble_config *cfg, mr_marble_params *out)
{
    mr_result res = MR_FAILURE;
    mr_marble_identity id;
    mr_uuid uuid;
    bool created = false;
    char uuid_text[MR_UUID_TEXT_LEN + 1];
    char pin[PIN_MAX] = "";
    char *type_copy = NULL;
    mr_buf quote, req_buf, resp;
    memset(&id, 0, sizeof(id));
    memset(out, 0, sizeof(*out));
    mr_buf_init(&quote, 0, 0);
    mr_buf_init(&req_buf, 0, 0);
    mr_buf_init(&resp, MR_MARBLE_RESP_MAX, MR_BUF_SECRET);

    if (cfg->pin_root_ca != NULL || cfg->pin_policy != NULL)
        MR_GUARD_OUT(mr_marble_pin_coordinator(cfg, pin, sizeof(pin)));
    else
        MR_LOG_WARN("the Coordinator is not pinned: whoever answers on the mesh address decides "
                    "this marble's files, environment and arguments (as with MarbleRun); set "
                    "EDG_MARBLE_COORDINATOR_ROOT_CA and/or EDG_MARBLE_COORDINATOR_POLICY",
                    MR_F_STR("coordinator", cfg->coordinator_addr));

    MR_GUARD_OUT(mr_marble_identity_new(cfg->dns_names, cfg->curve, &id));
    MR_LOG_INFO("loading UUID");
    MR_GUARD_OUT(mr_marble_uuid_load(cfg->uuid_file, &uuid, &created));
    mr_uuid_format(&uuid, uuid_text);
    MR_LOG_INFO("generating CSR");
    MR_GUARD_OUT(get_quote(&id.cert_der, &quote));

    Rpc__ActivationReq req;
    rpc__activation_req__init(&req);
    req.quote.data = quote.data;
    req.quote.len = quote.len;
    req.csr.data = id.csr_der.data;
    req.csr.len = id.csr_der.len;
    type_copy = mr_strdup(cfg->marble_type);
    MR_ENSURE_ALLOC_OUT(type_copy);
    req.marbletype = type_copy;
    req.uuid = uuid_text;
    size_t need = rpc__activation_req__get_packed_size(&req);
    MR_GUARD_OUT(mr_buf_reserve(&req_buf, need));
    req_buf.len = rpc__activation_req__pack(&req, req_buf.data);

    char line[512];
    (void)snprintf(line, sizeof(line), "activating marble of type %s", cfg->marble_type);
    MR_LOG_INFO(line);
    mr_marble_rpc_opts ro = {.addr = cfg->coordinator_addr,
                             .cert_pem = mr_buf_slice(&id.cert_pem),
                             .key_pem = mr_buf_slice(&id.key_pem),
                             .pinned_pubkey = pin[0] != '\0' ? pin : NULL};
    if (!mr_ok(mr_marble_rpc_unary(&ro, "/rpc.Marble/Activate", mr_buf_slice(&req_buf), &resp)))
        goto out;
    MR_GUARD_OUT(mr_marble_params_decode(mr_buf_slice(&resp), out));
    MR_GUARD_OUT(mr_marble_params_check_ttls(out));
    MR_GUARD_OUT(mr_marble_params_validate(out));
    res = MR_SUCCESS;
out:
    if (!mr_ok(res))
        mr_marble_params_clear(out);
    mr_marble_identity_clear(&id);
    mr_free(type_copy);
    mr_buf_free(&quote);
    mr_buf_free(&req_buf);
    mr_buf_free(&resp);
    return res;
}
