/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The CLI's connection to a Coordinator's client API (spec/marble-cli-k8s.md §4.2-§4.4):
 *
 *  - trust: (a) attestation with an era config (mr_cli_conn_attest), (b) the cached certificate
 *    file (mr_cli_conn_cached), (c) --insecure (both print the spec's warning and skip checks);
 *  - REST: JSend responses, "/api/v2" first with a fall back to the legacy path on 405
 *    (mr_cli_api), error texts as MarbleRun's api package words them;
 *  - user authentication with a PEM client certificate and key from memory.
 *
 * Pure helpers (era config parsing, JSend parsing, case-insensitive JSON lookup, the cert
 * cache, manifest loading with YAML→JSON) are exported for the unit tests.
 *
 * Ownership: a mr_cli_conn owns every buffer in it; mr_cli_conn_clear releases them and wipes
 * the client key. json_t results are new references the caller json_decref()s.
 * Errors: MR_ERR_IO for transport failures, MR_ERR_ATTESTATION for trust failures,
 * MR_ERR_PROTOCOL for malformed answers, MR_ERR_USAGE for bad local input, and the HTTP error
 * texts of §4.3 with the category of the status code.
 */
#ifndef MR_CLI_CLIENT_H
#define MR_CLI_CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cli/cli.h"
#include "common/buf.h"
#include "common/result.h"

#define MR_CLI_FILE_MAX ((size_t)16 << 20)

/* ---------------------------------------------------------------------------------------- */
/* Era config (attestation policy file, §4.2 step 2)                                          */

typedef struct mr_cli_era {
    uint64_t security_version;
    uint16_t product_id;
    bool debug;
    bool insecure_skip_verify;
    bool has_unique_id, has_signer_id;
    uint8_t unique_id[32];
    uint8_t signer_id[32];
    size_t unique_id_len, signer_id_len; /* hex-decoded lengths (compared exactly) */
} mr_cli_era;

/* Parses the JSON policy; keys are matched case-insensitively (Go encoding/json), unknown keys
 * are ignored. AcceptedTCBStatuses/AcceptedAdvisories/Nonce in the file are ignored: the
 * flags override them. */
MR_RESULT mr_cli_era_parse(const char *json, size_t len, mr_cli_era *out);

/* The measurements of a verified report, as the policy check needs them. */
typedef struct mr_cli_report {
    uint8_t report_data[64];
    uint8_t unique_id[32];
    uint8_t signer_id[32];
    uint16_t product_id;
    uint16_t security_version;
    bool debug;
} mr_cli_report;

/* The era checks of §4.2 step 4 (report data binding to SHA-256(root DER || nonce) and the
 * policy). Prints the "neither UniqueID nor SignerID" warning to info. */
MR_RESULT mr_cli_era_check(const mr_cli_era *era, const mr_cli_report *rep,
                           const uint8_t *root_der, size_t root_len, const char *nonce,
                           FILE *info);

/* ---------------------------------------------------------------------------------------- */
/* JSON and JSend                                                                             */

/* obj[key] with Go's rule: an exact match wins, else the first case-insensitive match.
 * Borrowed; NULL when absent or obj is not an object. */
json_t *mr_cli_json_get(json_t *obj, const char *key);
/* String value of obj[key] (case-insensitive), or NULL. */
const char *mr_cli_json_str(json_t *obj, const char *key);

/* Parses a JSend answer. HTTP 200: *data = new reference to `data` (json null when absent).
 * Otherwise fails with "<METHOD> <URL>: authorizing user: <message>" (401) or
 * "<METHOD> <URL>: <code> <StatusText>: <status>: <message>". */
MR_RESULT mr_cli_jsend_parse(const char *method, const char *url, long http_status,
                             const uint8_t *body, size_t len, json_t **data);

/* ---------------------------------------------------------------------------------------- */
/* Files                                                                                      */

/* Loads a manifest: valid JSON is returned byte-for-byte; anything else is converted from
 * YAML (duplicate keys rejected, YAML 1.1 scalar types, sorted keys, compact output). */
MR_RESULT mr_cli_manifest_load(const char *path, mr_buf *out);
MR_RESULT mr_cli_yaml_to_json(const uint8_t *yaml, size_t len, mr_buf *out);

/* The certificate cache: PEM intermediate then root, 0600, parent directories 0755. */
MR_RESULT mr_cli_cache_write(const char *path, const char *chain_pem, size_t len);
/* Reads the cache and returns the root (the second PEM block) as PEM. */
MR_RESULT mr_cli_cache_read_root(const char *path, mr_buf *root_pem);

/* Writes a whole file with mode 0600, replacing it (the -o / -r outputs). */
MR_RESULT mr_cli_write_file(const char *path, const void *data, size_t len);
/* Creates a new file (O_EXCL, 0600); fails if it exists. */
MR_RESULT mr_cli_write_new_file(const char *path, const void *data, size_t len);

/* ---------------------------------------------------------------------------------------- */
/* Connection                                                                                 */

typedef struct mr_cli_conn {
    char host[256];      /* "host:port" as typed */
    bool insecure;       /* no TLS verification */
    FILE *info;          /* where trust messages go: stdout, or stderr for -o json */
    mr_buf anchor_pem;   /* root certificate PEM: the only TLS trust anchor */
    mr_buf chain_pem;    /* intermediate + root as received (attestation) */
    mr_buf quote;        /* the Coordinator's quote as received (attestation) */
    mr_buf cert_pem;     /* user client certificate (PEM), empty = none */
    mr_buf key_pem;      /* user client key (PEM, MR_BUF_SECRET) */
} mr_cli_conn;

void mr_cli_conn_init(mr_cli_conn *c);
void mr_cli_conn_clear(mr_cli_conn *c);

/* Trust mode (a): era config selection, quote fetch (v2 with nonce, v1 fallback), verification,
 * then the received root becomes the anchor. With --insecure prints the warning and trusts
 * nothing. */
MR_RESULT mr_cli_conn_attest(const mr_cli *cli, const char *host, mr_cli_conn *c);
/* Trust mode (b): the cached root is the only anchor (hostname verified); --insecure: none. */
MR_RESULT mr_cli_conn_cached(const mr_cli *cli, const char *host, mr_cli_conn *c);
/* Loads -c/--cert and -k/--key (PKCS#11 flags give a "not supported" error). */
MR_RESULT mr_cli_conn_client_auth(const mr_cli *cli, mr_cli_conn *c);

/* Writes the cert cache from an attested connection, and --save-sgx-quote. */
MR_RESULT mr_cli_conn_save_cache(const mr_cli *cli, const mr_cli_conn *c);
MR_RESULT mr_cli_conn_save_quote(const mr_cli *cli, const mr_cli_conn *c);

/* One request. path includes the query. body may be NULL (GET). On success *status and *resp
 * hold the HTTP status and body. */
MR_RESULT mr_cli_http(const mr_cli_conn *c, const char *method, const char *path,
                      const void *body, size_t body_len, const char *content_type, long *status,
                      mr_buf *resp);

/* A JSend API call: v2 path first; if it answers 405 and v1_path is not NULL, v1_path with
 * v1_body. *data receives the `data` member; *used_v1 (optional) says which path answered. */
MR_RESULT mr_cli_api(const mr_cli_conn *c, const char *method, const char *v2_path,
                     const json_t *v2_body, const char *v1_path, const void *v1_body,
                     size_t v1_len, const char *v1_ctype, json_t **data, bool *used_v1);

/* Prints a JSON value indented by 4 spaces (for -o json). */
MR_RESULT mr_cli_print_json(const json_t *v);

/* Client-auth flags (§4.4), for the flag tables of the commands that take them. */
#define MR_CLI_AUTH_FLAGS                                                                     \
    {"cert", 'c', MR_FLAG_STRING, "", "PEM encoded MarbleRun user certificate file"},         \
        {"key", 'k', MR_FLAG_STRING, "", "PEM encoded MarbleRun user key file"},              \
        {"pkcs11-config", 0, MR_FLAG_STRING, "",                                              \
         "Path to a PKCS#11 configuration file (not supported by this build)"},               \
        {"pkcs11-key-id", 0, MR_FLAG_STRING, "",                                              \
         "ID of the private key in the PKCS#11 token (not supported by this build)"},         \
        {"pkcs11-key-label", 0, MR_FLAG_STRING, "",                                           \
         "Label of the private key in the PKCS#11 token (not supported by this build)"},      \
        {"pkcs11-cert-id", 0, MR_FLAG_STRING, "",                                             \
         "ID of the certificate in the PKCS#11 token (not supported by this build)"},         \
        {"pkcs11-cert-label", 0, MR_FLAG_STRING, "",                                          \
         "Label of the certificate in the PKCS#11 token (not supported by this build)"}

/* ---------------------------------------------------------------------------------------- */
/* package-info parsers (cmd_package_info.c)                                                  */

typedef struct mr_cli_pkg_props {
    uint8_t mrenclave[32];
    uint8_t mrsigner[32]; /* SHA-256 of the SIGSTRUCT modulus */
    uint16_t isvprodid;
    uint16_t isvsvn;
} mr_cli_pkg_props;

/* Finds the SIGSTRUCT header in data and decodes the 1808-byte structure that starts there. */
MR_RESULT mr_cli_sigstruct_parse(mr_slice data, mr_cli_pkg_props *out);
/* The bytes of the named section of a 64-bit little-endian ELF image (borrowed from file). */
MR_RESULT mr_cli_elf_section(mr_slice file, const char *name, mr_slice *out);

/* ---------------------------------------------------------------------------------------- */
/* Small helpers shared by the commands (cmdutil.c)                                           */

/* A new JSON string with the standard base64 of data (NULL on allocation failure). */
json_t *mr_cli_json_b64(const void *data, size_t len);
/* Decodes a base64 JSON string member (case-insensitive key) into out; absent/null = empty. */
MR_RESULT mr_cli_json_b64_member(json_t *obj, const char *key, mr_buf *out);
/* Lower-case hex SHA-256 of data into hex[65]. */
MR_RESULT mr_cli_sha256_hex(const void *data, size_t len, char hex[65]);
/* Saves {"RecoverySecrets":{...}} to `file` (0600) and prints "Recovery data saved to: <f>",
 * or prints the JSON when file is empty. secrets must be a non-empty object. */
MR_RESULT mr_cli_save_recovery(const char *file, json_t *secrets);
/* Fails with cobra's text unless the string flag is set. */
MR_RESULT mr_cli_require_flag(const mr_cli *cli, const char *name);
/* Wipes every string value inside v (recursively) before it is released: for JSON documents
 * that carried secrets (user secrets, recovery secrets). NULL-safe. */
void mr_cli_json_wipe(json_t *v);
/* True when the -o/--output flag asks for JSON on stdout ("-o json"). */
bool mr_cli_want_json(const mr_cli *cli);

#endif
