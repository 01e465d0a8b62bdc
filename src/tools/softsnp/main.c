/* SPDX-License-Identifier: Apache-2.0 */
/*
 * marblerun-softsnp: creates a TEST AMD SEV-SNP key hierarchy (ARK/ASK/ASVK, VCEK, VLEK) and
 * makes real-format attestation reports from it, so that tests exercise the real SNP verifier
 * on machines without SEV-SNP (docs/cvm.md). Never trust its output.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/softsnp.h"
#include "common/buf.h"
#include "common/codec.h"
#include "common/result.h"

#ifndef MR_VERSION
#define MR_VERSION "0.0.0"
#endif

static const char USAGE[] =
    "marblerun-softsnp - AMD SEV-SNP attestation reports for TESTS, made without AMD hardware\n"
    "\n"
    "  *** WARNING: this is a TEST tool. Its reports are signed by a self-made TEST key    ***\n"
    "  *** hierarchy, not by AMD, and prove NOTHING. A MarbleRun-C verifier accepts them   ***\n"
    "  *** only when started with EDG_ATTESTATION_SNP_ROOT=DIR/ark.pem.                   ***\n"
    "\n"
    "Usage:\n"
    "  marblerun-softsnp init DIR [--valid-days N] [--time UNIX-SECONDS]\n"
    "      Create the TEST ARK, ASK, ASVK (RSA, RSASSA-PSS) and the chip's VCEK and a VLEK\n"
    "      key (P-384) in DIR: DIR/ark.pem, ask.pem, asvk.pem, cert_chain.pem, DIR/private/.\n"
    "\n"
    "  marblerun-softsnp report DIR --report-data HEX [--out FILE] [--aux FILE] [--vek FILE]\n"
    "                           [--measurement HEX] [--host-data HEX] [--id-key-digest HEX]\n"
    "                           [--author-key-digest HEX] [--family-id HEX] [--image-id HEX]\n"
    "                           [--policy N] [--guest-svn N] [--vmpl N] [--tcb BL,TEE,SNP,UCODE]\n"
    "                           [--vlek] [--report-version 2|3]\n"
    "      Write a 1184-byte ATTESTATION_REPORT to stdout (or FILE), signed by the VCEK (or\n"
    "      with --vlek the VLEK). --aux writes the configfs-tsm auxblob (certificate table\n"
    "      with VCEK/VLEK, ASK/ASVK, ARK), --vek the DER of the signing certificate alone.\n"
    "      Defaults: version 3, policy 0x30000 (SMT, no debug, no migration agent), VMPL 0,\n"
    "      TCB 3,0,20,209, every measurement zero. --policy takes decimal or 0x hex.\n"
    "\n"
    "  marblerun-softsnp chip-id DIR\n"
    "      Print the chip's CHIP_ID (128 hex digits).\n"
    "\n"
    "  marblerun-softsnp --help | --version\n";

__attribute__((noreturn)) static void usage(const char *msg)
{
    fprintf(stderr, "marblerun-softsnp: %s\nTry 'marblerun-softsnp --help'.\n", msg);
    exit(2);
}

static int fail(void)
{
    const mr_error *e = mr_error_get();
    fprintf(stderr, "marblerun-softsnp: %s\n", e->msg);
    int code = mr_errcat_exit(e->cat);
    return code == 0 ? 1 : code;
}

static unsigned long long num(const char *flag, const char *v, unsigned long long max)
{
    char *end = NULL;
    errno = 0;
    if (v[0] < '0' || v[0] > '9')
        usage(flag);
    unsigned long long n = strtoull(v, &end, 0);
    if (errno != 0 || end == NULL || *end != '\0' || n > max) {
        fprintf(stderr, "marblerun-softsnp: %s: bad number %s (0..%llu)\n", flag, v, max);
        exit(2);
    }
    return n;
}

static void hex(const char *flag, const char *v, uint8_t *out, size_t max, size_t *len)
{
    size_t n = strlen(v);
    if (n % 2 != 0 || n / 2 > max || (len == NULL && n / 2 != max) ||
        !mr_ok(mr_hex_decode_fixed(v, n, out, n / 2))) {
        fprintf(stderr, "marblerun-softsnp: %s: want %s%zu bytes of hex\n", flag,
                len != NULL ? "up to " : "", max);
        exit(2);
    }
    if (len != NULL)
        *len = n / 2;
}

static int write_file(const char *path, const mr_buf *b)
{
    FILE *f = path != NULL ? fopen(path, "wb") : stdout;
    if (f == NULL) {
        fprintf(stderr, "marblerun-softsnp: cannot create %s: %s\n", path, strerror(errno));
        return 1;
    }
    int rc = fwrite(b->data, 1, b->len, f) == b->len && fflush(f) == 0 ? 0 : 1;
    if (path != NULL && fclose(f) != 0)
        rc = 1;
    if (rc != 0)
        fprintf(stderr, "marblerun-softsnp: cannot write %s\n", path != NULL ? path : "stdout");
    return rc;
}

enum {
    O_DAYS = 1000, O_TIME, O_RD, O_OUT, O_AUX, O_VEK, O_MEAS, O_HOST, O_IDKEY, O_AUTHOR,
    O_FAMILY, O_IMAGE, O_POLICY, O_SVN, O_VMPL, O_TCB, O_VLEK, O_RVER, O_HELP,
};

static const struct option OPTS[] = {
    {"valid-days", required_argument, NULL, O_DAYS},
    {"time", required_argument, NULL, O_TIME},
    {"report-data", required_argument, NULL, O_RD},
    {"out", required_argument, NULL, O_OUT},
    {"aux", required_argument, NULL, O_AUX},
    {"vek", required_argument, NULL, O_VEK},
    {"measurement", required_argument, NULL, O_MEAS},
    {"host-data", required_argument, NULL, O_HOST},
    {"id-key-digest", required_argument, NULL, O_IDKEY},
    {"author-key-digest", required_argument, NULL, O_AUTHOR},
    {"family-id", required_argument, NULL, O_FAMILY},
    {"image-id", required_argument, NULL, O_IMAGE},
    {"policy", required_argument, NULL, O_POLICY},
    {"guest-svn", required_argument, NULL, O_SVN},
    {"vmpl", required_argument, NULL, O_VMPL},
    {"tcb", required_argument, NULL, O_TCB},
    {"vlek", no_argument, NULL, O_VLEK},
    {"report-version", required_argument, NULL, O_RVER},
    {"help", no_argument, NULL, O_HELP},
    {NULL, 0, NULL, 0},
};

typedef struct args {
    mr_softsnp_init_opts init;
    mr_softsnp_identity id;
    uint8_t rd[64];
    size_t rd_len;
    bool have_rd;
    const char *out, *aux, *vek;
} args;

static void parse_tcb(const char *v, mr_softsnp_identity *id)
{
    uint8_t *out[] = {&id->tcb_bl, &id->tcb_tee, &id->tcb_snp, &id->tcb_ucode};
    const char *p = v;
    for (size_t i = 0; i < 4; i++) {
        char *end = NULL;
        errno = 0;
        unsigned long n = *p >= '0' && *p <= '9' ? strtoul(p, &end, 10) : 256;
        if (errno != 0 || n > 255 || end == NULL || *end != (i < 3 ? ',' : '\0'))
            usage("--tcb wants BL,TEE,SNP,UCODE (each 0..255)");
        *out[i] = (uint8_t)n;
        p = end + 1;
    }
}

static void report_option(int c, args *a)
{
    mr_softsnp_identity *id = &a->id;
    switch (c) {
    case O_RD: hex("--report-data", optarg, a->rd, 64, &a->rd_len); a->have_rd = true; break;
    case O_OUT: a->out = optarg; break;
    case O_AUX: a->aux = optarg; break;
    case O_VEK: a->vek = optarg; break;
    case O_MEAS: hex("--measurement", optarg, id->measurement, 48, NULL); break;
    case O_HOST: hex("--host-data", optarg, id->host_data, 32, NULL); break;
    case O_IDKEY: hex("--id-key-digest", optarg, id->id_key_digest, 48, NULL); break;
    case O_AUTHOR:
        hex("--author-key-digest", optarg, id->author_key_digest, 48, NULL);
        id->author_key = true;
        break;
    case O_FAMILY: hex("--family-id", optarg, id->family_id, 16, NULL); break;
    case O_IMAGE: hex("--image-id", optarg, id->image_id, 16, NULL); break;
    case O_POLICY: id->policy = num("--policy", optarg, UINT64_MAX); break;
    case O_SVN: id->guest_svn = (uint32_t)num("--guest-svn", optarg, UINT32_MAX); break;
    case O_VMPL: id->vmpl = (uint32_t)num("--vmpl", optarg, 3); break;
    case O_TCB: parse_tcb(optarg, id); break;
    case O_VLEK: id->vlek = true; break;
    case O_RVER: id->version = (uint32_t)num("--report-version", optarg, 3); break;
    default: usage("bad option");
    }
}

static void parse_args(int argc, char **argv, args *a)
{
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "", OPTS, NULL)) != -1) {
        if (c == O_DAYS)
            a->init.valid_days = (unsigned)num("--valid-days", optarg, 36500);
        else if (c == O_TIME)
            a->init.now = (time_t)num("--time", optarg, 253402300799ULL - 36500ULL * 86400);
        else if (c == O_HELP)
            exit(fputs(USAGE, stdout) < 0 ? 1 : 0);
        else
            report_option(c, a);
    }
    if (optind != argc - 1)
        usage("want exactly one directory");
}

static int cmd_report(const char *dir, const args *a)
{
    mr_softsnp *s = NULL;
    mr_buf rep, aux, vek;
    int rc = 1;
    mr_buf_init(&rep, 0, 0);
    mr_buf_init(&aux, 0, 0);
    mr_buf_init(&vek, 0, 0);
    if (!a->have_rd)
        usage("report needs --report-data HEX");
    if (!mr_ok(mr_softsnp_load(dir, &s)) ||
        !mr_ok(mr_softsnp_report(s, &a->id, a->rd, a->rd_len, &rep, &aux, &vek)))
        rc = fail();
    else
        rc = write_file(a->out, &rep) | (a->aux != NULL ? write_file(a->aux, &aux) : 0) |
             (a->vek != NULL ? write_file(a->vek, &vek) : 0);
    mr_buf_free(&rep);
    mr_buf_free(&aux);
    mr_buf_free(&vek);
    mr_softsnp_free(s);
    return rc;
}

static int cmd_chip_id(const char *dir)
{
    mr_softsnp *s = NULL;
    uint8_t id[64];
    mr_buf h;
    mr_buf_init(&h, 0, 0);
    int rc = 0;
    if (!mr_ok(mr_softsnp_load(dir, &s)))
        return fail();
    mr_softsnp_chip_id(s, id);
    if (!mr_ok(mr_hex_encode_buf(id, sizeof(id), &h)))
        rc = fail();
    else
        printf("%.*s\n", (int)h.len, (const char *)h.data);
    mr_buf_free(&h);
    mr_softsnp_free(s);
    return rc;
}

int main(int argc, char **argv)
{
    args a;
    memset(&a, 0, sizeof(a));
    mr_softsnp_identity_default(&a.id);
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0))
        return fputs(USAGE, stdout) < 0 ? 1 : 0;
    if (argc >= 2 && strcmp(argv[1], "--version") == 0)
        return printf("marblerun-softsnp %s\n", MR_VERSION) < 0 ? 1 : 0;
    if (argc < 3)
        usage("want a command and a directory");
    const char *cmd = argv[1];
    parse_args(argc, argv, &a);
    const char *dir = argv[optind];
    if (strcmp(cmd, "init") == 0)
        return mr_ok(mr_softsnp_init(dir, &a.init)) ? 0 : fail();
    if (strcmp(cmd, "report") == 0)
        return cmd_report(dir, &a);
    if (strcmp(cmd, "chip-id") == 0)
        return cmd_chip_id(dir);
    usage("unknown command");
}
