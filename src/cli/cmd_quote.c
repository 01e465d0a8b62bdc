/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `marblerun quote verify FILE`: verifies an SGX or TDX DCAP quote (raw, or in the 16-byte
 * OpenEnclave header MarbleRun uses) or an AMD SEV-SNP report (optionally followed by its
 * configfs-tsm auxblob, attest/evidence.h) with the native verifier and prints its claims and
 * TCB status. SNP reports carry no TCB verdict (their VCEK certifies REPORTED_TCB, which is
 * printed): the TCB flags do not apply to them. Exit status 0 only if the quote verifies and its TCB status is accepted by
 * --accepted-tcb-statuses / --accepted-advisories.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "attest/collateral.h"
#include "attest/dcap.h"
#include "attest/evidence.h"
#include "attest/snp_source.h"
#include "cli/commands.h"
#include "common/alloc.h"
#include "common/codec.h"
#include "common/file.h"
#include "common/log.h"
#include "common/text.h"

#define QUOTE_MAX ((size_t)1 << 20)

static const mr_flag verify_flags[] = {
    {"at", 0, MR_FLAG_STRING, "",
     "Verification time (RFC 3339, e.g. 2025-01-02T03:04:05Z, or Unix seconds); default now"},
    {"collateral", 0, MR_FLAG_STRING, "",
     "File or directory with DCAP collateral in JSON (default $EDG_ATTESTATION_COLLATERAL)"},
    {"output", 'o', MR_FLAG_STRING, "", "Output format: text (default) or json"},
    {"pccs-url", 0, MR_FLAG_STRING, "",
     "Base URL of a PCCS or the Intel PCS to fetch collateral from (default "
     "$EDG_ATTESTATION_PCCS_URL)"},
    {"snp-root", 0, MR_FLAG_STRING, "",
     "SEV-SNP, TESTS ONLY: PEM file of a self-signed ARK used instead of AMD's (default "
     "$EDG_ATTESTATION_SNP_ROOT)"},
    {"snp-vcek", 0, MR_FLAG_STRING, "",
     "SEV-SNP: directory or AMD KDS base URL for VCEKs the evidence does not carry (default "
     "$EDG_ATTESTATION_SNP_VCEK)"},
    {"root-ca", 0, MR_FLAG_STRING, "",
     "PEM file of the attestation root CA (default $EDG_ATTESTATION_ROOT_CA, else the Intel "
     "SGX Root CA)"},
    {NULL, 0, MR_FLAG_BOOL, NULL, NULL},
};

static MR_RESULT parse_time(const char *s, time_t *out)
{
    char *end = NULL;
    if (s[0] >= '0' && s[0] <= '9' && strchr(s, '-') == NULL) {
        unsigned long long v = strtoull(s, &end, 10);
        MR_ENSURE(end != NULL && *end == '\0', MR_ERR_USAGE, "invalid --at time: %s", s);
        *out = (time_t)v;
        return MR_SUCCESS;
    }
    mr_rfc3339_time t;
    mr_rfc3339_status st = mr_rfc3339_parse(s, strlen(s), MR_RFC3339_UTC_LENIENT, &t);
    MR_ENSURE(st != MR_RFC3339_BAD_ZONE, MR_ERR_USAGE,
              "invalid --at time (UTC 'Z' suffix required): %s", s);
    MR_ENSURE(st == MR_RFC3339_OK, MR_ERR_USAGE, "invalid --at time (want RFC 3339): %s", s);
    *out = (time_t)t.unix_sec;
    return MR_SUCCESS;
}

static MR_RESULT load_roots(const mr_cli *cli, mr_attest_roots **out)
{
    const char *path = mr_cli_str(cli, "root-ca");
    if (path[0] == '\0')
        return mr_attest_roots_from_config(out);
    mr_result res = MR_FAILURE;
    mr_buf pem;
    mr_buf_init(&pem, 0, 0);
    MR_GUARD_OUT(mr_file_read(path, QUOTE_MAX, &pem));
    MR_GUARD_OUT(mr_attest_roots_from_pem((const char *)pem.data, pem.len, out));
    res = MR_SUCCESS;
out:
    mr_buf_free(&pem);
    return res;
}

static MR_RESULT open_source(const mr_cli *cli, mr_collateral_source **out)
{
    const char *coll = mr_cli_str(cli, "collateral");
    const char *pccs = mr_cli_str(cli, "pccs-url");
    MR_ENSURE(coll[0] == '\0' || pccs[0] == '\0', MR_ERR_USAGE,
              "--collateral and --pccs-url are mutually exclusive");
    if (pccs[0] != '\0')
        return mr_collateral_source_pccs(pccs, false, out);
    if (coll[0] != '\0') {
        FILE *f = fopen(coll, "r");
        MR_ENSURE(f != NULL, MR_ERR_USAGE, "collateral %s: cannot open", coll);
        fclose(f);
        mr_result r = mr_collateral_source_dir(coll, out);
        if (!mr_ok(r))
            r = mr_collateral_source_file(coll, out);
        return r;
    }
    MR_GUARD(mr_collateral_source_from_config(out));
    MR_ENSURE(*out != NULL, MR_ERR_USAGE,
              "no collateral: pass --collateral FILE|DIR or --pccs-url URL, or set "
              "EDG_ATTESTATION_COLLATERAL or EDG_ATTESTATION_PCCS_URL");
    return MR_SUCCESS;
}

static MR_RESULT open_snp(const mr_cli *cli, mr_snp_source **out)
{
    mr_result res = MR_FAILURE;
    const char *root = mr_cli_str(cli, "snp-root");
    const char *vcek = mr_cli_str(cli, "snp-vcek");
    mr_buf pem;
    mr_buf_init(&pem, QUOTE_MAX, 0);
    if (root[0] == '\0' && vcek[0] == '\0')
        return mr_snp_source_from_config(out);
    mr_snp_source_opts o = {.vcek = vcek};
    if (root[0] != '\0') {
        MR_GUARD_OUT(mr_file_read(root, QUOTE_MAX, &pem));
        o.test_root = mr_buf_slice(&pem);
    }
    MR_GUARD_OUT(mr_snp_source_new(&o, out));
    if (mr_snp_source_has_test_root(*out))
        MR_LOG_WARN("SEV-SNP reports are checked against a TEST root instead of AMD's "
                    "(--snp-root): they prove nothing",
                    MR_F_STR("root", root));
    res = MR_SUCCESS;
out:
    mr_buf_free(&pem);
    return res;
}

/* The CLI's TCB policy for a verified quote (spec/marble-cli-k8s.md §4.2 step 5). */
static MR_RESULT check_tcb(const mr_cli *cli, const mr_attest_claims *c)
{
    if (c->tcb.status == MR_TCB_UP_TO_DATE)
        return MR_SUCCESS;
    const char *name = mr_tcb_status_name(c->tcb.status);
    size_t n = 0, na = 0;
    const char *const *acc = mr_cli_strings(cli, "accepted-tcb-statuses", &n);
    const char *const *adv = mr_cli_strings(cli, "accepted-advisories", &na);
    bool listed = false;
    for (size_t i = 0; i < n; i++)
        listed = listed || strcmp(acc[i], name) == 0;
    MR_ENSURE(listed, MR_ERR_ATTESTATION, "invalid TCB status: %s", name);
    if (c->tcb.status == MR_TCB_SW_HARDENING_NEEDED && na > 0) {
        for (size_t i = 0; i < c->tcb.advisory_count; i++) {
            bool ok = false;
            for (size_t k = 0; k < na; k++)
                ok = ok || strcasecmp(adv[k], c->tcb.advisories[i]) == 0;
            MR_ENSURE(ok, MR_ERR_ATTESTATION,
                      "invalid TCB status: SWHardeningNeeded: advisories not accepted by "
                      "configuration: [%s]",
                      c->tcb.advisories[i]);
        }
    }
    return MR_SUCCESS;
}

static void hex_str(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static void time_str(time_t t, char *out, size_t size)
{
    struct tm tm;
    if (t == 0 || gmtime_r(&t, &tm) == NULL || strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        (void)snprintf(out, size, "-");
}

static const char *tee_name(mr_tee_type t)
{
    return t == MR_TEE_SGX ? "SGX" : t == MR_TEE_TDX ? "TDX" : t == MR_TEE_SNP ? "SEV-SNP" : "none";
}

static void snp_json(json_t *o, const mr_attest_snp_claims *s)
{
    char h[2 * 64 + 1];
    hex_str(s->measurement, 48, h);
    json_object_set_new(o, "measurement", json_string(h));
    hex_str(s->host_data, 32, h);
    json_object_set_new(o, "hostData", json_string(h));
    hex_str(s->id_key_digest, 48, h);
    json_object_set_new(o, "idKeyDigest", json_string(h));
    hex_str(s->author_key_digest, 48, h);
    json_object_set_new(o, "authorKeyDigest", json_string(h));
    hex_str(s->chip_id, 64, h);
    json_object_set_new(o, "chipID", json_string(h));
    json_object_set_new(o, "policy", json_integer((json_int_t)(s->policy & INT64_MAX)));
    json_object_set_new(o, "vmpl", json_integer(s->vmpl));
    json_object_set_new(o, "guestSVN", json_integer(s->guest_svn));
    char tcb[20];
    (void)snprintf(tcb, sizeof(tcb), "%016llx", (unsigned long long)s->reported_tcb);
    json_object_set_new(o, "reportedTCB", json_string(tcb));
    json_object_set_new(o, "signingKey", json_string(((s->signer_info >> 2) & 7) == 1 ? "VLEK"
                                                                                       : "VCEK"));
    json_object_set_new(o, "product", json_string(s->product));
}

static void snp_text(const mr_attest_snp_claims *s)
{
    char h[2 * 64 + 1];
    hex_str(s->measurement, 48, h);
    printf("Measurement               : %s\n", h);
    hex_str(s->host_data, 32, h);
    printf("HostData                  : %s\n", h);
    hex_str(s->id_key_digest, 48, h);
    printf("IDKeyDigest               : %s\n", h);
    printf("Policy                    : 0x%llx\n", (unsigned long long)s->policy);
    printf("VMPL                      : %u\n", s->vmpl);
    printf("Reported TCB              : bl=%u tee=%u snp=%u ucode=%u\n",
           (unsigned)(s->reported_tcb & 0xff), (unsigned)((s->reported_tcb >> 8) & 0xff),
           (unsigned)((s->reported_tcb >> 48) & 0xff), (unsigned)((s->reported_tcb >> 56) & 0xff));
    printf("Signing key               : %s\n", ((s->signer_info >> 2) & 7) == 1 ? "VLEK" : "VCEK");
    hex_str(s->chip_id, 64, h);
    printf("CHIP_ID                   : %s\n", h);
}

static json_t *claims_json(const mr_attest_claims *c, const char *verdict)
{
    char h[2 * 64 + 1], from[32], to[32];
    json_t *o = json_object();
    json_t *adv = json_array();
    for (size_t i = 0; i < c->tcb.advisory_count; i++)
        json_array_append_new(adv, json_string(c->tcb.advisories[i]));
    json_object_set_new(o, "tee", json_string(tee_name(c->tee)));
    json_object_set_new(o, "quoteVersion", json_integer(c->quote_version));
    json_object_set_new(o, "tcbStatus", json_string(mr_tcb_status_name(c->tcb.status)));
    json_object_set_new(o, "advisoryIDs", adv);
    json_object_set_new(o, "debug", json_boolean(c->debug));
    hex_str(c->report_data, sizeof(c->report_data), h);
    json_object_set_new(o, "reportData", json_string(h));
    if (c->tee == MR_TEE_SGX) {
        hex_str(c->u.sgx.mrenclave, 32, h);
        json_object_set_new(o, "uniqueID", json_string(h));
        hex_str(c->u.sgx.mrsigner, 32, h);
        json_object_set_new(o, "signerID", json_string(h));
        json_object_set_new(o, "productID", json_integer(c->u.sgx.isvprodid));
        json_object_set_new(o, "securityVersion", json_integer(c->u.sgx.isvsvn));
    } else if (c->tee == MR_TEE_TDX) {
        hex_str(c->u.tdx.mrtd, 48, h);
        json_object_set_new(o, "mrtd", json_string(h));
        for (int i = 0; i < 4; i++) {
            char k[8];
            (void)snprintf(k, sizeof(k), "rtmr%d", i);
            hex_str(c->u.tdx.rtmr[i], 48, h);
            json_object_set_new(o, k, json_string(h));
        }
        hex_str(c->u.tdx.mrseam, 48, h);
        json_object_set_new(o, "mrseam", json_string(h));
    } else if (c->tee == MR_TEE_SNP) {
        snp_json(o, &c->u.snp);
    }
    hex_str(c->tcb.fmspc, 6, h);
    json_object_set_new(o, "fmspc", json_string(h));
    time_str(c->tcb.latest_issue_date, from, sizeof(from));
    time_str(c->tcb.earliest_next_update, to, sizeof(to));
    json_object_set_new(o, "collateralIssued", json_string(from));
    json_object_set_new(o, "collateralNextUpdate", json_string(to));
    json_object_set_new(o, "verdict", json_string(verdict));
    return o;
}

static void print_text(const mr_attest_claims *c)
{
    char h[2 * 64 + 1], from[32], to[32];
    printf("Quote verified: %s %s version %u\n", tee_name(c->tee),
           c->tee == MR_TEE_SNP ? "report" : "quote", c->quote_version);
    printf("TCB status                : %s\n", mr_tcb_status_name(c->tcb.status));
    printf("TCB advisories            : [");
    for (size_t i = 0; i < c->tcb.advisory_count; i++)
        printf("%s%s", i ? " " : "", c->tcb.advisories[i]);
    printf("]\n");
    if (c->tee == MR_TEE_SGX) {
        hex_str(c->u.sgx.mrenclave, 32, h);
        printf("UniqueID (MRENCLAVE)      : %s\n", h);
        hex_str(c->u.sgx.mrsigner, 32, h);
        printf("SignerID (MRSIGNER)       : %s\n", h);
        printf("ProductID (ISVPRODID)     : %u\n", c->u.sgx.isvprodid);
        printf("SecurityVersion (ISVSVN)  : %u\n", c->u.sgx.isvsvn);
    } else if (c->tee == MR_TEE_TDX) {
        hex_str(c->u.tdx.mrtd, 48, h);
        printf("MRTD                      : %s\n", h);
        for (int i = 0; i < 4; i++) {
            hex_str(c->u.tdx.rtmr[i], 48, h);
            printf("RTMR%d                     : %s\n", i, h);
        }
    } else if (c->tee == MR_TEE_SNP) {
        snp_text(&c->u.snp);
    }
    printf("Debug                     : %s\n", c->debug ? "true" : "false");
    hex_str(c->report_data, sizeof(c->report_data), h);
    printf("Report data               : %s\n", h);
    if (c->tee == MR_TEE_SNP)
        return;
    hex_str(c->tcb.fmspc, 6, h);
    printf("FMSPC                     : %s\n", h);
    time_str(c->tcb.latest_issue_date, from, sizeof(from));
    time_str(c->tcb.earliest_next_update, to, sizeof(to));
    printf("Collateral valid          : %s .. %s\n", from, to);
}

static MR_RESULT print_json(json_t *o)
{
    mr_result res = MR_FAILURE;
    mr_buf b;
    mr_buf_init(&b, 0, 0);
    size_t n = json_dumpb(o, NULL, 0, JSON_INDENT(2) | JSON_SORT_KEYS);
    MR_GUARD_OUT(mr_buf_reserve(&b, n));
    b.len = json_dumpb(o, (char *)b.data, n, JSON_INDENT(2) | JSON_SORT_KEYS);
    printf("%.*s\n", (int)b.len, (const char *)b.data);
    res = MR_SUCCESS;
out:
    mr_buf_free(&b);
    return res;
}

static MR_RESULT run_verify(mr_cli *cli, int argc, char **argv)
{
    (void)argc;
    mr_result res = MR_FAILURE;
    mr_attest_roots *roots = NULL;
    mr_collateral_source *src = NULL;
    mr_snp_source *snp = NULL;
    mr_attest_claims claims;
    mr_buf quote;
    mr_buf_init(&quote, QUOTE_MAX, 0);
    memset(&claims, 0, sizeof(claims));
    const char *out = mr_cli_str(cli, "output");
    MR_ENSURE_OUT(out[0] == '\0' || strcmp(out, "text") == 0 || strcmp(out, "json") == 0,
                  MR_ERR_USAGE, "unknown output format %s (want text or json)", out);
    mr_attest_options opts = {0};
    if (mr_cli_str(cli, "at")[0] != '\0')
        MR_GUARD_OUT(parse_time(mr_cli_str(cli, "at"), &opts.verify_time));
    MR_GUARD_OUT(mr_file_read(argv[0], QUOTE_MAX, &quote));
    bool is_snp = mr_evidence_format_of(quote.data, quote.len) == MR_EVIDENCE_SNP;
    if (is_snp) {
        MR_GUARD_OUT(open_snp(cli, &snp));
    } else {
        MR_GUARD_OUT(load_roots(cli, &roots));
        MR_GUARD_OUT(open_source(cli, &src));
    }
    opts.roots = roots;
    opts.source = src;
    opts.snp = snp;
    MR_GUARD_OUT(mr_attest_verify(quote.data, quote.len, &opts, &claims));
    mr_result policy = is_snp ? MR_SUCCESS : check_tcb(cli, &claims);
    if (mr_cli_output_json(cli)) {
        json_t *o = claims_json(&claims, mr_ok(policy) ? "accepted" : mr_error_get()->msg);
        mr_result pr = print_json(o);
        json_decref(o);
        MR_GUARD_OUT(pr);
    } else {
        print_text(&claims);
    }
    MR_GUARD_OUT(policy);
    res = MR_SUCCESS;
out:
    mr_snp_source_free(snp);
    mr_collateral_source_free(src);
    mr_attest_roots_free(roots);
    mr_buf_free(&quote);
    return res;
}

static const mr_cmd verify_cmd = {
    .name = "verify",
    .args_use = "<quote file>",
    .short_help = "Verify an SGX or TDX DCAP quote or an SEV-SNP report and print its claims",
    .long_help = "Verify an SGX or TDX DCAP quote (raw, or with MarbleRun's OpenEnclave header) "
                 "natively, without Intel's libraries, and print its measurements and TCB "
                 "status.\nExits 0 only if the quote verifies and its TCB status is accepted "
                 "(--accepted-tcb-statuses, --accepted-advisories).\nAn AMD SEV-SNP report "
                 "(1184 bytes, optionally followed by the configfs-tsm auxblob with its VCEK) "
                 "is verified against AMD's roots (--snp-root for a TEST root) and printed "
                 "with its REPORTED_TCB; the TCB flags do not apply to it.",
    .example = "  marblerun quote verify quote.bin --collateral collateral.json\n"
               "  marblerun quote verify quote.bin --pccs-url https://localhost:8081 -o json\n"
               "  marblerun quote verify report.bin --snp-vcek https://kdsintf.amd.com",
    .min_args = 1,
    .max_args = 1,
    .flags = verify_flags,
    .run = run_verify,
};

static const mr_cmd *const subs[] = {&verify_cmd, NULL};

const mr_cmd mr_cmd_quote = {
    .name = "quote",
    .short_help = "Verify attestation quotes",
    .subs = subs,
};
