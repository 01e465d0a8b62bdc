/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Micro-benchmark: decode + consistency check of a generated manifest with 100 marbles and
 * 200 secrets (plus users, roles and TLS tags). Prints milliseconds per operation. Not a test.
 *   manifest-bench [iterations]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "manifest/manifest.h"

#define MARBLES 100
#define SECRETS 200

static int build(mr_buf *b)
{
    int ok = 1;
#define P(...) ok &= mr_ok(mr_buf_printf(b, __VA_ARGS__))
    P("{\"Packages\":{");
    for (int i = 0; i < 10; i++)
        P("%s\"pkg%d\":{\"SignerID\":\"%064d\",\"ProductID\":%d,\"SecurityVersion\":%d}",
          i ? "," : "", i, i, i, i);
    P("},\"Marbles\":{");
    for (int i = 0; i < MARBLES; i++) {
        P("%s\"marble%03d\":{\"Package\":\"pkg%d\",\"MaxActivations\":%d,\"TLS\":[\"tag%d\"],"
          "\"Parameters\":{\"Argv\":[\"./app\",\"serve\"],\"Files\":{",
          i ? "," : "", i, i % 10, i, i % 5);
        for (int f = 0; f < 4; f++)
            P("%s\"/etc/app/f%d\":\"{{ pem .Secrets.cert%03d.Cert }}\"", f ? "," : "", f,
              (i * 4 + f) % (SECRETS / 2));
        P("},\"Env\":{\"KEY\":\"{{ hex .Secrets.key%03d }}\",\"PLAIN\":{\"Data\":\"aGVsbG8=\","
          "\"Encoding\":\"base64\"}}}}",
          i % (SECRETS / 2));
    }
    P("},\"Secrets\":{");
    for (int i = 0; i < SECRETS / 2; i++)
        P("%s\"cert%03d\":{\"Type\":\"cert-ecdsa\",\"Size\":256,\"Shared\":%s,\"ValidFor\":30,"
          "\"Cert\":{\"Subject\":{\"CommonName\":\"svc%d\"},\"DNSNames\":[\"svc%d.local\"]}},"
          "\"key%03d\":{\"Type\":\"symmetric-key\",\"Size\":256,\"UserDefined\":%s}",
          i ? "," : "", i, i % 2 ? "true" : "false", i, i, i, i % 3 ? "false" : "true");
    P("},\"Users\":{");
    for (int i = 0; i < 20; i++)
        P("%s\"user%d\":{\"Certificate\":\"-----BEGIN CERTIFICATE-----\\nUSER%d\\n\","
          "\"Roles\":[\"reader\",\"updater\"]}",
          i ? "," : "", i, i);
    P("},\"Roles\":{\"reader\":{\"ResourceType\":\"Secrets\",\"Actions\":[\"ReadSecret\"],"
      "\"ResourceNames\":[");
    for (int i = 0; i < SECRETS / 2; i += 2)
        P("%s\"cert%03d\"", i ? "," : "", i + 1);
    P("]},\"updater\":{\"ResourceType\":\"Packages\",\"ResourceNames\":[\"pkg1\",\"pkg2\"],"
      "\"Actions\":[\"UpdateSecurityVersion\"]}},\"TLS\":{");
    for (int i = 0; i < 5; i++)
        P("%s\"tag%d\":{\"Outgoing\":[{\"Port\":\"80%02d\",\"Addr\":\"svc%d\"}],"
          "\"Incoming\":[{\"Port\":\"80%02d\"}]}",
          i ? "," : "", i, i, i, i);
    P("}}");
#undef P
    return ok;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? strtol(argv[1], NULL, 10) : 200;
    if (iters <= 0)
        iters = 200;
    mr_buf b;
    mr_buf_init(&b, 0, 0);
    if (!build(&b)) {
        fprintf(stderr, "building the manifest failed\n");
        return 1;
    }
    double t_dec = 0, t_check = 0, t_dry = 0;
    for (long i = 0; i < iters; i++) {
        mr_manifest *m = NULL;
        double t0 = now_ms();
        if (!mr_ok(mr_manifest_decode(b.data, b.len, &m))) {
            fprintf(stderr, "decode: %s\n", mr_error_get()->msg);
            return 1;
        }
        double t1 = now_ms();
        if (!mr_ok(mr_manifest_check(m, NULL))) {
            fprintf(stderr, "check: %s\n", mr_error_get()->msg);
            return 1;
        }
        double t2 = now_ms();
        if (!mr_ok(mr_manifest_dry_run(m, NULL))) {
            fprintf(stderr, "dry run: %s\n", mr_error_get()->msg);
            return 1;
        }
        double t3 = now_ms();
        t_dry += t3 - t2;
        mr_manifest_free(m);
        t_dec += t1 - t0;
        t_check += t2 - t1;
    }
    printf("manifest: %zu bytes, %d marbles, %d secrets, %ld iterations\n", b.len, MARBLES,
           SECRETS, iters);
    printf("decode     %.3f ms/op\n", t_dec / (double)iters);
    printf("check      %.3f ms/op\n", t_check / (double)iters);
    printf("validate   %.3f ms/op (decode + check)\n", (t_dec + t_check) / (double)iters);
    printf("dry run    %.3f ms/op (%d templates)\n", t_dry / (double)iters, MARBLES * 5);
    printf("setmanifest-validation %.3f ms/op (decode + check + dry run)\n",
           (t_dec + t_check + t_dry) / (double)iters);
    mr_buf_free(&b);
    return 0;
}
