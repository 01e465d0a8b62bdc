/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The manifest: model, Go-compatible decoder, secret encoder, consistency check, update
 * rules and lookup helpers (spec coordinator.md §0.1, §0.2, §6, §8.1, §8.3, §12.2, §12.7).
 *
 * Decoding follows Go's encoding/json as MarbleRun uses it: field names match
 * case-insensitively (simple case folding, so U+017F matches 's' and U+212A matches 'k'),
 * map keys are case-sensitive, unknown keys are ignored, a repeated field is decoded again on
 * top of the first one (scalars and slices: last wins; maps: entries merged; structs: merged
 * field by field), `null` leaves scalars alone and resets pointers/slices/maps to nil,
 * unsigned integers are strict, []byte fields are padded base64 and trailing data is rejected.
 * Type mismatches do not stop decoding: like Go, the first one is reported at the end unless a
 * hard error (syntax, File/Cert parse errors) comes first. Error texts are Go's; callers add
 * their own prefix (e.g. "unmarshaling manifest: ").
 *
 * Ownership: every string, list and map in a decoded mr_manifest is owned by it and released
 * by mr_manifest_free (NULL-safe). Maps are arrays sorted bytewise by name; `present` says
 * whether the JSON had a non-null value (Go: non-nil), which the encoder needs to tell `null`
 * from `{}`/`[]`. Manifests hold no key material except user-supplied `Private` bytes of
 * secrets, which are wiped on free.
 *
 * All failures are MR_ERR_USAGE (the client sent something invalid) unless noted;
 * allocation failures are MR_ERR_INTERNAL.
 */
#ifndef MR_MANIFEST_MANIFEST_H
#define MR_MANIFEST_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attest/tee_policy.h"
#include "common/buf.h"
#include "common/result.h"

#define MR_MANIFEST_MAX_SIZE ((size_t)16 << 20) /* bytes of JSON accepted */
#define MR_MANIFEST_MAX_DEPTH 128               /* nesting of JSON arrays/objects */

/* A Go string: arbitrary bytes (may contain NUL), always NUL-terminated when ptr != NULL.
 * ptr == NULL means the empty string. */
typedef struct mr_mstr {
    char *ptr;
    size_t len;
} mr_mstr;

/* A Go []string: present == false is nil (encodes as null). */
typedef struct mr_mstr_list {
    mr_mstr *items;
    size_t count;
    bool present;
} mr_mstr_list;

/* A Go []byte: present == false is nil. */
typedef struct mr_mbytes {
    uint8_t *ptr;
    size_t len;
    bool present;
} mr_mbytes;

/* A Go []int (OIDs, ExtKeyUsage). */
typedef struct mr_mint_list {
    int64_t *items;
    size_t count;
    bool present;
} mr_mint_list;

typedef struct mr_moid_list {
    mr_mint_list *items;
    size_t count;
    bool present;
} mr_moid_list;

/* ---- sections ---- */

/* Package.TDX (MarbleRun-C extension, docs/manifest.md): what a TDX guest's TD report must
 * say. Hex strings as written in the manifest (checked by mr_manifest_check); empty = not
 * checked. present: the manifest had a non-null TDX object. */
typedef struct mr_manifest_tdx {
    bool present;
    mr_mstr mrtd, rtmr[4], mrconfigid, mrowner, mrownerconfig;
    mr_mstr td_attributes, td_attributes_mask, xfam, xfam_mask; /* 8 bytes, report order */
    mr_mstr min_tee_tcb_svn;                                    /* 16 bytes */
} mr_manifest_tdx;

/* Package.SNP (MarbleRun-C extension): what an SEV-SNP guest's attestation report must say. */
typedef struct mr_manifest_snp {
    bool present;
    mr_mstr measurement, host_data, id_key_digest, author_key_digest, family_id, image_id;
    struct {
        bool has_smt, smt;
        bool migration_agent;
        bool has_single_socket, single_socket;
    } policy;
    bool has_vmpl;
    uint8_t vmpl;
    bool has_min_guest_svn;
    uint64_t min_guest_svn;
    struct {
        bool has_bl, has_tee, has_snp, has_ucode;
        uint8_t bl, tee, snp, ucode;
    } minimum_tcb;
    mr_mstr_list accepted_signing_keys; /* "VCEK", "VLEK"; empty = VCEK */
} mr_manifest_snp;

typedef struct mr_manifest_package {
    mr_mstr name; /* first member of every map element: the map key */
    bool debug;
    mr_mstr unique_id;
    mr_mstr signer_id;
    bool has_product_id;
    uint64_t product_id;
    bool has_security_version;
    uint64_t security_version; /* Go uint (64-bit) */
    mr_mstr_list accepted_tcb_statuses;
    mr_mstr_list accepted_advisories;
    mr_manifest_tdx tdx; /* a TDX guest instead of an SGX enclave */
    mr_manifest_snp snp; /* an SEV-SNP guest instead of an SGX enclave */
} mr_manifest_package;

typedef struct mr_manifest_infra {
    mr_mstr name;
    mr_mbytes cpusvn;
    bool has_qesvn;
    uint16_t qesvn;
    bool has_pcesvn;
    uint16_t pcesvn;
    mr_mbytes root_ca;
} mr_manifest_infra;

/* Parameters.Files / Parameters.Env entry. data holds the decoded bytes; encoding the text
 * given in the manifest ("string" when it was a plain string or empty). */
typedef struct mr_manifest_file {
    mr_mstr name;
    mr_mstr data;
    mr_mstr encoding;
    bool no_templates;
} mr_manifest_file;

typedef struct mr_manifest_file_map {
    mr_manifest_file *items;
    size_t count;
    bool present;
} mr_manifest_file_map;

typedef struct mr_manifest_marble {
    mr_mstr name;
    mr_mstr package;
    uint64_t max_activations;
    struct {
        mr_manifest_file_map files;
        mr_manifest_file_map env;
        mr_mstr_list argv;
    } parameters;
    mr_mstr_list tls;
    bool disable_secret_binding;
} mr_manifest_marble;

/* x509 template (the subset of Go's x509.Certificate fields the spec lists). */
typedef struct mr_manifest_attr {
    mr_mint_list type;  /* OID arcs */
    mr_mstr value;      /* only string values are kept */
    bool value_is_string;
} mr_manifest_attr;

typedef struct mr_manifest_dn {
    mr_mstr_list country, organization, organizational_unit, locality, province,
        street_address, postal_code;
    mr_mstr serial_number;
    mr_mstr common_name;
    struct {
        mr_manifest_attr *items;
        size_t count;
        bool present;
    } extra_names;
} mr_manifest_dn;

typedef struct mr_manifest_ext {
    mr_mint_list id;
    bool critical;
    mr_mbytes value;
} mr_manifest_ext;

/* A time.Time. set == !IsZero() in Go (0001-01-01T00:00:00Z counts as unset, also when
 * written with an offset). unix_sec/nsec are meaningful when set. */
typedef struct mr_manifest_time {
    bool set;
    int64_t unix_sec;
    int32_t nsec;
} mr_manifest_time;

typedef struct mr_manifest_cert {
    /* Certificate given as a base64 DER string (stored secrets): raw is that DER, parsed
     * successfully; the other fields stay zero (read them from the DER). */
    mr_mbytes raw;
    mr_mbytes raw_subject;
    mr_manifest_dn subject;
    mr_manifest_time not_before; /* always overwritten at generation */
    mr_manifest_time not_after;
    int64_t key_usage;
    mr_mint_list ext_key_usage;
    mr_moid_list unknown_ext_key_usage;
    mr_moid_list policy_identifiers;
    bool is_ca;
    int64_t max_path_len;
    bool max_path_len_zero;
    mr_mbytes subject_key_id;
    mr_mbytes authority_key_id;
    mr_mstr_list dns_names, email_addresses, ocsp_server, issuing_certificate_url,
        crl_distribution_points;
    struct {
        mr_mbytes *items; /* 4 or 16 bytes each (IPv4 / IPv6); empty = nil IP */
        size_t count;
        bool present;
    } ip_addresses;
    bool permitted_dns_domains_critical;
    mr_mstr_list permitted_dns_domains, excluded_dns_domains, permitted_email_addresses,
        excluded_email_addresses, permitted_uri_domains, excluded_uri_domains;
    int64_t signature_algorithm;
    struct {
        mr_manifest_ext *items;
        size_t count;
        bool present;
    } extra_extensions;
} mr_manifest_cert;

typedef struct mr_manifest_secret {
    mr_mstr name;
    mr_mstr type; /* case-sensitive: symmetric-key, cert-rsa, cert-ecdsa, cert-ed25519, plain */
    uint64_t size;
    bool shared;
    bool user_defined;
    mr_manifest_cert cert;
    uint64_t valid_for;
    mr_mbytes private_key; /* wiped on free */
    mr_mbytes public_key;
} mr_manifest_secret;

typedef struct mr_manifest_user {
    mr_mstr name;
    mr_mstr certificate; /* PEM text */
    mr_mstr_list roles;
} mr_manifest_user;

typedef struct mr_manifest_role {
    mr_mstr name;
    mr_mstr resource_type;
    mr_mstr_list resource_names;
    mr_mstr_list actions;
} mr_manifest_role;

typedef struct mr_manifest_recovery_key {
    mr_mstr name;
    mr_mstr pem;
} mr_manifest_recovery_key;

typedef struct mr_manifest_tls_entry {
    mr_mstr port;
    mr_mstr addr;
    mr_mstr cert;
    bool disable_client_auth;
    mr_mstr_list allowed_marble_types; /* MarbleRun-C extension (docs/ttls.md) */
} mr_manifest_tls_entry;

typedef struct mr_manifest_tls_list {
    mr_manifest_tls_entry *items;
    size_t count;
    bool present;
} mr_manifest_tls_list;

typedef struct mr_manifest_tls_tag {
    mr_mstr name;
    mr_manifest_tls_list outgoing;
    mr_manifest_tls_list incoming;
} mr_manifest_tls_tag;

typedef struct mr_manifest_config {
    mr_mstr seal_mode;
    mr_mstr_list feature_gates;
    uint64_t update_threshold;
    uint64_t recovery_threshold;
    bool rotate_root_secret;
} mr_manifest_config;

#define MR_MANIFEST_MAP(T)                                                                    \
    struct {                                                                                  \
        T *items;                                                                             \
        size_t count;                                                                         \
        bool present;                                                                         \
    }

typedef struct mr_manifest {
    mr_mbytes raw;        /* exactly the decoded input bytes */
    char fingerprint[65]; /* lower-case hex SHA-256 of raw */
    MR_MANIFEST_MAP(mr_manifest_package) packages;
    MR_MANIFEST_MAP(mr_manifest_infra) infrastructures;
    MR_MANIFEST_MAP(mr_manifest_marble) marbles;
    MR_MANIFEST_MAP(mr_manifest_user) users;
    MR_MANIFEST_MAP(mr_manifest_secret) secrets;
    MR_MANIFEST_MAP(mr_manifest_recovery_key) recovery_keys;
    MR_MANIFEST_MAP(mr_manifest_role) roles;
    MR_MANIFEST_MAP(mr_manifest_tls_tag) tls;
    mr_manifest_config config;
} mr_manifest;

/* ---- decode / free / fingerprint ---- */

/* Decodes a manifest (json.Unmarshal rules: one value, trailing data rejected). On success
 * *out owns a new manifest that also keeps a copy of the input and its fingerprint. */
MR_API MR_RESULT mr_manifest_decode(const uint8_t *json, size_t len, mr_manifest **out);
MR_API void mr_manifest_free(mr_manifest *m);

/* Lower-case hex SHA-256 of exactly these bytes; out must hold 65 chars. */
MR_API MR_RESULT mr_manifest_fingerprint(const uint8_t *data, size_t len, char out[65]);

/* ---- JSON encoding (Go json.Marshal output, spec §0.1) ---- */

/* Secret as stored (`secret:<name>`): Cert is base64 of the DER (cert.raw) or null. */
MR_API MR_RESULT mr_manifest_encode_secret(const mr_manifest_secret *s, mr_buf *out);
/* A JSON string with Go's HTML-safe escaping (also for map keys): mr_json_quote
 * (common/text.h), which new code should call directly. */
MR_API MR_RESULT mr_manifest_json_string(const char *s, size_t len, mr_buf *out);

/* ---- consistency check (spec §6.10, §12.2) ---- */

typedef struct mr_manifest_check_opts {
    /* When the AzureHSMSealing gate is set and this is non-NULL, the check fails with
     * "manifest enables sealing with Azure HSM key, but required environment variables are
     * not set: <missing_hsm_env>" (the caller formats the list, Go %v style: "[A B]"). */
    const char *missing_hsm_env;
} mr_manifest_check_opts;

/* The consistency check, rules in MarbleRun's order; maps are walked in sorted key order so
 * the reported error is deterministic. Debug-only identity findings are logged as warnings.
 * opts may be NULL. */
MR_API MR_RESULT mr_manifest_check(const mr_manifest *m, const mr_manifest_check_opts *opts);

/* SetManifest checks outside the consistency check: every RecoveryKeys entry must be a PEM
 * "PUBLIC KEY" block holding an RSA key ("given PEM data is not a public key",
 * "unsupported type of public key"), and every user certificate must parse ("received
 * invalid certificate for user <u>" or the X.509 parse error). */
MR_API MR_RESULT mr_manifest_check_recovery_keys(const mr_manifest *m);
MR_API MR_RESULT mr_manifest_check_user_certs(const mr_manifest *m);
/* DER of user u's certificate (first PEM block) stored in out, replacing its content (out
 * may be NULL: check only);
 * the caller frees out with mr_buf_free. */
MR_API MR_RESULT mr_manifest_user_cert_der(const mr_manifest_user *u, mr_buf *out);
/* DER (SubjectPublicKeyInfo) of a recovery key after the checks above, stored in out
 * (replacing its content; out may be NULL). */
MR_API MR_RESULT mr_manifest_recovery_key_der(const mr_manifest_recovery_key *k, mr_buf *out);

/* ---- template dry run (spec §6.12.5) ---- */

typedef enum mr_manifest_tpl_kind { MR_MANIFEST_TPL_FILE = 0, MR_MANIFEST_TPL_ENV } mr_manifest_tpl_kind;

/* Parses and executes one template against dummy data; on failure records the engine's
 * error text (without any prefix) and fails. */
typedef MR_RESULT (*mr_manifest_tpl_check_fn)(void *ctx, mr_manifest_tpl_kind kind,
                                             const char *text, size_t len);

/* Walks every marble's Files and Env (sorted), skipping NoTemplates entries for the template
 * check, and reports "in Marble <m>: file <path>: <err>", "in Marble <m>: env variable <name>:
 * <err>", or "in Marble <m>: env variable: <name>: content contains null bytes". With
 * check == NULL only the NUL rule is applied. */
MR_API MR_RESULT mr_manifest_template_dry_run(const mr_manifest *m, mr_manifest_tpl_check_fn check,
                                              void *ctx);

struct mr_tmpl_data; /* manifest/template.h */

/* The full dry run with the template engine (manifest/template.h): each template is parsed
 * and executed in its function set (Files / Env) with MR_TMPL_DRY_RUN. data supplies
 * `.Secrets` (and `.Previous.Secrets`); NULL uses every manifest secret as a placeholder
 * (dummy 0x41 values wherever a real value would exist). Errors as for
 * mr_manifest_template_dry_run, with the engine's Go-style texts inside. */
MR_API MR_RESULT mr_manifest_dry_run(const mr_manifest *m, const struct mr_tmpl_data *data);

/* ---- lookups ---- */

MR_API const mr_manifest_package *mr_manifest_find_package(const mr_manifest *m, const char *name);
MR_API const mr_manifest_secret *mr_manifest_find_secret(const mr_manifest *m, const char *name);
MR_API const mr_manifest_user *mr_manifest_find_user(const mr_manifest *m, const char *name);
MR_API const mr_manifest_marble *mr_manifest_find_marble(const mr_manifest *m, const char *name);
MR_API const mr_manifest_infra *mr_manifest_find_infra(const mr_manifest *m, const char *name);
MR_API const mr_manifest_tls_tag *mr_manifest_find_tls_tag(const mr_manifest *m, const char *name);
/* Feature gate lookup, case-insensitive (e.g. "SignQuoteEndpoint"). */
MR_API bool mr_manifest_feature_enabled(const mr_manifest *m, const char *gate);

/* ---- confidential-VM packages (docs/manifest.md) ---- */

/* The verifier's rules of a package with TDX (p->tdx.present) or SNP (p->snp.present)
 * fields, decoded from the hex the manifest holds (mr_manifest_check has validated it; a value
 * it would refuse fails with MR_ERR_USAGE). */
MR_API MR_RESULT mr_manifest_tdx_package(const mr_manifest_package *p, mr_tdx_package *out);
MR_API MR_RESULT mr_manifest_snp_package(const mr_manifest_package *p, mr_snp_package *out);

/* ---- users and permissions (spec §8.1) ---- */

#define MR_PERM_READ_SECRET "readsecret"
#define MR_PERM_WRITE_SECRET "writesecret"
#define MR_PERM_UPDATE_PACKAGE "updatesecurityversion"
#define MR_PERM_UPDATE_MANIFEST "updatemanifest"

/* True iff user `user` holds permission `perm` (lower-case id above) and every name in
 * resources[0..n) is in the union of ResourceNames of the roles granting it (n == 0: just
 * holding the permission). Unknown users hold nothing. */
MR_API bool mr_manifest_user_permitted(const mr_manifest *m, const char *user, const char *perm,
                                       const char *const *resources, size_t n);

/* Users holding updatemanifest, sorted (pointers into m, valid while m lives). *out is
 * allocated with mr_alloc (free with mr_free); NULL when there are none. */
MR_API MR_RESULT mr_manifest_update_users(const mr_manifest *m, const mr_manifest_user ***out,
                                          size_t *count);

/* ---- updates (spec §8.3, §12.7) ---- */

/* True when the document defines none of Infrastructures, Marbles, Users, RecoveryKeys,
 * Roles, Secrets, TLS (a package/SecurityVersion update). */
MR_API bool mr_manifest_is_package_update(const mr_manifest *m);

/* Rules of §8.3 step 4 against the current packages (texts without the "checking update
 * manifest: " prefix). */
MR_API MR_RESULT mr_manifest_check_package_update(const mr_manifest *update,
                                                  const mr_manifest *current);

/* Validation of a full update (§12.7 step 3): the consistency check of the new manifest,
 * failing with "invalid manifest: <reason>". */
MR_API MR_RESULT mr_manifest_check_full_update(const mr_manifest *next,
                                               const mr_manifest_check_opts *opts);

/* Acknowledgements a full update needs: Config.UpdateThreshold of the current manifest or,
 * when 0, the number of users holding updatemanifest. */
MR_API uint64_t mr_manifest_required_acks(const mr_manifest *current);

/* Comparisons used when applying a full update (§12.11). Secret definitions: Type, Size,
 * Shared, UserDefined, ValidFor. Recovery configuration: different key names/PEMs, or a
 * different threshold (0 is the same as the number of keys). */
MR_API bool mr_manifest_secret_definition_equal(const mr_manifest_secret *a,
                                                const mr_manifest_secret *b);
MR_API bool mr_manifest_recovery_changed(const mr_manifest *a, const mr_manifest *b);

#endif
