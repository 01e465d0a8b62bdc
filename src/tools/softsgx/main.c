/* SPDX-License-Identifier: Apache-2.0 */
/*
 * marblerun-softsgx: creates a TEST SGX DCAP PKI and makes real-format quotes from it, so that
 * tests exercise the real quote verifier on machines without SGX. Never trust its output.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "attest/softsgx.h"
#include "common/buf.h"
#include "common/codec.h"
#include "common/result.h"
#include "tool.h"

#ifndef MR_VERSION
#define MR_VERSION "0.0.0"
#endif

static const char USAGE[] =
    "marblerun-softsgx - SGX DCAP quotes for TESTS, made without SGX hardware\n"
    "\n"
    "  *** WARNING: this is a TEST tool. Its quotes are signed by a self-made TEST PKI, ***\n"
    "  *** not by Intel, and prove NOTHING about the code that asked for them. No real  ***\n"
    "  *** relying party should ever trust them. A MarbleRun-C verifier accepts them    ***\n"
    "  *** only when started with EDG_ATTESTATION_ROOT_CA=DIR/root-ca.pem.              ***\n"
    "\n"
    "Usage:\n"
    "  marblerun-softsgx init DIR [--tcb-status S] [--qe-tcb-status S] [--valid-days N]\n"
    "                             [--revoke-pck] [--time UNIX-SECONDS] [--pck-ca KIND]\n"
    "      Create the TEST root CA, PCK CA, PCK certificate (with the SGX extension), TCB\n"
    "      signing certificate, CRLs, and signed TCB Info / QE Identity in DIR:\n"
    "      DIR/root-ca.pem, DIR/collateral.json, DIR/private/ (keys, mode 0600).\n"
    "      --tcb-status S     platform TCB status a correct verifier must compute: UpToDate\n"
    "                         (default), SWHardeningNeeded, ConfigurationNeeded,\n"
    "                         ConfigurationAndSWHardeningNeeded, OutOfDate,\n"
    "                         OutOfDateConfigurationNeeded, Revoked, TcbNotSupported\n"
    "      --qe-tcb-status S  QE TCB status: UpToDate (default), OutOfDate, Revoked\n"
    "      --valid-days N     validity of certificates, CRLs and collateral (default 30)\n"
    "      --revoke-pck       list the PCK certificate in the PCK CRL\n"
    "      --pck-ca KIND      processor (default) or platform: which PCK CA issues the PCK\n"
    "      --time T           pretend it is T (Unix seconds) instead of now: validity starts\n"
    "                         one hour before T (for tests with a fixed verification time)\n"
    "\n"
    "  marblerun-softsgx quote DIR --report-data HEX [--mrenclave HEX] [--mrsigner HEX]\n"
    "                             [--isvprodid N] [--isvsvn N] [--debug] [--raw] [--out FILE]\n"
    "                             [--quote-version 3|4|5]\n"
    "      Write a v3 ECDSA-P256 quote to stdout (or FILE). By default it carries the 16-byte\n"
    "      Open Enclave header MarbleRun uses on the wire; --raw writes the bare DCAP quote.\n"
    "      --report-data HEX  up to 64 bytes of REPORTDATA (zero-padded)\n"
    "      --mrenclave/--mrsigner HEX  32 bytes each (default zeros)\n"
    "      --isvprodid/--isvsvn N      0..65535 (default 0)\n"
    "      --debug            set the DEBUG attribute\n"
    "      --quote-version N  3 (default; what real QEs emit) or the synthetic SGX forms 4, 5\n"
    "\n"
    "  marblerun-softsgx tdx-quote DIR --report-data HEX [--mrtd HEX] [--rtmr0..3 HEX]\n"
    "                             [--mrconfigid HEX] [--mrowner HEX] [--mrownerconfig HEX]\n"
    "                             [--tee-tcb-svn HEX] [--td-attributes HEX] [--xfam HEX]\n"
    "                             [--debug] [--out FILE]\n"
    "      Write a raw v4 TDX quote (TEE type 0x81, TD report 1.0, certification data type 6)\n"
    "      signed with DIR's keys; init also wrote DIR/tdx-collateral.json for it (give the\n"
    "      verifier EDG_ATTESTATION_COLLATERAL=DIR). Measurements are 48 bytes (default zeros).\n"
    "      --tee-tcb-svn HEX  16 bytes (default 04010300..: UpToDate; byte 2 = 2 OutOfDate,\n"
    "                         1 Revoked, 0 no TCB level)\n"
    "      --td-attributes/--xfam HEX  8 bytes in report order (default 0000001000000000 and\n"
    "                         e71a060000000000); --debug sets TDATTRIBUTES bit 0\n"
    "\n"
    "  marblerun-softsgx --help | --version\n";

void mr_softsgx_tool_usage(const char *msg)
{
    fprintf(stderr, "marblerun-softsgx: %s\nTry 'marblerun-softsgx --help'.\n", msg);
    exit(2);
}

int mr_softsgx_tool_fail(void)
{
    const mr_error *e = mr_error_get();
    fprintf(stderr, "marblerun-softsgx: %s\n", e->msg);
    int code = mr_errcat_exit(e->cat);
    return code == 0 ? 1 : code;
}

static unsigned long parse_num(const char *flag, const char *v, unsigned long max)
{
    char *end = NULL;
    errno = 0;
    if (v[0] < '0' || v[0] > '9')
        mr_softsgx_tool_usage(flag);
    unsigned long n = strtoul(v, &end, 10);
    if (errno != 0 || end == NULL || *end != '\0' || n > max) {
        fprintf(stderr, "marblerun-softsgx: %s: bad number %s (0..%lu)\n", flag, v, max);
        exit(2);
    }
    return n;
}

void mr_softsgx_tool_hex(const char *flag, const char *v, uint8_t *out, size_t max, size_t *len)
{
    size_t n = strlen(v);
    if (n % 2 != 0 || n / 2 > max || (len == NULL && n / 2 != max) ||
        !mr_ok(mr_hex_decode_fixed(v, n, out, n / 2))) {
        fprintf(stderr, "marblerun-softsgx: %s: want %s%zu bytes of hex\n", flag,
                len != NULL ? "up to " : "", max);
        exit(2);
    }
    if (len != NULL)
        *len = n / 2;
}

enum {
    OPT_TCB = 1000,
    OPT_QE_TCB,
    OPT_DAYS,
    OPT_REVOKE,
    OPT_TIME,
    OPT_PCK_CA,
    OPT_RD,
    OPT_MRENCLAVE,
    OPT_MRSIGNER,
    OPT_PRODID,
    OPT_SVN,
    OPT_DEBUG,
    OPT_RAW,
    OPT_OUT,
    OPT_VERSION,
    OPT_HELP,
};

static const struct option OPTS[] = {
    {"tcb-status", required_argument, NULL, OPT_TCB},
    {"qe-tcb-status", required_argument, NULL, OPT_QE_TCB},
    {"valid-days", required_argument, NULL, OPT_DAYS},
    {"revoke-pck", no_argument, NULL, OPT_REVOKE},
    {"time", required_argument, NULL, OPT_TIME},
    {"pck-ca", required_argument, NULL, OPT_PCK_CA},
    {"report-data", required_argument, NULL, OPT_RD},
    {"mrenclave", required_argument, NULL, OPT_MRENCLAVE},
    {"mrsigner", required_argument, NULL, OPT_MRSIGNER},
    {"isvprodid", required_argument, NULL, OPT_PRODID},
    {"isvsvn", required_argument, NULL, OPT_SVN},
    {"debug", no_argument, NULL, OPT_DEBUG},
    {"raw", no_argument, NULL, OPT_RAW},
    {"out", required_argument, NULL, OPT_OUT},
    {"quote-version", required_argument, NULL, OPT_VERSION},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

typedef struct args {
    mr_softsgx_init_opts init;
    mr_softsgx_identity id;
    uint8_t rd[64];
    size_t rd_len;
    uint16_t version;
    bool have_rd, raw, init_only_flag, quote_only_flag;
    const char *out;
} args;

/* An option of init (into a->init); false when c is none. */
static bool init_option(int c, args *a)
{
    switch (c) {
    case OPT_TCB:
        if (!mr_ok(mr_softsgx_tcb_parse(optarg, &a->init.tcb_status)))
            mr_softsgx_tool_usage(mr_error_get()->msg);
        break;
    case OPT_QE_TCB:
        if (!mr_ok(mr_softsgx_qe_tcb_parse(optarg, &a->init.qe_status)))
            mr_softsgx_tool_usage(mr_error_get()->msg);
        break;
    case OPT_DAYS:
        a->init.valid_days = (unsigned)parse_num("--valid-days", optarg, 36500);
        if (a->init.valid_days == 0)
            mr_softsgx_tool_usage("--valid-days must be at least 1");
        break;
    case OPT_REVOKE:
        a->init.revoke_pck = true;
        break;
    case OPT_PCK_CA:
        if (strcmp(optarg, "platform") == 0)
            a->init.platform_ca = true;
        else if (strcmp(optarg, "processor") != 0)
            mr_softsgx_tool_usage("--pck-ca must be processor or platform");
        break;
    case OPT_TIME:
        /* up to 9999-12-31, minus the validity period */
        a->init.now = (time_t)parse_num("--time", optarg, 253402300799UL - 36500UL * 86400);
        if (a->init.now < 86400)
            mr_softsgx_tool_usage("--time is too early");
        break;
    default:
        return false;
    }
    a->init_only_flag = true;
    return true;
}

/* An option of quote (the identity, report data and output); false when c is none. */
static bool quote_option(int c, args *a)
{
    switch (c) {
    case OPT_RD:
        mr_softsgx_tool_hex("--report-data", optarg, a->rd, sizeof(a->rd), &a->rd_len);
        a->have_rd = true;
        break;
    case OPT_MRENCLAVE:
        mr_softsgx_tool_hex("--mrenclave", optarg, a->id.mrenclave, 32, NULL);
        break;
    case OPT_MRSIGNER:
        mr_softsgx_tool_hex("--mrsigner", optarg, a->id.mrsigner, 32, NULL);
        break;
    case OPT_PRODID:
        a->id.isvprodid = (uint16_t)parse_num("--isvprodid", optarg, 65535);
        break;
    case OPT_SVN:
        a->id.isvsvn = (uint16_t)parse_num("--isvsvn", optarg, 65535);
        break;
    case OPT_DEBUG:
        a->id.debug = true;
        break;
    case OPT_RAW:
        a->raw = true;
        break;
    case OPT_OUT:
        a->out = optarg;
        break;
    case OPT_VERSION:
        a->version = (uint16_t)parse_num("--quote-version", optarg, 5);
        if (a->version < 3)
            mr_softsgx_tool_usage("--quote-version must be 3, 4 or 5");
        break;
    default:
        return false;
    }
    a->quote_only_flag = true;
    return true;
}

static void parse_args(int argc, char **argv, args *a)
{
    int c;
    while ((c = getopt_long(argc, argv, "h", OPTS, NULL)) != -1) {
        if (init_option(c, a) || quote_option(c, a))
            continue;
        if (c == OPT_HELP || c == 'h')
            exit(fputs(USAGE, stdout) < 0 ? 1 : 0);
        mr_softsgx_tool_usage("bad option");
    }
}

static int write_all(FILE *f, const mr_buf *b)
{
    if (fwrite(b->data, 1, b->len, f) != b->len || fflush(f) != 0) {
        fprintf(stderr, "marblerun-softsgx: cannot write the quote: %s\n", strerror(errno));
        return 1;
    }
    return 0;
}

int mr_softsgx_tool_write(const char *path, const mr_buf *b)
{
    if (path == NULL)
        return write_all(stdout, b);
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        fprintf(stderr, "marblerun-softsgx: cannot create %s: %s\n", path, strerror(errno));
        return 1;
    }
    int rc = write_all(f, b);
    if (fclose(f) != 0)
        rc = 1;
    return rc;
}

static int cmd_quote(const char *dir, const args *a)
{
    mr_softsgx *s = NULL;
    mr_buf q;
    mr_buf_init(&q, 0, 0);
    int rc = 1;
    if (!a->have_rd)
        mr_softsgx_tool_usage("quote needs --report-data HEX");
    if (!mr_ok(mr_softsgx_load(dir, &s)) ||
        !mr_ok(mr_softsgx_quote_version(s, a->version ? a->version : 3, &a->id, a->rd,
                                        a->rd_len, !a->raw, &q)))
        rc = mr_softsgx_tool_fail();
    else
        rc = mr_softsgx_tool_write(a->out, &q);
    mr_buf_free(&q);
    mr_softsgx_free(s);
    return rc;
}

int main(int argc, char **argv)
{
    args a = {0};
    if (argc < 2)
        mr_softsgx_tool_usage("missing command");
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        return fputs(USAGE, stdout) < 0 ? 1 : 0;
    }
    if (strcmp(cmd, "--version") == 0)
        return printf("marblerun-softsgx %s\n", MR_VERSION) < 0 ? 1 : 0;
    if (strcmp(cmd, "tdx-quote") == 0)
        return mr_softsgx_tool_tdx(argc, argv);
    if (strcmp(cmd, "init") != 0 && strcmp(cmd, "quote") != 0)
        mr_softsgx_tool_usage("unknown command (want init, quote or tdx-quote)");
    optind = 2;
    parse_args(argc, argv, &a);
    if (optind != argc - 1)
        mr_softsgx_tool_usage("want exactly one directory");
    const char *dir = argv[optind];
    if (strcmp(cmd, "init") == 0) {
        if (a.quote_only_flag)
            mr_softsgx_tool_usage("quote options given to init");
        if (!mr_ok(mr_softsgx_init(dir, &a.init)))
            return mr_softsgx_tool_fail();
        fprintf(stderr,
                "marblerun-softsgx: TEST PKI written to %s (platform TCB %s, QE TCB %s). "
                "Quotes from it are for tests only.\n",
                dir, mr_softsgx_tcb_name(a.init.tcb_status),
                mr_softsgx_qe_tcb_name(a.init.qe_status));
        return 0;
    }
    if (a.init_only_flag)
        mr_softsgx_tool_usage("init options given to quote");
    return cmd_quote(dir, &a);
}
