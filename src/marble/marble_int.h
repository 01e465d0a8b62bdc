/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Marble side internals (spec/marble-cli-k8s.md §1): shared by marblerun-premain, libmarble,
 * the unit tests and the fuzz targets.
 *
 *  uuidfile.c  the UUID file (§1.3): parse its exact bytes, load or create it
 *  identity.c  the ephemeral marble key, self-signed TLS certificate and CSR (§1.4 steps 2, 5)
 *  rpc.c       one unary gRPC call over HTTP/2 + TLS with libcurl (§1.4 step 7)
 *  params.c    ActivationResp -> parameters; validation; all-or-nothing application (§1.4 10)
 *  pin.c       optional Coordinator pinning (root CA and/or measurement policy; beyond MarbleRun)
 *  activate.c  the whole flow up to (not including) applying the parameters
 *
 * Ownership: every struct filled here owns its memory and is released with its *_clear
 * function (safe on a zeroed struct). File contents and env values are held in MR_BUF_SECRET
 * buffers (they carry keys) and are wiped on release. Nothing here logs a secret.
 * Errors: MR_ERR_USAGE for bad configuration, MR_ERR_IO for file/network trouble,
 * MR_ERR_PROTOCOL for a Coordinator that speaks the protocol wrongly, MR_ERR_AUTH for a
 * refused activation or a Coordinator that fails pinning, MR_ERR_ATTESTATION for a Coordinator
 * quote that does not verify.
 */
#ifndef MR_MARBLE_INT_H
#define MR_MARBLE_INT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/result.h"
#include "common/uuid.h"
#include "crypto/key.h"

#define MR_MARBLE_RESP_MAX ((size_t)4 << 20) /* gRPC's default receive limit */
/* Most Files, Env or Argv entries accepted in one activation answer. */
#define MR_MARBLE_ENTRIES_MAX 4096

/* ---- UUID file (§1.3) ---- */

/* Parses the exact file content: 36-char canonical, 38-char {...}, 45-char urn:uuid:... or
 * 32 hex digits. Anything else (a trailing newline too) fails with Go's texts. */
MR_RESULT mr_marble_uuid_parse_file(const uint8_t *data, size_t len, mr_uuid *out);
/* Reads the file; when it does not exist, writes a fresh random UUID (36 chars, no newline,
 * mode 0600, no mkdir) and sets *created. */
MR_RESULT mr_marble_uuid_load(const char *path, mr_uuid *out, bool *created);

/* ---- configuration (§1.2) ---- */

typedef struct mr_marble_config {
    const char *marble_type;      /* required */
    const char *coordinator_addr; /* host:port of the mesh API */
    const char *dns_names;        /* comma-separated, not trimmed */
    char uuid_file[PATH_MAX];
    mr_key_type curve;            /* P-384 (default, as 1.9.1) or P-256 */
    /* pinning (all NULL = off) */
    const char *pin_root_ca;      /* PEM text or a path to a PEM file */
    const char *pin_policy;       /* path to a JSON policy file */
    char client_addr[512];        /* client API host:port (derived when unset) */
} mr_marble_config;

/* Reads the environment. A missing EDG_MARBLE_TYPE fails with
 * "environment variable not set: EDG_MARBLE_TYPE". */
MR_RESULT mr_marble_config_from_env(mr_marble_config *cfg);

/* ---- identity (§1.4 steps 2, 5) ---- */

typedef struct mr_marble_identity {
    EVP_PKEY *key;
    mr_buf cert_der; /* self-signed TLS certificate */
    mr_buf cert_pem;
    mr_buf key_pem;  /* secret */
    mr_buf csr_der;
} mr_marble_identity;

MR_RESULT mr_marble_identity_new(const char *dns_names, mr_key_type curve,
                                 mr_marble_identity *out);
void mr_marble_identity_clear(mr_marble_identity *id);

/* ---- gRPC unary call (§1.4 step 7) ---- */

typedef struct mr_marble_rpc_opts {
    const char *addr;           /* host:port */
    mr_slice cert_pem;          /* client certificate (borrowed) */
    mr_slice key_pem;           /* client key (borrowed, secret) */
    const char *pinned_pubkey;  /* curl "sha256//..." pin of the server key, or NULL */
} mr_marble_rpc_opts;

/* curl_global_init, once per process (thread-safe). */
MR_RESULT mr_marble_curl_init(void);
/* POSTs one framed request message to https://addr/<path> over HTTP/2 and returns the one
 * response message (secret buffer). A non-zero grpc-status fails with MR_ERR_AUTH and
 * "rpc error: code = <Name> desc = <message>". */
MR_RESULT mr_marble_rpc_unary(const mr_marble_rpc_opts *o, const char *path, mr_slice request,
                              mr_buf *response);
/* The gRPC framing of a response body: exactly one uncompressed message of at most
 * MR_MARBLE_RESP_MAX bytes (common/grpc.h, "response" texts). */
MR_RESULT mr_marble_grpc_unframe(mr_slice body, mr_slice *msg);

/* ---- parameters (§1.4 steps 9, 10) ---- */

/* The runtime the premain runs in (detected in exec.c); it decides the Gramine key files
 * and what is executed. */
typedef enum mr_marble_runtime {
    MR_RT_PLAIN = 0, /* a plain process, a confidential VM */
    MR_RT_GRAMINE,   /* uname: Linux 3.10.0 #1 x86_64 (Gramine's fixed values) */
    MR_RT_OCCLUM,    /* uname sysname "Occlum" */
} mr_marble_runtime;


typedef struct mr_marble_kv {
    char *name;
    mr_buf value; /* secret */
} mr_marble_kv;

typedef struct mr_marble_params {
    mr_marble_kv *files;
    size_t n_files;
    mr_marble_kv *env;
    size_t n_env;
    char **argv;
    size_t argc;
} mr_marble_params;

void mr_marble_params_clear(mr_marble_params *p);
/* Decodes a serialized ActivationResp. Later duplicates of a map key replace earlier ones. A
 * Files path, Env name or Argv entry with a NUL byte (which protobuf-c's C strings would
 * silently truncate) fails with MR_ERR_PROTOCOL "... has a NUL byte ...". */
MR_RESULT mr_marble_params_decode(mr_slice resp, mr_marble_params *out);
/* Everything that can be checked before anything is applied: file paths (non-empty, not a
 * directory), env names (non-empty, no '='), env values (no NUL: setenv would fail, §1.4
 * step 10). NUL bytes in names are refused by mr_marble_params_decode already. */
MR_RESULT mr_marble_params_validate(const mr_marble_params *p);
/* MARBLE_TTLS_CONFIG: a parse failure or an empty config is an error (v1.4.1); otherwise the
 * policy is logged ("TTLS config", "  Incoming", "    *:8443", ...). Logs "Not using TTLS"
 * without one. */
MR_RESULT mr_marble_params_check_ttls(const mr_marble_params *p);
/* TTLS (ttls.c, docs/ttls.md). Before anything is applied: when the answer carries a
 * non-empty MARBLE_TTLS_CONFIG, the absolute path of libmarble-ttls.so into lib
 * (EDG_MARBLE_TTLS_LIB, else next to the premain, else ../lib from it); "" without a config
 * or with EDG_MARBLE_TTLS=off. A library that cannot be found is an error (MR_ERR_USAGE): the
 * marble must not run in plaintext. */
MR_RESULT mr_marble_ttls_plan(const mr_marble_params *p, char *lib, size_t size);
/* After mr_marble_apply_env: appends lib to LD_PRELOAD (kept when present); "" does nothing. */
MR_RESULT mr_marble_ttls_preload(const char *lib);
/* Writes every file. Under Gramine only (§1.4 step 7, GramineActivate): first every entry
 * under /dev/attestation/keys/, then /dev/attestation/protected_files_key, each directly with
 * O_WRONLY|O_CREAT|O_TRUNC and mode 0 (the keys must be set before any file of an encrypted
 * mount is written); on other runtimes these paths are ordinary files. Then all other files
 * go into temporaries next to their targets (missing parent directories created 0700, files
 * 0600, an existing file keeps its owner bits) and only when all are written are they
 * renamed into place. On failure the temporaries and directories it created are removed, so
 * no visible ordinary file changed (key files already written stay written). */
MR_RESULT mr_marble_apply_files(const mr_marble_params *p, mr_marble_runtime rt);
/* The same with every path prefixed by `root` (NULL: none); a test seam, so that the real
 * Gramine paths can be exercised in a temporary directory. */
MR_RESULT mr_marble_apply_files_at(const mr_marble_params *p, mr_marble_runtime rt,
                                   const char *root);
/* setenv for every entry (overwriting). */
MR_RESULT mr_marble_apply_env(const mr_marble_params *p);

/* ---- pinning (beyond MarbleRun; off unless configured) ---- */

/* Fetches GET https://<client_addr>/api/v2/quote, checks the root against the pinned root
 * and/or the quote against the policy, the intermediate against the root, and fills
 * pin_out with the curl pin of the intermediate's key ("sha256//<base64>"). */
MR_RESULT mr_marble_pin_coordinator(const mr_marble_config *cfg, char *pin_out,
                                    size_t pin_size);
/* The checks on an already fetched /api/v2/quote answer (JSON body), for tests. */
MR_RESULT mr_marble_pin_check_answer(const mr_marble_config *cfg, mr_slice json_body,
                                     char *pin_out, size_t pin_size);

/* ---- what to execute (main.c) ---- */

mr_marble_runtime mr_marble_runtime_from_uname(const char *sysname, const char *release,
                                               const char *version, const char *machine);
mr_marble_runtime mr_marble_detect_runtime(void);
const char *mr_marble_runtime_name(mr_marble_runtime rt);

typedef struct mr_marble_exec_plan {
    char *service; /* the file to execute (borrowed; PATH lookup when it has no '/') */
    char **argv;   /* owned array, NULL-terminated; entries borrowed */
    size_t argc;
    size_t ignored; /* premain arguments not used (Gramine, Occlum), for a warning */
} mr_marble_exec_plan;

/* The program and its argv (borrowing from argv0, cmd and p):
 *   argv    = manifest Argv; else
 *             plain:           the premain's arguments after "--" (cmd); none is an error
 *             Gramine, Occlum: ["./marble"] as MarbleRun (§1.4 step 10); the premain's own
 *                              arguments are never passed on
 *   service = plain:   cmd[0], else manifest Argv[0]
 *             Gramine: cmd[0], else the premain's own argv[0] (loader.argv[0], premain-libos)
 *             Occlum:  argv[0], which must be absolute; the app's argv[0] becomes its basename */
MR_RESULT mr_marble_plan_exec(mr_marble_runtime rt, char *argv0, char **cmd, size_t n_cmd,
                              const mr_marble_params *p, mr_marble_exec_plan *out);
void mr_marble_exec_plan_clear(mr_marble_exec_plan *plan);

/* ---- the flow ---- */

/* Steps 1-9 of §1.4 (key, certificate, UUID, CSR, quote, Activate, TTLS check) and the
 * validation of the answer. Applies nothing. */
MR_RESULT mr_marble_activate(const mr_marble_config *cfg, mr_marble_params *out);

#endif
