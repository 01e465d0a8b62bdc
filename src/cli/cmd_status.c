/* SPDX-License-Identifier: Apache-2.0 */
/* `marblerun status` and `marblerun certificate root|intermediate|chain` (§4.5). */
#include <stdio.h>
#include <string.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "common/alloc.h"

/* ---------------------------------------------------------------------------------------- */
/* status                                                                                     */

static MR_RESULT run_status(mr_cli *cli, int argc, char **argv)
{
    (void)argc;
    mr_result res = MR_FAILURE;
    mr_cli_conn c;
    json_t *data = NULL;
    bool v1 = false;
    mr_cli_conn_init(&c);
    MR_GUARD_OUT(mr_cli_conn_cached(cli, argv[0], &c));
    MR_GUARD_OUT(mr_cli_api(&c, "GET", "/api/v2/status", NULL, "/status", NULL, 0, NULL, &data,
                            &v1));
    json_t *code = mr_cli_json_get(data, v1 ? "StatusCode" : "code");
    const char *msg = mr_cli_json_str(data, v1 ? "StatusMessage" : "message");
    MR_ENSURE_OUT(json_is_integer(code), MR_ERR_PROTOCOL, "invalid status response");
    if (mr_cli_want_json(cli)) {
        json_t *o = json_pack("{s:I, s:s}", "code", json_integer_value(code), "message",
                              msg != NULL ? msg : "");
        MR_ENSURE_ALLOC_OUT(o);
        mr_result r = mr_cli_print_json(o);
        json_decref(o);
        MR_GUARD_OUT(r);
    } else {
        printf("%lld: %s\n", (long long)json_integer_value(code), msg != NULL ? msg : "");
    }
    res = MR_SUCCESS;
out:
    json_decref(data);
    mr_cli_conn_clear(&c);
    return res;
}

static const mr_flag status_flags[] = {
    {"output", 'o', MR_FLAG_STRING, "", "Output format: text (default) or json"},
    {NULL, 0, MR_FLAG_BOOL, NULL, NULL},
};

const mr_cmd mr_cmd_status = {
    .name = "status",
    .args_use = "<IP:PORT>",
    .short_help = "Retrieve information about the status of the MarbleRun Coordinator",
    .long_help = "This command provides information about the currently running MarbleRun "
                 "Coordinator.\nInformation is obtained by querying the Coordinator's status "
                 "endpoint.\nThe Coordinator reports one of these states:\n"
                 "0 uninitialized\n1 waiting for a recovery key (recovery mode)\n"
                 "2 ready to accept a manifest\n3 running and accepting marbles\n",
    .example = "marblerun status $MARBLERUN",
    .min_args = 1,
    .max_args = 1,
    .flags = status_flags,
    .run = run_status,
};

/* ---------------------------------------------------------------------------------------- */
/* certificate                                                                                */

enum which { ROOT, INTERMEDIATE, CHAIN };

static MR_RESULT run_cert(mr_cli *cli, char **argv, enum which w)
{
    mr_result res = MR_FAILURE;
    mr_cli_conn c;
    mr_buf cached, out;
    mr_cli_conn_init(&c);
    mr_buf_init(&cached, 0, 0);
    mr_buf_init(&out, 0, 0);
    const char *file = mr_cli_str(cli, "output");
    MR_ENSURE_OUT(file[0] != '\0', MR_ERR_USAGE, "output flag must not be empty");
    if (mr_cli_want_json(cli))
        c.info = stderr; /* keep stdout pure JSON */
    MR_GUARD_OUT(mr_cli_conn_attest(cli, argv[0], &c));
    /* the chain is intermediate then root; anchor_pem holds the root alone */
    size_t root_off = 0;
    {
        const char *p = (const char *)c.chain_pem.data;
        const char *second = NULL;
        const char *end1 = strstr(p, "-----END CERTIFICATE-----");
        if (end1 != NULL)
            second = strstr(end1 + 1, "-----BEGIN CERTIFICATE-----");
        MR_ENSURE_OUT(second != NULL, MR_ERR_PROTOCOL, "no root certificate from Coordinator");
        root_off = (size_t)(second - p);
    }
    if (!mr_cli_bool(cli, "insecure")) {
        MR_GUARD_OUT(mr_cli_cache_read_root(mr_cli_str(cli, "coordinator-cert"), &cached));
        MR_ENSURE_OUT(cached.len == c.chain_pem.len - root_off &&
                          memcmp(cached.data, c.chain_pem.data + root_off, cached.len) == 0,
                      MR_ERR_ATTESTATION,
                      "root certificate of Coordinator changed. Run 'marblerun manifest verify' "
                      "to verify the instance and update the local cache");
    }
    const uint8_t *root = c.chain_pem.data + root_off;
    size_t root_len = c.chain_pem.len - root_off;
    if (w == ROOT)
        MR_GUARD_OUT(mr_buf_append(&out, root, root_len));
    else if (w == INTERMEDIATE)
        MR_GUARD_OUT(mr_buf_append(&out, c.chain_pem.data, root_off));
    else
        MR_GUARD_OUT(mr_buf_append(&out, c.chain_pem.data, c.chain_pem.len));
    if (mr_cli_want_json(cli)) {
        json_t *o = json_object();
        MR_ENSURE_ALLOC_OUT(o);
        if (w != ROOT)
            json_object_set_new(o, "intermediate",
                                json_stringn((const char *)c.chain_pem.data, root_off));
        if (w != INTERMEDIATE)
            json_object_set_new(o, "root", json_stringn((const char *)root, root_len));
        mr_result r = mr_cli_print_json(o);
        json_decref(o);
        MR_GUARD_OUT(r);
    } else {
        MR_GUARD_OUT(mr_cli_write_file(file, out.data, out.len));
        printf("%s written to %s\n",
               w == ROOT ? "Root certificate" : w == INTERMEDIATE ? "Intermediate certificate"
                                                                  : "Certificate chain",
               file);
    }
    MR_GUARD_OUT(mr_cli_conn_save_quote(cli, &c));
    res = MR_SUCCESS;
out:
    mr_buf_free(&cached);
    mr_buf_free(&out);
    mr_cli_conn_clear(&c);
    return res;
}

static MR_RESULT run_root(mr_cli *cli, int argc, char **argv)
{
    (void)argc;
    return run_cert(cli, argv, ROOT);
}

static MR_RESULT run_intermediate(mr_cli *cli, int argc, char **argv)
{
    (void)argc;
    return run_cert(cli, argv, INTERMEDIATE);
}

static MR_RESULT run_chain(mr_cli *cli, int argc, char **argv)
{
    (void)argc;
    return run_cert(cli, argv, CHAIN);
}

static const mr_flag root_flags[] = {
    {"output", 'o', MR_FLAG_STRING, "marblerunRootCA.crt",
     "File to save the certificate to (\"json\": print as JSON)"},
    {NULL, 0, MR_FLAG_BOOL, NULL, NULL},
};
static const mr_flag intermediate_flags[] = {
    {"output", 'o', MR_FLAG_STRING, "marblerunIntermediateCA.crt",
     "File to save the certificate to (\"json\": print as JSON)"},
    {NULL, 0, MR_FLAG_BOOL, NULL, NULL},
};
static const mr_flag chain_flags[] = {
    {"output", 'o', MR_FLAG_STRING, "marblerunChainCA.crt",
     "File to save the certificate to (\"json\": print as JSON)"},
    {NULL, 0, MR_FLAG_BOOL, NULL, NULL},
};

static const mr_cmd root_cmd = {
    .name = "root",
    .args_use = "<IP:PORT>",
    .short_help = "Returns the root certificate of the MarbleRun Coordinator",
    .long_help = "Returns the root certificate of the MarbleRun Coordinator",
    .example = "marblerun certificate root $MARBLERUN -o marblerunRootCA.crt",
    .min_args = 1,
    .max_args = 1,
    .flags = root_flags,
    .run = run_root,
};
static const mr_cmd intermediate_cmd = {
    .name = "intermediate",
    .args_use = "<IP:PORT>",
    .short_help = "Returns the intermediate certificate of the MarbleRun Coordinator",
    .long_help = "Returns the intermediate certificate of the MarbleRun Coordinator",
    .example = "marblerun certificate intermediate $MARBLERUN",
    .min_args = 1,
    .max_args = 1,
    .flags = intermediate_flags,
    .run = run_intermediate,
};
static const mr_cmd chain_cmd = {
    .name = "chain",
    .args_use = "<IP:PORT>",
    .short_help = "Returns the certificate chain of the MarbleRun Coordinator",
    .long_help = "Returns the certificate chain of the MarbleRun Coordinator",
    .example = "marblerun certificate chain $MARBLERUN",
    .min_args = 1,
    .max_args = 1,
    .flags = chain_flags,
    .run = run_chain,
};

static const mr_cmd *const cert_subs[] = {&root_cmd, &intermediate_cmd, &chain_cmd, NULL};

const mr_cmd mr_cmd_certificate = {
    .name = "certificate",
    .short_help = "Retrieves the certificate of the MarbleRun Coordinator",
    .long_help = "Retrieves the certificate of the MarbleRun Coordinator",
    .subs = cert_subs,
};
