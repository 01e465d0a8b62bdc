/* SPDX-License-Identifier: Apache-2.0 */
/* marblerun-softsgx tdx-quote: TEST TDX quotes from a softsgx directory (docs/softsgx.md). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/softsgx.h"
#include "common/buf.h"
#include "common/codec.h"
#include "common/result.h"
#include "tool.h"

enum {
    T_RD = 2000,
    T_MRTD,
    T_RTMR0,
    T_RTMR1,
    T_RTMR2,
    T_RTMR3,
    T_CONFIGID,
    T_OWNER,
    T_OWNERCONFIG,
    T_SVN,
    T_ATTR,
    T_XFAM,
    T_DEBUG,
    T_OUT,
};

static const struct option TOPTS[] = {
    {"report-data", required_argument, NULL, T_RD},
    {"mrtd", required_argument, NULL, T_MRTD},
    {"rtmr0", required_argument, NULL, T_RTMR0},
    {"rtmr1", required_argument, NULL, T_RTMR1},
    {"rtmr2", required_argument, NULL, T_RTMR2},
    {"rtmr3", required_argument, NULL, T_RTMR3},
    {"mrconfigid", required_argument, NULL, T_CONFIGID},
    {"mrowner", required_argument, NULL, T_OWNER},
    {"mrownerconfig", required_argument, NULL, T_OWNERCONFIG},
    {"tee-tcb-svn", required_argument, NULL, T_SVN},
    {"td-attributes", required_argument, NULL, T_ATTR},
    {"xfam", required_argument, NULL, T_XFAM},
    {"debug", no_argument, NULL, T_DEBUG},
    {"out", required_argument, NULL, T_OUT},
    {NULL, 0, NULL, 0},
};

/* 8 bytes of hex in report order into a little-endian u64 */
static uint64_t hex_u64(const char *flag, const char *v)
{
    uint8_t b[8];
    uint64_t r = 0;
    mr_softsgx_tool_hex(flag, v, b, sizeof(b), NULL);
    for (int i = 7; i >= 0; i--)
        r = (r << 8) | b[i];
    return r;
}

static void tdx_option(int c, mr_softtdx_identity *id, uint8_t rd[64], size_t *rd_len,
                       bool *have_rd, bool *debug, const char **out)
{
    switch (c) {
    case T_RD: mr_softsgx_tool_hex("--report-data", optarg, rd, 64, rd_len); *have_rd = true; break;
    case T_MRTD: mr_softsgx_tool_hex("--mrtd", optarg, id->mrtd, 48, NULL); break;
    case T_RTMR0: mr_softsgx_tool_hex("--rtmr0", optarg, id->rtmr[0], 48, NULL); break;
    case T_RTMR1: mr_softsgx_tool_hex("--rtmr1", optarg, id->rtmr[1], 48, NULL); break;
    case T_RTMR2: mr_softsgx_tool_hex("--rtmr2", optarg, id->rtmr[2], 48, NULL); break;
    case T_RTMR3: mr_softsgx_tool_hex("--rtmr3", optarg, id->rtmr[3], 48, NULL); break;
    case T_CONFIGID: mr_softsgx_tool_hex("--mrconfigid", optarg, id->mrconfigid, 48, NULL); break;
    case T_OWNER: mr_softsgx_tool_hex("--mrowner", optarg, id->mrowner, 48, NULL); break;
    case T_OWNERCONFIG:
        mr_softsgx_tool_hex("--mrownerconfig", optarg, id->mrownerconfig, 48, NULL);
        break;
    case T_SVN: mr_softsgx_tool_hex("--tee-tcb-svn", optarg, id->tee_tcb_svn, 16, NULL); break;
    case T_ATTR: id->td_attributes = hex_u64("--td-attributes", optarg); break;
    case T_XFAM: id->xfam = hex_u64("--xfam", optarg); break;
    case T_DEBUG: *debug = true; break;
    case T_OUT: *out = optarg; break;
    default: mr_softsgx_tool_usage("bad option for tdx-quote");
    }
}

int mr_softsgx_tool_tdx(int argc, char **argv)
{
    mr_softtdx_identity id;
    uint8_t rd[64] = {0};
    size_t rd_len = 0;
    bool have_rd = false, debug = false;
    const char *out = NULL;
    mr_softsgx *s = NULL;
    mr_buf q;
    int c, rc = 1;
    mr_softtdx_identity_default(&id);
    mr_buf_init(&q, 0, 0);
    optind = 2;
    while ((c = getopt_long(argc, argv, "", TOPTS, NULL)) != -1)
        tdx_option(c, &id, rd, &rd_len, &have_rd, &debug, &out);
    if (optind != argc - 1)
        mr_softsgx_tool_usage("want exactly one directory");
    if (!have_rd)
        mr_softsgx_tool_usage("tdx-quote needs --report-data HEX");
    if (debug)
        id.td_attributes |= 1;
    if (!mr_ok(mr_softsgx_load(argv[optind], &s)) ||
        !mr_ok(mr_softsgx_tdx_quote(s, &id, rd, rd_len, &q)))
        rc = mr_softsgx_tool_fail();
    else
        rc = mr_softsgx_tool_write(out, &q);
    mr_buf_free(&q);
    mr_softsgx_free(s);
    return rc;
}
