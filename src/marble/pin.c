/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Coordinator pinning (beyond MarbleRun, whose premain trusts any Coordinator). Before the
 * marble sends its quote it fetches the Coordinator's certificate chain and quote from the
 * client API (GET /api/v2/quote) and requires
 *   - with EDG_MARBLE_COORDINATOR_ROOT_CA: the returned root (2nd PEM block) to be exactly the
 *     pinned root; the client API's TLS certificate is verified against that root as well;
 *   - with EDG_MARBLE_COORDINATOR_POLICY: the quote to verify (src/attest, roots and collateral
 *     from EDG_ATTESTATION_*), to satisfy the policy, and to bind SHA-256(root DER);
 *   - in both cases: the intermediate (1st block) to chain to the root.
 * The mesh TLS handshake then accepts only a server certificate whose public key is the
 * intermediate's (the mesh presents the marble root: the intermediate's key, self-signed).
 */
#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "attest/config_attest.h"
#include "attest/dcap.h"
#include "attest/policy.h"
#include "common/alloc.h"
#include "common/codec.h"
#include "common/file.h"
#include "common/jsonf.h"
#include "common/log.h"
#include "crypto/hash.h"
#include "crypto/x509.h"
#include "marble/marble_int.h"

#define ANSWER_MAX ((size_t)1 << 20)
#define POLICY_MAX ((size_t)64 << 10)

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
    size_t n = size * nmemb;
    return mr_ok(mr_buf_append(arg, ptr, n)) ? n : 0;
}

/* PEM text from the variable, or the content of the file it names. */
static MR_RESULT load_pem_or_file(const char *v, mr_buf *out)
{
    if (strstr(v, "-----BEGIN") != NULL)
        return mr_buf_set(out, v, strlen(v));
    return mr_file_read(v, ANSWER_MAX, out);
}

static MR_RESULT fetch_quote(const mr_marble_config *cfg, const mr_buf *root_pem, mr_buf *body)
{
    mr_result res = MR_FAILURE;
    CURL *h = NULL;
    mr_buf url;
    long code = 0;
    char err[CURL_ERROR_SIZE] = "";
    mr_buf_init(&url, 4096, 0);
    MR_GUARD_OUT(mr_buf_printf(&url, "https://%s/api/v2/quote", cfg->client_addr));
    MR_GUARD_OUT(mr_buf_nul_terminate(&url));
    MR_GUARD_OUT(mr_marble_curl_init());
    h = curl_easy_init();
    MR_ENSURE_ALLOC_OUT(h);
    bool ok = curl_easy_setopt(h, CURLOPT_URL, (const char *)url.data) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_WRITEDATA, body) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_ERRORBUFFER, err) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https") == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) == CURLE_OK;
    if (ok && root_pem->len > 0) {
        struct curl_blob ca = {.data = root_pem->data, .len = root_pem->len,
                               .flags = CURL_BLOB_COPY};
        /* the pinned root is the only anchor: no system CA file or directory */
        ok = curl_easy_setopt(h, CURLOPT_CAINFO, NULL) == CURLE_OK &&
             curl_easy_setopt(h, CURLOPT_CAPATH, NULL) == CURLE_OK &&
             curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &ca) == CURLE_OK &&
             curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK;
    } else if (ok) {
        /* the answer is judged by its quote, not by the transport */
        ok = curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L) == CURLE_OK &&
             curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L) == CURLE_OK;
    }
    MR_ENSURE_OUT(ok, MR_ERR_INTERNAL, "libcurl: cannot configure the quote request");
    CURLcode rc = curl_easy_perform(h);
    MR_ENSURE_OUT(rc == CURLE_OK, rc == CURLE_PEER_FAILED_VERIFICATION ? MR_ERR_AUTH : MR_ERR_IO,
                  "Coordinator pinning: GET %s: %s", (const char *)url.data,
                  err[0] ? err : curl_easy_strerror(rc));
    (void)curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    MR_ENSURE_OUT(code == 200, MR_ERR_PROTOCOL, "Coordinator pinning: GET %s: HTTP %ld",
                  (const char *)url.data, code);
    res = MR_SUCCESS;
out:
    curl_easy_cleanup(h);
    mr_buf_free(&url);
    return res;
}

static const char *get_str_ci(json_t *obj, const char *key)
{
    return json_string_value(mr_json_field(obj, key));
}

/* NULL (unset) or exactly 64 hex digits. */
static bool is_hex32(const char *s)
{
    if (s == NULL)
        return true;
    size_t n = 0;
    for (; s[n] != '\0'; n++)
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f') || (s[n] >= 'A' && s[n] <= 'F')))
            return false;
    return n == 64;
}


#define POLICY_TCB_MAX 16 /* AcceptedTCBStatuses entries of a policy file */

/* True when the field is absent, null or was taken as a number. */
static bool number_or_unset(json_t *pol, const char *key, bool taken)
{
    json_t *v = mr_json_field(pol, key);
    return v == NULL || json_is_null(v) || taken;
}

/* The era-config style policy file as a package policy; the strings point into pol and the
 * TCB statuses are stored in tcb[POLICY_TCB_MAX]. */
static MR_RESULT parse_policy(const char *path, json_t *pol, mr_attest_package *pkg,
                              const char **tcb)
{
    MR_ENSURE(json_is_object(pol), MR_ERR_USAGE, "EDG_MARBLE_COORDINATOR_POLICY %s: %s", path,
              "not a JSON object");
    pkg->unique_id = get_str_ci(pol, "UniqueID");
    pkg->signer_id = get_str_ci(pol, "SignerID");
    json_t *v = mr_json_field(pol, "ProductID");
    if (json_is_integer(v)) {
        pkg->has_product_id = true;
        pkg->product_id = (uint64_t)json_integer_value(v);
    }
    v = mr_json_field(pol, "SecurityVersion");
    if (json_is_integer(v)) {
        pkg->has_security_version = true;
        pkg->security_version = (uint64_t)json_integer_value(v);
    }
    pkg->debug = json_is_true(mr_json_field(pol, "Debug"));
    v = mr_json_field(pol, "AcceptedTCBStatuses");
    size_t n = 0;
    for (size_t i = 0; json_is_array(v) && i < json_array_size(v); i++) {
        if (!json_is_string(json_array_get(v, i)))
            continue;
        MR_ENSURE(n < POLICY_TCB_MAX, MR_ERR_USAGE,
                  "EDG_MARBLE_COORDINATOR_POLICY: more than %d AcceptedTCBStatuses",
                  POLICY_TCB_MAX);
        tcb[n++] = json_string_value(json_array_get(v, i));
    }
    pkg->accepted_tcb_statuses = tcb;
    pkg->accepted_tcb_status_count = n;
    /* A policy that pins no measurement would accept any enclave: refuse it, and refuse
     * identities that are not 32-byte hex values and numbers given with the wrong type. */
    if (pkg->unique_id != NULL && pkg->unique_id[0] == '\0')
        pkg->unique_id = NULL;
    if (pkg->signer_id != NULL && pkg->signer_id[0] == '\0')
        pkg->signer_id = NULL;
    MR_ENSURE(pkg->unique_id != NULL || pkg->signer_id != NULL, MR_ERR_USAGE,
              "EDG_MARBLE_COORDINATOR_POLICY: set UniqueID or SignerID");
    MR_ENSURE(is_hex32(pkg->unique_id) && is_hex32(pkg->signer_id), MR_ERR_USAGE,
              "EDG_MARBLE_COORDINATOR_POLICY: UniqueID and SignerID must be 64 hex digits");
    MR_ENSURE(number_or_unset(pol, "ProductID", pkg->has_product_id) &&
                  number_or_unset(pol, "SecurityVersion", pkg->has_security_version),
              MR_ERR_USAGE,
              "EDG_MARBLE_COORDINATOR_POLICY: ProductID and SecurityVersion must be numbers");
    return MR_SUCCESS;
}

/* Attestation failures of the checks below name the step that refused. */
static MR_RESULT pinning(mr_result r)
{
    if (!mr_ok(r) && mr_error_is(MR_ERR_ATTESTATION))
        mr_error_prefix("Coordinator pinning");
    return r;
}

/* The Coordinator's quote against the policy file: it verifies, satisfies the policy and
 * binds SHA-256 of the root's DER. */
static MR_RESULT check_policy(const mr_marble_config *cfg, const mr_buf *quote, X509 *root)
{
    mr_result res = MR_FAILURE;
    mr_buf text;
    json_t *pol = NULL;
    mr_attest_env env = {0};
    mr_attest_options opts;
    mr_attest_claims claims;
    mr_attest_package pkg;
    const char *tcb[POLICY_TCB_MAX];
    uint8_t digest[32];
    mr_buf der;
    bool env_loaded = false;
    memset(&opts, 0, sizeof(opts));
    memset(&pkg, 0, sizeof(pkg));
    mr_buf_init(&text, POLICY_MAX, 0);
    mr_buf_init(&der, 0, 0);
    MR_GUARD_OUT(mr_file_read(cfg->pin_policy, POLICY_MAX, &text));
    json_error_t jerr;
    pol = json_loadb((const char *)text.data, text.len, 0, &jerr);
    MR_ENSURE_OUT(pol != NULL, MR_ERR_USAGE, "EDG_MARBLE_COORDINATOR_POLICY %s: %s",
                  cfg->pin_policy, jerr.text);
    MR_GUARD_OUT(parse_policy(cfg->pin_policy, pol, &pkg, tcb));
    MR_ENSURE_OUT(quote->len > 0, MR_ERR_ATTESTATION,
                  "Coordinator pinning: the Coordinator sent no quote (simulation mode?)");
    MR_GUARD_OUT(pinning(mr_attest_env_load(&env)));
    env_loaded = true;
    mr_attest_env_options(&env, &opts);
    if (!mr_ok(mr_dcap_verify(quote->data, quote->len, &opts, &claims))) {
        mr_error_prefix("Coordinator pinning: verifying the Coordinator's quote");
        goto out;
    }
    MR_GUARD_OUT(pinning(mr_policy_check_tcb(&claims, pkg.accepted_tcb_statuses,
                                             pkg.accepted_tcb_status_count, NULL, 0, NULL)));
    MR_GUARD_OUT(pinning(mr_policy_check_package(&claims, &pkg)));
    MR_GUARD_OUT(mr_x509_to_der(root, &der));
    MR_GUARD_OUT(mr_sha256(der.data, der.len, digest));
    MR_ENSURE_OUT(CRYPTO_memcmp(digest, claims.report_data, 32) == 0, MR_ERR_ATTESTATION,
                  "Coordinator pinning: the quote does not bind the Coordinator root");
    res = MR_SUCCESS;
out:
    json_decref(pol);
    if (env_loaded)
        mr_attest_env_free(&env);
    mr_buf_free(&text);
    mr_buf_free(&der);
    return res;
}

static MR_RESULT pin_string(X509 *inter, char *pin_out, size_t pin_size)
{
    mr_result res = MR_FAILURE;
    mr_buf spki, b64;
    uint8_t d[32];
    mr_buf_init(&spki, 0, 0);
    mr_buf_init(&b64, 0, 0);
    MR_GUARD_OUT(mr_x509_spki_der(inter, &spki));
    MR_GUARD_OUT(mr_sha256(spki.data, spki.len, d));
    MR_GUARD_OUT(mr_b64_encode_buf(d, sizeof(d), MR_B64_STD, &b64));
    int n = snprintf(pin_out, pin_size, "sha256//%.*s", (int)b64.len, (const char *)b64.data);
    MR_ENSURE_OUT(n >= 0 && (size_t)n < pin_size, MR_ERR_INTERNAL, "pin buffer too small");
    res = MR_SUCCESS;
out:
    mr_buf_free(&spki);
    mr_buf_free(&b64);
    return res;
}

MR_RESULT mr_marble_pin_check_answer(const mr_marble_config *cfg, mr_slice json_body,
                                     char *pin_out, size_t pin_size)
{
    mr_result res = MR_FAILURE;
    json_t *root_json = NULL;
    STACK_OF(X509) *chain = NULL;
    X509 *pinned = NULL;
    mr_buf pinned_pem, quote, a, b;
    mr_buf_init(&pinned_pem, ANSWER_MAX, 0);
    mr_buf_init(&quote, 0, 0);
    mr_buf_init(&a, 0, 0);
    mr_buf_init(&b, 0, 0);
    json_error_t jerr;
    root_json = json_loadb((const char *)json_body.ptr, json_body.len, 0, &jerr);
    json_t *data = json_is_object(root_json) ? mr_json_field(root_json, "data") : NULL;
    const char *cert = json_is_object(data) ? get_str_ci(data, "cert") : NULL;
    MR_ENSURE_OUT(cert != NULL, MR_ERR_PROTOCOL,
                  "Coordinator pinning: /api/v2/quote answer has no certificate chain");
    const char *q = get_str_ci(data, "quote");
    if (q != NULL)
        MR_GUARD_OUT(mr_b64_decode_buf(q, strlen(q), MR_B64_STD, 0, &quote));
    MR_GUARD_OUT(mr_x509_chain_from_pem(MR_SLICE(cert, strlen(cert)), &chain));
    MR_ENSURE_OUT(sk_X509_num(chain) == 2, MR_ERR_PROTOCOL,
                  "Coordinator pinning: expected intermediate and root, got %d certificates",
                  sk_X509_num(chain));
    X509 *inter = sk_X509_value(chain, 0);
    X509 *croot = sk_X509_value(chain, 1);
    if (cfg->pin_root_ca != NULL) {
        MR_GUARD_OUT(load_pem_or_file(cfg->pin_root_ca, &pinned_pem));
        MR_GUARD_OUT(mr_x509_from_pem(mr_buf_slice(&pinned_pem), &pinned));
        MR_GUARD_OUT(mr_x509_to_der(pinned, &a));
        MR_GUARD_OUT(mr_x509_to_der(croot, &b));
        MR_ENSURE_OUT(a.len == b.len && CRYPTO_memcmp(a.data, b.data, a.len) == 0, MR_ERR_AUTH,
                      "Coordinator pinning: the Coordinator's root certificate is not the "
                      "pinned one");
    }
    mr_x509_verify_opts vo = {.purpose = MR_X509_PURPOSE_ANY};
    if (!mr_ok(mr_x509_verify(inter, croot, &vo))) {
        mr_error_prefix("Coordinator pinning: intermediate does not chain to the root");
        goto out;
    }
    if (cfg->pin_policy != NULL)
        MR_GUARD_OUT(check_policy(cfg, &quote, croot));
    MR_GUARD_OUT(pin_string(inter, pin_out, pin_size));
    res = MR_SUCCESS;
out:
    json_decref(root_json);
    sk_X509_pop_free(chain, X509_free);
    X509_free(pinned);
    mr_buf_free(&pinned_pem);
    mr_buf_free(&quote);
    mr_buf_free(&a);
    mr_buf_free(&b);
    return res;
}

MR_RESULT mr_marble_pin_coordinator(const mr_marble_config *cfg, char *pin_out,
                                    size_t pin_size)
{
    mr_result res = MR_FAILURE;
    mr_buf root_pem, body;
    mr_buf_init(&root_pem, ANSWER_MAX, 0);
    mr_buf_init(&body, ANSWER_MAX, 0);
    MR_LOG_INFO("verifying the Coordinator before activation",
                MR_F_STR("clientAPI", cfg->client_addr),
                MR_F_BOOL("rootPinned", cfg->pin_root_ca != NULL),
                MR_F_BOOL("policy", cfg->pin_policy != NULL));
    if (cfg->pin_root_ca != NULL)
        MR_GUARD_OUT(load_pem_or_file(cfg->pin_root_ca, &root_pem));
    MR_GUARD_OUT(fetch_quote(cfg, &root_pem, &body));
    MR_GUARD_OUT(mr_marble_pin_check_answer(cfg, mr_buf_slice(&body), pin_out, pin_size));
    MR_LOG_INFO("Coordinator verified; pinning its mesh certificate key");
    res = MR_SUCCESS;
out:
    mr_buf_free(&root_pem);
    mr_buf_free(&body);
    return res;
}
