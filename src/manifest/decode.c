/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mr_manifest_decode: maps the duplicate-preserving JSON tree onto the manifest model with
 * the rules of Go's encoding/json (spec §0.2). This file holds the Go structs of the manifest
 * (Package, Infrastructure, File, Marble, Secret, User, Role, TLS, Config) as field tables;
 * the engine that walks them is decode_value.c, Secret.Cert is decode_cert.c and time.Time
 * decode_time.c (decode_int.h has the failure rules).
 */
#include <stddef.h>
#include <string.h>

#include "common/alloc.h"
#include "common/codec.h"
#include "common/text.h"
#include "manifest/decode_int.h"

/* ---- Package, Infrastructure ---- */

/* Package.TDX and Package.SNP (MarbleRun-C; pointers to structs in Go terms: null or
 * absent = not a TDX/SNP package). */
static const field tdx_fields[] = {
    FLD(mr_manifest_tdx, "MRTD", F_STR, mrtd, "string"),
    FLD(mr_manifest_tdx, "RTMR0", F_STR, rtmr[0], "string"),
    FLD(mr_manifest_tdx, "RTMR1", F_STR, rtmr[1], "string"),
    FLD(mr_manifest_tdx, "RTMR2", F_STR, rtmr[2], "string"),
    FLD(mr_manifest_tdx, "RTMR3", F_STR, rtmr[3], "string"),
    FLD(mr_manifest_tdx, "MRConfigID", F_STR, mrconfigid, "string"),
    FLD(mr_manifest_tdx, "MROwner", F_STR, mrowner, "string"),
    FLD(mr_manifest_tdx, "MROwnerConfig", F_STR, mrownerconfig, "string"),
    FLD(mr_manifest_tdx, "TDAttributes", F_STR, td_attributes, "string"),
    FLD(mr_manifest_tdx, "TDAttributesMask", F_STR, td_attributes_mask, "string"),
    FLD(mr_manifest_tdx, "XFAM", F_STR, xfam, "string"),
    FLD(mr_manifest_tdx, "XFAMMask", F_STR, xfam_mask, "string"),
    FLD(mr_manifest_tdx, "MinTEETCBSVN", F_STR, min_tee_tcb_svn, "string"),
};

static MR_RESULT dec_tdx(dctx *c, mr_mj_node *v, void *obj)
{
    mr_manifest_package *p = obj;
    if (v->kind == MR_MJ_NULL) {
        mr_manifest_tdx_free_(&p->tdx);
        return MR_SUCCESS;
    }
    p->tdx.present = true;
    return mr_mdec_struct(c, v, &p->tdx, "TDXProperties", "quote.TDXProperties", tdx_fields,
                          MR_ARRAY_LEN(tdx_fields));
}

#define SNPP(name, member, hasm)                                                              \
    {name, F_OPT_BOOL, offsetof(mr_manifest_snp, policy.member),                             \
     offsetof(mr_manifest_snp, policy.hasm), "bool", NULL}
static const field snp_policy_fields[] = {
    SNPP("SMT", smt, has_smt),
    {"MigrationAgent", F_BOOL, offsetof(mr_manifest_snp, policy.migration_agent), 0, "bool", NULL},
    SNPP("SingleSocket", single_socket, has_single_socket),
};

#define SNPT(name, member, hasm)                                                              \
    {name, F_OPT_U8, offsetof(mr_manifest_snp, minimum_tcb.member),                          \
     offsetof(mr_manifest_snp, minimum_tcb.hasm), "uint8", NULL}
static const field snp_tcb_fields[] = {
    SNPT("Bootloader", bl, has_bl),
    SNPT("TEE", tee, has_tee),
    SNPT("SNP", snp, has_snp),
    SNPT("Microcode", ucode, has_ucode),
};

static MR_RESULT dec_snp_policy(dctx *c, mr_mj_node *v, void *obj)
{
    return mr_mdec_struct(c, v, obj, "SNPPolicy", "quote.SNPPolicy", snp_policy_fields,
                          MR_ARRAY_LEN(snp_policy_fields));
}

static MR_RESULT dec_snp_tcb(dctx *c, mr_mj_node *v, void *obj)
{
    return mr_mdec_struct(c, v, obj, "SNPTCB", "quote.SNPTCB", snp_tcb_fields,
                          MR_ARRAY_LEN(snp_tcb_fields));
}

static const field snp_fields[] = {
    FLD(mr_manifest_snp, "Measurement", F_STR, measurement, "string"),
    FLD(mr_manifest_snp, "HostData", F_STR, host_data, "string"),
    FLD(mr_manifest_snp, "IDKeyDigest", F_STR, id_key_digest, "string"),
    FLD(mr_manifest_snp, "AuthorKeyDigest", F_STR, author_key_digest, "string"),
    FLD(mr_manifest_snp, "FamilyID", F_STR, family_id, "string"),
    FLD(mr_manifest_snp, "ImageID", F_STR, image_id, "string"),
    CUS("Policy", dec_snp_policy),
    OPT(mr_manifest_snp, "VMPL", F_OPT_U8, vmpl, has_vmpl, "uint8"),
    OPT(mr_manifest_snp, "MinGuestSVN", F_OPT_UINT, min_guest_svn, has_min_guest_svn, "uint32"),
    CUS("MinimumTCB", dec_snp_tcb),
    FLD(mr_manifest_snp, "AcceptedSigningKeys", F_STRLIST, accepted_signing_keys, "[]string"),
};

static MR_RESULT dec_snp(dctx *c, mr_mj_node *v, void *obj)
{
    mr_manifest_package *p = obj;
    if (v->kind == MR_MJ_NULL) {
        mr_manifest_snp_free_(&p->snp);
        return MR_SUCCESS;
    }
    p->snp.present = true;
    return mr_mdec_struct(c, v, &p->snp, "SNPProperties", "quote.SNPProperties", snp_fields,
                          MR_ARRAY_LEN(snp_fields));
}

static const field package_fields[] = {
    FLD(mr_manifest_package, "Debug", F_BOOL, debug, "bool"),
    FLD(mr_manifest_package, "UniqueID", F_STR, unique_id, "string"),
    FLD(mr_manifest_package, "SignerID", F_STR, signer_id, "string"),
    OPT(mr_manifest_package, "ProductID", F_OPT_U64, product_id, has_product_id, "uint64"),
    OPT(mr_manifest_package, "SecurityVersion", F_OPT_UINT, security_version,
        has_security_version, "uint"),
    FLD(mr_manifest_package, "AcceptedTCBStatuses", F_STRLIST, accepted_tcb_statuses, "[]string"),
    FLD(mr_manifest_package, "AcceptedAdvisories", F_STRLIST, accepted_advisories, "[]string"),
    CUS("TDX", dec_tdx),
    CUS("SNP", dec_snp),
};

static MR_RESULT dec_package(dctx *c, mr_mj_node *v, void *e)
{
    return mr_mdec_struct(c, v, e, "PackageProperties", "quote.PackageProperties", package_fields,
                          MR_ARRAY_LEN(package_fields));
}

static const field infra_fields[] = {
    FLD(mr_manifest_infra, "CPUSVN", F_BYTES, cpusvn, "[]uint8"),
    OPT(mr_manifest_infra, "QESVN", F_OPT_U16, qesvn, has_qesvn, "uint16"),
    OPT(mr_manifest_infra, "PCESVN", F_OPT_U16, pcesvn, has_pcesvn, "uint16"),
    FLD(mr_manifest_infra, "RootCA", F_BYTES, root_ca, "[]uint8"),
};

static MR_RESULT dec_infra(dctx *c, mr_mj_node *v, void *e)
{
    return mr_mdec_struct(c, v, e, "InfrastructureProperties", "quote.InfrastructureProperties",
                          infra_fields, MR_ARRAY_LEN(infra_fields));
}

/* ---- File (custom UnmarshalJSON in MarbleRun) ---- */

typedef struct file_obj {
    mr_mstr data;
    mr_mstr encoding;
    bool no_templates;
} file_obj;

static const field file_fields[] = {
    FLD(file_obj, "Data", F_STR, data, "string"),
    FLD(file_obj, "Encoding", F_STR, encoding, "string"),
    FLD(file_obj, "NoTemplates", F_BOOL, no_templates, "bool"),
};

/* hex.DecodeString with Go's error texts (the first bad character wins over odd length). */
static MR_RESULT hex_decode_go(const char *s, size_t len, mr_buf *out)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        bool ok = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
        if (ok)
            continue;
        if (ch >= 0x20 && ch < 0x7f)
            MR_BAIL(MR_ERR_USAGE, "encoding/hex: invalid byte: U+%04X '%c'", ch, ch);
        MR_BAIL(MR_ERR_USAGE, "encoding/hex: invalid byte: U+%04X", ch);
    }
    MR_ENSURE(len % 2 == 0, MR_ERR_USAGE, "encoding/hex: odd length hex string");
    return mr_hex_decode_buf(s, len, out);
}

static MR_RESULT dec_file(dctx *c, mr_mj_node *v, void *e)
{
    (void)c;
    mr_manifest_file *f = e;
    mr_result res = MR_FAILURE;
    file_obj fo = {0};
    dctx inner = {0};
    mr_buf b;
    mr_buf_init(&b, 0, 0);
    char lower[16];

    switch (v->kind) {
    case MR_MJ_STRING:
        MR_GUARD(mr_mdec_mstr_set(&f->data, v->str, v->len));
        MR_GUARD(mr_mdec_mstr_set(&f->encoding, "string", 6));
        f->no_templates = false;
        return MR_SUCCESS;
    case MR_MJ_NULL:
        MR_BAIL(MR_ERR_USAGE, "got: %%!t(<nil>), expected: string or interface");
    case MR_MJ_BOOL:
        MR_BAIL(MR_ERR_USAGE, "got: %s, expected: string or interface", v->boolean ? "true" : "false");
    case MR_MJ_NUMBER:
        MR_BAIL(MR_ERR_USAGE, "got: %%!t(float64=%.64s), expected: string or interface", v->str);
    case MR_MJ_ARRAY:
        MR_BAIL(MR_ERR_USAGE, "json: cannot unmarshal array into Go value of type struct { Data "
                              "string; Encoding string; NoTemplates bool }");
    case MR_MJ_OBJECT:
        break;
    }
    MR_GUARD_OUT(mr_mdec_struct(&inner, v, &fo, "", "", file_fields, MR_ARRAY_LEN(file_fields)));
    MR_ENSURE_OUT(!inner.has_saved, MR_ERR_USAGE, "%s", inner.saved);
    if (fo.encoding.len == 0)
        MR_GUARD_OUT(mr_mdec_mstr_set(&fo.encoding, "string", 6));
    if (!mr_manifest_lower(fo.encoding.ptr, fo.encoding.len, lower, sizeof(lower)))
        lower[0] = '\0';
    if (strcmp(lower, "string") == 0) {
        MR_GUARD_OUT(mr_mdec_mstr_set(&f->data, fo.data.ptr ? fo.data.ptr : "", fo.data.len));
    } else if (strcmp(lower, "base64") == 0) {
        MR_GUARD_OUT(mr_b64_decode_buf(fo.data.ptr ? fo.data.ptr : "", fo.data.len, MR_B64_STD,
                                       MR_B64_IGNORE_NEWLINES, &b));
        MR_GUARD_OUT(mr_mdec_mstr_set(&f->data, b.len ? (const char *)b.data : "", b.len));
    } else if (strcmp(lower, "hex") == 0) {
        MR_GUARD_OUT(hex_decode_go(fo.data.ptr ? fo.data.ptr : "", fo.data.len, &b));
        MR_GUARD_OUT(mr_mdec_mstr_set(&f->data, b.len ? (const char *)b.data : "", b.len));
    } else {
        MR_BAIL_OUT(MR_ERR_USAGE, "unknown encoding type: %s", fo.encoding.ptr);
    }
    mr_manifest_mstr_free(&f->encoding);
    f->encoding = fo.encoding;
    fo.encoding = (mr_mstr){0};
    f->no_templates = fo.no_templates;
    res = MR_SUCCESS;
out:
    mr_manifest_mstr_free(&fo.data);
    mr_manifest_mstr_free(&fo.encoding);
    mr_buf_free(&b);
    return res;
}

static void file_free(void *e) { mr_manifest_file_free_(e); }

/* ---- Marble ---- */

static MR_RESULT dec_files(dctx *c, mr_mj_node *v, void *obj)
{
    mr_manifest_marble *m = obj;
    return mr_mdec_map(c, v, (gvec *)(void *)&m->parameters.files, sizeof(mr_manifest_file),
                       dec_file, file_free, "map[string]manifest.File");
}

static MR_RESULT dec_env(dctx *c, mr_mj_node *v, void *obj)
{
    mr_manifest_marble *m = obj;
    return mr_mdec_map(c, v, (gvec *)(void *)&m->parameters.env, sizeof(mr_manifest_file), dec_file,
                       file_free, "map[string]manifest.File");
}

static const field params_fields[] = {
    CUS("Files", dec_files),
    CUS("Env", dec_env),
    {"Argv", F_STRLIST, offsetof(mr_manifest_marble, parameters.argv), 0, "[]string", NULL},
};

static MR_RESULT dec_params(dctx *c, mr_mj_node *v, void *obj)
{
    return mr_mdec_struct(c, v, obj, "Parameters", "manifest.Parameters", params_fields,
                          MR_ARRAY_LEN(params_fields));
}

static const field marble_fields[] = {
    FLD(mr_manifest_marble, "Package", F_STR, package, "string"),
    FLD(mr_manifest_marble, "MaxActivations", F_UINT, max_activations, "uint"),
    CUS("Parameters", dec_params),
    FLD(mr_manifest_marble, "TLS", F_STRLIST, tls, "[]string"),
    FLD(mr_manifest_marble, "DisableSecretBinding", F_BOOL, disable_secret_binding, "bool"),
};

static MR_RESULT dec_marble(dctx *c, mr_mj_node *v, void *e)
{
    return mr_mdec_struct(c, v, e, "Marble", "manifest.Marble", marble_fields,
                          MR_ARRAY_LEN(marble_fields));
}

/* ---- Secret, User, Role, TLS, Config ---- */

static const field secret_fields[] = {
    FLD(mr_manifest_secret, "Type", F_STR, type, "string"),
    FLD(mr_manifest_secret, "Size", F_UINT, size, "uint"),
    FLD(mr_manifest_secret, "Shared", F_BOOL, shared, "bool"),
    FLD(mr_manifest_secret, "UserDefined", F_BOOL, user_defined, "bool"),
    CUS("Cert", mr_mdec_cert),
    FLD(mr_manifest_secret, "ValidFor", F_UINT, valid_for, "uint"),
    FLD(mr_manifest_secret, "Private", F_BYTES, private_key, "manifest.PrivateKey"),
    FLD(mr_manifest_secret, "Public", F_BYTES, public_key, "manifest.PublicKey"),
};

static MR_RESULT dec_secret(dctx *c, mr_mj_node *v, void *e)
{
    return mr_mdec_struct(c, v, e, "Secret", "manifest.Secret", secret_fields,
                          MR_ARRAY_LEN(secret_fields));
}

static const field user_fields[] = {
    FLD(mr_manifest_user, "Certificate", F_STR, certificate, "string"),
    FLD(mr_manifest_user, "Roles", F_STRLIST, roles, "[]string"),
};

static MR_RESULT dec_user(dctx *c, mr_mj_node *v, void *e)
{
    return mr_mdec_struct(c, v, e, "User", "manifest.User", user_fields, MR_ARRAY_LEN(user_fields));
}

static const field role_fields[] = {
    FLD(mr_manifest_role, "ResourceType", F_STR, resource_type, "string"),
    FLD(mr_manifest_role, "ResourceNames", F_STRLIST, resource_names, "[]string"),
    FLD(mr_manifest_role, "Actions", F_STRLIST, actions, "[]string"),
};

static MR_RESULT dec_role(dctx *c, mr_mj_node *v, void *e)
{
    return mr_mdec_struct(c, v, e, "Role", "manifest.Role", role_fields, MR_ARRAY_LEN(role_fields));
}

static MR_RESULT dec_reckey(dctx *c, mr_mj_node *v, void *e)
{
    mr_manifest_recovery_key *k = e;
    return mr_mdec_string(c, v, &k->pem);
}

static const field tls_entry_fields[] = {
    FLD(mr_manifest_tls_entry, "Port", F_STR, port, "string"),
    FLD(mr_manifest_tls_entry, "Addr", F_STR, addr, "string"),
    FLD(mr_manifest_tls_entry, "Cert", F_STR, cert, "string"),
    FLD(mr_manifest_tls_entry, "DisableClientAuth", F_BOOL, disable_client_auth, "bool"),
    FLD(mr_manifest_tls_entry, "AllowedMarbleTypes", F_STRLIST, allowed_marble_types, "[]string"),
};

static MR_RESULT dec_tls_entry(dctx *c, mr_mj_node *v, void *e)
{
    return mr_mdec_struct(c, v, e, "TLSTagEntry", "manifest.TLSTagEntry", tls_entry_fields,
                          MR_ARRAY_LEN(tls_entry_fields));
}

static void tls_entry_free(void *e)
{
    mr_manifest_tls_entry *t = e;
    mr_manifest_mstr_free(&t->port);
    mr_manifest_mstr_free(&t->addr);
    mr_manifest_mstr_free(&t->cert);
    mr_manifest_mstr_list_free(&t->allowed_marble_types);
}

static MR_RESULT dec_outgoing(dctx *c, mr_mj_node *v, void *obj)
{
    mr_manifest_tls_tag *t = obj;
    return mr_mdec_slice(c, v, (gvec *)(void *)&t->outgoing, sizeof(mr_manifest_tls_entry),
                         dec_tls_entry, tls_entry_free, "[]manifest.TLSTagEntry");
}

static MR_RESULT dec_incoming(dctx *c, mr_mj_node *v, void *obj)
{
    mr_manifest_tls_tag *t = obj;
    return mr_mdec_slice(c, v, (gvec *)(void *)&t->incoming, sizeof(mr_manifest_tls_entry),
                         dec_tls_entry, tls_entry_free, "[]manifest.TLSTagEntry");
}

static const field tls_tag_fields[] = {
    CUS("Outgoing", dec_outgoing),
    CUS("Incoming", dec_incoming),
};

static MR_RESULT dec_tls_tag(dctx *c, mr_mj_node *v, void *e)
{
    return mr_mdec_struct(c, v, e, "TLStag", "manifest.TLStag", tls_tag_fields,
                          MR_ARRAY_LEN(tls_tag_fields));
}

static const field config_fields[] = {
    FLD(mr_manifest_config, "SealMode", F_STR, seal_mode, "string"),
    FLD(mr_manifest_config, "FeatureGates", F_STRLIST, feature_gates, "[]string"),
    FLD(mr_manifest_config, "UpdateThreshold", F_UINT, update_threshold, "uint"),
    FLD(mr_manifest_config, "RecoveryThreshold", F_UINT, recovery_threshold, "uint"),
    FLD(mr_manifest_config, "RotateRootSecret", F_BOOL, rotate_root_secret, "bool"),
};

static MR_RESULT dec_config(dctx *c, mr_mj_node *v, void *obj)
{
    mr_manifest *m = obj;
    return mr_mdec_struct(c, v, &m->config, "Config", "manifest.Config", config_fields,
                          MR_ARRAY_LEN(config_fields));
}

/* ---- top level ---- */

#define MAPFN(fname, member, T, efn, ffn, gt)                                                  \
    static void fname##_free(void *e) { ffn((T *)e); }                                        \
    static MR_RESULT fname(dctx *c, mr_mj_node *v, void *obj)                           \
    {                                                                                         \
        mr_manifest *m = obj;                                                                 \
        return mr_mdec_map(c, v, (gvec *)(void *)&m->member, sizeof(T), efn, fname##_free, gt);  \
    }

MAPFN(dec_packages, packages, mr_manifest_package, dec_package, mr_manifest_package_free_,
      "map[string]quote.PackageProperties")
MAPFN(dec_infras, infrastructures, mr_manifest_infra, dec_infra, mr_manifest_infra_free_,
      "map[string]quote.InfrastructureProperties")
MAPFN(dec_marbles, marbles, mr_manifest_marble, dec_marble, mr_manifest_marble_free_,
      "map[string]manifest.Marble")
MAPFN(dec_users, users, mr_manifest_user, dec_user, mr_manifest_user_free_,
      "map[string]manifest.User")
MAPFN(dec_secrets, secrets, mr_manifest_secret, dec_secret, mr_manifest_secret_free_,
      "map[string]manifest.Secret")
MAPFN(dec_reckeys, recovery_keys, mr_manifest_recovery_key, dec_reckey, mr_manifest_reckey_free_,
      "map[string]string")
MAPFN(dec_roles, roles, mr_manifest_role, dec_role, mr_manifest_role_free_,
      "map[string]manifest.Role")
MAPFN(dec_tls, tls, mr_manifest_tls_tag, dec_tls_tag, mr_manifest_tls_tag_free_,
      "map[string]manifest.TLStag")

static const field manifest_fields[] = {
    CUS("Packages", dec_packages),
    CUS("Infrastructures", dec_infras),
    CUS("Marbles", dec_marbles),
    CUS("Users", dec_users),
    CUS("Secrets", dec_secrets),
    CUS("RecoveryKeys", dec_reckeys),
    CUS("Roles", dec_roles),
    CUS("TLS", dec_tls),
    CUS("Config", dec_config),
};

static MR_RESULT decode(const uint8_t *json, size_t len, mr_manifest **out)
{
    mr_result res = MR_FAILURE;
    mr_mj_node root = {0};
    mr_manifest *m = NULL;
    dctx c = {0};

    *out = NULL;
    MR_ENSURE(json != NULL || len == 0, MR_ERR_INTERNAL, "internal error: json is NULL");
    MR_GUARD_OUT(mr_manifest_json_parse(json ? json : (const uint8_t *)"", len, &root));
    m = mr_calloc(1, sizeof(*m));
    MR_ENSURE_ALLOC_OUT(m);
    MR_GUARD_OUT(mr_mdec_struct(&c, &root, m, "Manifest", "manifest.Manifest", manifest_fields,
                                MR_ARRAY_LEN(manifest_fields)));
    if (c.has_saved)
        MR_BAIL_OUT(MR_ERR_USAGE, "%s", c.saved);
    m->raw.ptr = mr_alloc(len ? len : 1);
    MR_ENSURE_ALLOC_OUT(m->raw.ptr);
    if (len)
        memcpy(m->raw.ptr, json, len);
    m->raw.len = len;
    m->raw.present = true;
    MR_GUARD_OUT(mr_manifest_fingerprint(m->raw.ptr, len, m->fingerprint));
    *out = m;
    m = NULL;
    res = MR_SUCCESS;
out:
    mr_manifest_json_free(&root);
    mr_manifest_free(m);
    return res;
}

MR_RESULT mr_manifest_decode(const uint8_t *json, size_t len, mr_manifest **out)
{
    return decode(json, len, out);
}