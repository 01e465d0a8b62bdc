/* SPDX-License-Identifier: Apache-2.0 */
/* libmarble-ttls.so's parts: the MARBLE_TTLS_CONFIG parser, entry keys, MARBLE_TTLS_ENDPOINTS,
 * the policy lines, address matching, the TLS contexts and the marble-type check. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ttls_test_util.h"

static const char *PEM_A = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";

/* A config with dummy PEMs (the parser does not look inside them). */
static void dummy_config(mr_buf *out, const char *incoming, const char *outgoing)
{
    tleaf l;
    mr_buf ca;
    mr_buf_init(&ca, 0, 0);
    mr_buf_init(&l.cert_pem, 0, 0);
    mr_buf_init(&l.key_pem, 0, 0);
    MR_ASSERT_OK(mr_buf_append_str(&ca, PEM_A));
    MR_ASSERT_OK(mr_buf_append_str(&l.cert_pem, PEM_A));
    MR_ASSERT_OK(mr_buf_append_str(&l.key_pem, "-----BEGIN PRIVATE KEY-----\nBBBB\n-----END PRIVATE KEY-----\n"));
    MR_ASSERT_OK(mr_buf_append_str(out, "{\"tls\":{\"Incoming\":{"));
    if (incoming != NULL)
        tcfg_entry(out, true, incoming, &ca, &l, 1, NULL);
    MR_ASSERT_OK(mr_buf_append_str(out, "},\"Outgoing\":{"));
    if (outgoing != NULL)
        tcfg_entry(out, true, outgoing, &ca, &l, -1, NULL);
    MR_ASSERT_OK(mr_buf_append_str(out, "}}}"));
    mr_buf_free(&ca);
    tleaf_free(&l);
}

static mr_result parse_str(const char *s, mr_ttls_config *c)
{
    return mr_ttls_config_parse(s, strlen(s), c);
}

static void test_parse_coordinator_shape(void **state)
{
    (void)state;
    /* the shape and key order of the Coordinator's builder (spec/coordinator.md §5.7) */
    const char *cfg =
        "{\"tls\":{\"Incoming\":{\"*:8443\":{\"cacrt\":\"CA\\n\",\"clicrt\":\"C\\n\","
        "\"clientAuth\":false,\"clikey\":\"K\\n\"},\"*:9000\":{\"allowedTypes\":[\"backend\","
        "\"db\"],\"cacrt\":\"CA\",\"clicrt\":\"C\",\"clientAuth\":true,\"clikey\":\"K\"}},"
        "\"Outgoing\":{\"10.1.2.3:443\":{\"cacrt\":\"CA\",\"clicrt\":\"C\",\"clikey\":\"K\"},"
        "\"::1:5432\":{\"cacrt\":\"CA\",\"clicrt\":\"C\",\"clikey\":\"K\"},"
        "\"[fe80::1]:80\":{\"cacrt\":\"CA\",\"clicrt\":\"C\",\"clikey\":\"K\"},"
        "\"db.local:5432\":{\"cacrt\":\"CA\",\"clicrt\":\"C\",\"clikey\":\"K\"}}}}";
    mr_ttls_config c;
    MR_ASSERT_OK(parse_str(cfg, &c));
    assert_int_equal(c.count, 6);
    assert_int_equal(c.n_in, 2);
    assert_int_equal(c.n_out, 4);
    assert_int_equal(c.n_out_names, 1);
    const mr_ttls_entry *e = &c.entries[0];
    assert_int_equal(e->dir, MR_TTLS_INCOMING);
    assert_string_equal(e->key, "*:8443");
    assert_int_equal(e->port, 8443);
    assert_false(e->client_auth);
    assert_true(e->creds);
    assert_string_equal((const char *)e->cacrt.data, "CA\n");
    assert_string_equal((const char *)e->clikey.data, "K\n");
    assert_true((e->clikey.flags & MR_BUF_SECRET) != 0);
    e = &c.entries[1];
    assert_true(e->client_auth);
    assert_int_equal(e->n_types, 2);
    assert_string_equal(e->types[0], "backend");
    assert_string_equal(e->types[1], "db");
    e = &c.entries[2];
    assert_int_equal(e->dir, MR_TTLS_OUTGOING);
    assert_int_equal(e->ip_family, AF_INET);
    assert_int_equal(e->port, 443);
    assert_memory_equal(e->ip, "\x0a\x01\x02\x03", 4);
    e = &c.entries[3];
    assert_int_equal(e->ip_family, AF_INET6);
    assert_string_equal(e->host, "::1");
    assert_int_equal(e->port, 5432);
    e = &c.entries[4];
    assert_int_equal(e->ip_family, AF_INET6);
    assert_string_equal(e->host, "fe80::1");
    e = &c.entries[5];
    assert_int_equal(e->ip_family, 0);
    assert_string_equal(e->host, "db.local");
    mr_ttls_config_free(&c);
    mr_ttls_config_free(&c); /* twice is fine */
}

static void test_parse_json_details(void **state)
{
    (void)state;
    /* escapes, a surrogate pair, a lone surrogate, unknown members of every JSON type */
    const char *cfg =
        " {\"x\":[1,-2.5e3,true,false,null,{\"a\":[[]]}],\"tls\":{\"Other\":{},\"Incoming\":{\"*:1\":"
        "{\"cacrt\":\"a\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0041\\ud83d\\ude00\\ud800\",\"clicrt\":\"c\","
        "\"clikey\":\"k\",\"extra\":{\"deep\":[\"x\"]},\"clientAuth\":true}}},\"y\":\"z\"}\n";
    mr_ttls_config c;
    MR_ASSERT_OK(parse_str(cfg, &c));
    assert_int_equal(c.count, 1);
    assert_string_equal((const char *)c.entries[0].cacrt.data,
                        "a\"\\/\b\f\n\r\tA\xf0\x9f\x98\x80\xef\xbf\xbd");
    mr_ttls_config_free(&c);
    /* a later duplicate of a member replaces the earlier one */
    MR_ASSERT_OK(parse_str("{\"tls\":{\"Outgoing\":{\"h:1\":{\"cacrt\":\"old\",\"cacrt\":\"new\","
                           "\"clicrt\":\"c\",\"clikey\":\"k\"}}}}",
                           &c));
    assert_string_equal((const char *)c.entries[0].cacrt.data, "new");
    assert_true(c.entries[0].client_auth); /* absent: true (the safe default) */
    mr_ttls_config_free(&c);
}

static void test_parse_errors(void **state)
{
    (void)state;
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"", "not valid JSON"},
        {"[]", "expected an object"},
        {"{\"tls\":{}}", "TTLS config is empty"},
        {"{}", "TTLS config is empty"},
        {"{\"tls\":{\"Incoming\":{},\"Outgoing\":{}}}", "TTLS config is empty"},
        {"{\"tls\":{\"Incoming\":{\"*:1\":{}}}}", "TTLS entry *:1 has no cacrt"},
        {"{\"tls\":{\"Incoming\":{\"*:1\":{\"cacrt\":\"a\",\"clicrt\":\"b\"}}}}", "has no clikey"},
        {"{\"tls\":{\"Incoming\":{\"*:1\":{\"cacrt\":1}}}}", "expected a string"},
        {"{\"tls\":{\"Incoming\":{\"*:1\":{\"clientAuth\":\"yes\"}}}}", "expected true or false"},
        {"{\"tls\":{\"Incoming\":{\"*:1\":{\"allowedTypes\":\"a\"}}}}", "expected an array"},
        {"{\"tls\":{\"Incoming\":{\"*:1\":{\"allowedTypes\":[\"\"]}}}}", "empty or invalid marble type"},
        {"{\"tls\":{\"Incoming\":{\"nope\":{}}}}", "TTLS entry nope has no port"},
        {"{\"tls\":{\"Incoming\":{\"*:0\":{}}}}", "invalid port"},
        {"{\"tls\":{\"Incoming\":{\"*:65536\":{}}}}", "invalid port"},
        {"{\"tls\":{\"Incoming\":{\"*:12x\":{}}}}", "invalid port"},
        {"{\"tls\":{\"Outgoing\":{\":80\":{}}}}", "invalid address"},
        {"{\"tls\":{\"Outgoing\":{\"a b:80\":{}}}}", "space or a control character"},
        /* found by fuzz-ttls_config: an Incoming key with a space broke MARBLE_TTLS_ENDPOINTS */
        {"{\"tls\":{\"Incoming\":{\"[a b]:82\":{}}}}", "space or a control character"},
        {"{\"tls\":{\"Incoming\":{\"*\\t:82\":{}}}}", "space or a control character"},
        {"{\"tls\":{\"Outgoing\":{\"fe80::1%eth0:80\":{}}}}", "invalid address"},
        {"{\"tls\":{\"Incoming\":{\"*:1\":{\"cacrt\":\"a\",\"clicrt\":\"b\",\"clikey\":\"c\"},"
         "\"*:1\":{\"cacrt\":\"a\",\"clicrt\":\"b\",\"clikey\":\"c\"}}}}",
         "TTLS entry *:1 appears twice"},
        {"{\"tls\":{\"Incoming\":{\"*:1\":{\"cacrt\":\"a\",\"clicrt\":\"b\",\"clikey\":\"c\"},"
         "\"0.0.0.0:1\":{\"cacrt\":\"a\",\"clicrt\":\"b\",\"clikey\":\"c\"}}}}",
         "name the same port"},
        {"{\"tls\":{},\"tls\":{}}", "two \"tls\" members"},
        {"{\"tls\":{}} x", "data after the top-level value"},
        {"{\"tls\":{\"Incoming\":{\"*:1\":{\"cacrt\":\"a\001\"}}}}", "control character"},
        {"{\"tls\":{\"Incoming\":{\"*:1\":{\"cacrt\":\"\\x\"}}}}", "bad escape"},
        {"{\"tls\":{\"Incoming\":{\"*:1\":{\"cacrt\":\"\\u12g4\"}}}}", "bad \\u escape"},
        {"{\"tls\":{\"Incoming\":{\"*:1\":{\"cacrt\":\"abc", "unterminated string"},
        {"{\"tls\" {}}", "expected ':'"},
        {"{\"tls\":{\"Incoming\":{\"*:1\":{\"a\":tru}}}}", "invalid literal"},
        {"{\"tls\":{\"Incoming\":{\"*:1\":{\"a\":[1 2]}}}}", "expected ',' or ']'"},
        {"{\"tls\":{\"Incoming\":{\"*:1\":{\"a\":x}}}}", "invalid value"},
        {"{\"tls\":{\"Incoming\":{} \"b\":2}}", "expected ',' or '}'"},
        {"{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
         "nested too deeply"},
    };
    for (size_t i = 0; i < MR_ARRAY_LEN(cases); i++) {
        mr_ttls_config c;
        MR_ASSERT_FAIL(parse_str(cases[i].in, &c), MR_ERR_USAGE, cases[i].want);
        assert_int_equal(c.count, 0); /* nothing left behind */
    }
}

static mr_result sweep_parse(void *ctx)
{
    const mr_buf *cfg = ctx;
    mr_ttls_config c;
    MR_GUARD(mr_ttls_config_parse((const char *)cfg->data, cfg->len, &c));
    mr_ttls_config_free(&c);
    return MR_SUCCESS;
}

static void test_parse_out_of_memory(void **state)
{
    (void)state;
    mr_buf cfg;
    mr_buf_init(&cfg, 0, 0);
    MR_ASSERT_OK(mr_buf_append_str(
        &cfg, "{\"tls\":{\"Incoming\":{\"*:1\":{\"cacrt\":\"a\",\"clicrt\":\"b\",\"clikey\":\"c\","
              "\"allowedTypes\":[\"x\",\"y\"]}},\"Outgoing\":{\"h:2\":{\"cacrt\":\"a\",\"clicrt\":"
              "\"b\",\"clikey\":\"c\",\"z\":[{\"q\":\"r\"}]}}}}"));
    assert_true(mr_test_alloc_sweep("mr_ttls_config_parse", sweep_parse, &cfg) > 5);
    mr_buf_free(&cfg);
}

static void test_keys(void **state)
{
    (void)state;
    mr_ttls_entry e;
    memset(&e, 0, sizeof(e));
    MR_ASSERT_OK(mr_ttls_parse_key("::ffff:10.0.0.1:80", 18, MR_TTLS_OUTGOING, &e));
    assert_int_equal(e.ip_family, AF_INET); /* IPv4-mapped: matched as IPv4 */
    assert_memory_equal(e.ip, "\x0a\x00\x00\x01", 4);
    MR_ASSERT_OK(mr_ttls_parse_key("[::1]:65535", 11, MR_TTLS_OUTGOING, &e));
    assert_int_equal(e.ip_family, AF_INET6);
    assert_int_equal(e.port, 65535);
    MR_ASSERT_OK(mr_ttls_parse_key("Svc-1.ns_x.local.:1", 19, MR_TTLS_OUTGOING, &e));
    assert_int_equal(e.ip_family, 0);
    assert_string_equal(e.host, "Svc-1.ns_x.local.");
    MR_ASSERT_OK(mr_ttls_parse_key("anything:7", 10, MR_TTLS_INCOMING, &e));
    assert_int_equal(e.port, 7);
    assert_string_equal(e.host, "");
    MR_ASSERT_FAIL(mr_ttls_parse_key("a\0b:1", 5, MR_TTLS_OUTGOING, &e), MR_ERR_USAGE, "NUL byte");
    MR_ASSERT_FAIL(mr_ttls_parse_key("h:123456", 8, MR_TTLS_OUTGOING, &e), MR_ERR_USAGE, "invalid port");
    MR_ASSERT_FAIL(mr_ttls_parse_key("[]:1", 4, MR_TTLS_OUTGOING, &e), MR_ERR_USAGE, "invalid address");
}

static void test_endpoints(void **state)
{
    (void)state;
    mr_buf cfg, eps;
    mr_buf_init(&cfg, 0, 0);
    mr_buf_init(&eps, 0, 0);
    dummy_config(&cfg, "*:8443", "[::1]:443");
    mr_ttls_config c, d;
    MR_ASSERT_OK(mr_ttls_config_parse((const char *)cfg.data, cfg.len, &c));
    MR_ASSERT_OK(mr_ttls_config_endpoints(&c, &eps));
    assert_string_equal((const char *)eps.data, "in=*:8443 out=[::1]:443");
    MR_ASSERT_OK(mr_ttls_config_parse_endpoints((const char *)eps.data, &d));
    assert_int_equal(d.count, 2);
    assert_false(d.entries[0].creds);
    assert_int_equal(d.entries[0].dir, MR_TTLS_INCOMING);
    assert_int_equal(d.entries[1].ip_family, AF_INET6);
    assert_int_equal(d.entries[1].port, 443);
    mr_ttls_config_free(&d);
    MR_ASSERT_FAIL(mr_ttls_config_parse_endpoints("  ", &d), MR_ERR_USAGE, "is empty");
    MR_ASSERT_FAIL(mr_ttls_config_parse_endpoints("x=*:1", &d), MR_ERR_USAGE, "neither");
    MR_ASSERT_FAIL(mr_ttls_config_parse_endpoints("in=*:0", &d), MR_ERR_USAGE, "invalid port");
    mr_ttls_config_free(&c);
    mr_buf_free(&cfg);
    mr_buf_free(&eps);
}

static void test_policy_lines(void **state)
{
    (void)state;
    const char *cfg =
        "{\"tls\":{\"Incoming\":{\"*:8443\":{\"cacrt\":\"CA\",\"clicrt\":\"C\",\"clientAuth\":false,"
        "\"clikey\":\"SECRET-KEY\"},\"*:9000\":{\"allowedTypes\":[\"backend\",\"we\\\"ird\"],"
        "\"cacrt\":\"CA\",\"clicrt\":\"C\",\"clikey\":\"SECRET-KEY\"}},\"Outgoing\":{\"db:5432\":"
        "{\"cacrt\":\"CA\",\"clicrt\":\"C\",\"clikey\":\"SECRET-KEY\"},\"10.0.0.1:1\":{\"cacrt\":"
        "\"CA\",\"clicrt\":\"C\",\"clikey\":\"SECRET-KEY\"}}}}";
    mr_ttls_config c;
    mr_buf lines;
    mr_buf_init(&lines, 0, 0);
    MR_ASSERT_OK(parse_str(cfg, &c));
    MR_ASSERT_OK(mr_ttls_policy_lines(&c, &lines));
    assert_string_equal((const char *)lines.data,
                        "TTLS config\n"
                        "  Incoming\n"
                        "    *:8443 no client authentication\n"
                        "    *:9000 client certificate required, marble types: \"backend\", \"we\\\"ird\"\n"
                        "  Outgoing\n"
                        "    db:5432 server verified (SNI and name check db)\n"
                        "    10.0.0.1:1 server verified (no name check for an address)\n");
    assert_null(strstr((const char *)lines.data, "SECRET"));
    mr_buf_free(&lines);
    mr_ttls_config_free(&c);
}

/* ---- matching ---- */

static struct sockaddr_storage v4(const char *ip, uint16_t port)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    assert_int_equal(inet_pton(AF_INET, ip, &in->sin_addr), 1);
    return ss;
}

static struct sockaddr_storage v6(const char *ip, uint16_t port)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    assert_int_equal(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1);
    return ss;
}

static int g_resolves;

static int fake_resolver(const char *node, const char *service, const struct addrinfo *hints,
                         struct addrinfo **res)
{
    (void)service;
    (void)hints;
    g_resolves++;
    if (strcmp(node, "svc.example") != 0)
        return EAI_NONAME;
    struct addrinfo hints2 = {.ai_family = AF_INET, .ai_flags = AI_NUMERICHOST};
    return getaddrinfo("192.0.2.77", NULL, &hints2, res);
}

static const mr_ttls_entry *out_match(const mr_ttls_config *c, struct sockaddr_storage ss,
                                      const char **name)
{
    socklen_t len = ss.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    return mr_ttls_match_outgoing(c, (struct sockaddr *)&ss, len, name);
}

static void test_matching(void **state)
{
    (void)state;
    const char *cfg =
        "{\"tls\":{\"Incoming\":{\"*:8443\":{\"cacrt\":\"a\",\"clicrt\":\"b\",\"clikey\":\"c\"}},"
        "\"Outgoing\":{\"10.0.0.1:80\":{\"cacrt\":\"a\",\"clicrt\":\"b\",\"clikey\":\"c\"},"
        "\"[2001:db8::1]:80\":{\"cacrt\":\"a\",\"clicrt\":\"b\",\"clikey\":\"c\"},"
        "\"backend:81\":{\"cacrt\":\"a\",\"clicrt\":\"b\",\"clikey\":\"c\"},"
        "\"localhost:82\":{\"cacrt\":\"a\",\"clicrt\":\"b\",\"clikey\":\"c\"},"
        "\"svc.example:83\":{\"cacrt\":\"a\",\"clicrt\":\"b\",\"clikey\":\"c\"}}}}";
    mr_ttls_config c;
    MR_ASSERT_OK(parse_str(cfg, &c));
    mr_ttls_names_reset();
    const char *name = "x";
    /* literals, IPv4-mapped IPv6 included; port and address must both match */
    assert_ptr_equal(out_match(&c, v4("10.0.0.1", 80), &name), &c.entries[1]);
    assert_null(name);
    assert_ptr_equal(out_match(&c, v6("::ffff:10.0.0.1", 80), &name), &c.entries[1]);
    assert_ptr_equal(out_match(&c, v6("2001:db8::1", 80), &name), &c.entries[2]);
    assert_null(out_match(&c, v4("10.0.0.1", 81), &name));
    assert_null(out_match(&c, v4("10.0.0.2", 80), &name));
    assert_null(out_match(&c, v4("10.0.0.1", 9), &name));
    /* a name the application resolved */
    assert_null(out_match(&c, v4("10.9.9.9", 81), &name));
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_flags = AI_NUMERICHOST};
    struct addrinfo *res = NULL;
    assert_int_equal(getaddrinfo("10.9.9.9", NULL, &hints, &res), 0);
    mr_ttls_names_record(&c, "elsewhere", res); /* not a configured name: ignored */
    assert_null(out_match(&c, v4("10.9.9.9", 81), &name));
    mr_ttls_names_record(&c, "BACKEND", res); /* names are case-insensitive */
    freeaddrinfo(res);
    assert_ptr_equal(out_match(&c, v4("10.9.9.9", 81), &name), &c.entries[3]);
    assert_string_equal(name, "backend");
    assert_null(out_match(&c, v4("10.9.9.9", 82), &name)); /* that name's port only */
    /* localhost: every loopback address, resolved or not */
    assert_ptr_equal(out_match(&c, v4("127.0.0.1", 82), &name), &c.entries[4]);
    assert_string_equal(name, "localhost");
    assert_ptr_equal(out_match(&c, v4("127.1.2.3", 82), &name), &c.entries[4]);
    assert_ptr_equal(out_match(&c, v6("::1", 82), &name), &c.entries[4]);
    assert_null(out_match(&c, v4("10.0.0.1", 82), &name));
    /* what nothing identified: the entry's name is resolved (once per few seconds) */
    mr_ttls_names_set_resolver(fake_resolver);
    g_resolves = 0;
    assert_ptr_equal(out_match(&c, v4("192.0.2.77", 83), &name), &c.entries[5]);
    assert_string_equal(name, "svc.example");
    assert_int_equal(g_resolves, 1);
    assert_ptr_equal(out_match(&c, v4("192.0.2.77", 83), &name), &c.entries[5]); /* remembered */
    assert_null(out_match(&c, v4("192.0.2.78", 83), &name));
    assert_null(out_match(&c, v4("192.0.2.78", 83), &name));
    assert_int_equal(g_resolves, 1); /* rate-limited: not asked again so soon */
    mr_ttls_names_set_resolver(NULL);
    /* incoming: the port only */
    assert_ptr_equal(mr_ttls_match_incoming(&c, 8443), &c.entries[0]);
    assert_null(mr_ttls_match_incoming(&c, 80));
    /* not an IP socket */
    struct sockaddr_storage un;
    memset(&un, 0, sizeof(un));
    un.ss_family = AF_UNIX;
    assert_null(mr_ttls_match_outgoing(&c, (struct sockaddr *)&un, sizeof(un), &name));
    assert_null(mr_ttls_match_outgoing(NULL, (struct sockaddr *)&un, sizeof(un), &name));
    mr_ttls_names_reset();
    mr_ttls_config_free(&c);
}

/* ---- TLS contexts and the marble-type check ---- */

typedef struct side {
    SSL *ssl;
    int ret;
    char reason[320];
} side;

static void *handshake(void *arg)
{
    side *s = arg;
    s->ret = SSL_do_handshake(s->ssl);
    if (s->ret == 1 && SSL_is_server(s->ssl) == 0) {
        /* the client reads once: in TLS 1.3 the server's verdict arrives after Finished */
        char b;
        s->ret = SSL_read(s->ssl, &b, 1);
    } else if (s->ret == 1) {
        s->ret = SSL_write(s->ssl, "x", 1) == 1 ? 1 : 0;
    }
    if (s->ret != 1)
        mr_ttls_ssl_reason(s->ssl, s->ret, s->reason, sizeof(s->reason));
    return NULL;
}

/* One handshake between a server entry and a client entry over a socketpair. */
static bool shake(mr_ttls_entry *srv, mr_ttls_entry *cli, char *srv_reason, char *cli_reason)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    side s = {.ssl = mr_ttls_ssl_new(srv, sv[0], false, NULL, NULL)};
    side c = {.ssl = mr_ttls_ssl_new(cli, sv[1], true, "localhost", NULL)};
    assert_non_null(s.ssl);
    assert_non_null(c.ssl);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, handshake, &s), 0);
    handshake(&c);
    if (c.ret != 1)
        (void)shutdown(sv[1], SHUT_RDWR);
    assert_int_equal(pthread_join(t, NULL), 0);
    SSL_free(s.ssl);
    SSL_free(c.ssl);
    close(sv[0]);
    close(sv[1]);
    (void)snprintf(srv_reason, 320, "%s", s.reason);
    (void)snprintf(cli_reason, 320, "%s", c.reason);
    return s.ret == 1 && c.ret == 1;
}

static void entry_from(mr_ttls_entry *e, mr_ttls_dir dir, const char *key, const mr_buf *ca,
                       const tleaf *l)
{
    memset(e, 0, sizeof(*e));
    MR_ASSERT_OK(mr_ttls_parse_key(key, strlen(key), dir, e));
    mr_buf_init(&e->cacrt, 0, 0);
    mr_buf_init(&e->clicrt, 0, 0);
    mr_buf_init(&e->clikey, 0, MR_BUF_SECRET);
    MR_ASSERT_OK(mr_buf_set(&e->cacrt, ca->data, ca->len));
    MR_ASSERT_OK(mr_buf_set(&e->clicrt, l->cert_pem.data, l->cert_pem.len));
    MR_ASSERT_OK(mr_buf_set(&e->clikey, l->key_pem.data, l->key_pem.len));
    e->creds = true;
    e->client_auth = true;
}

static void entry_clear(mr_ttls_entry *e)
{
    mr_ttls_config c = {.entries = e, .count = 1};
    mr_ttls_entry *copy = mr_alloc(sizeof(*copy));
    assert_non_null(copy);
    *copy = *e;
    c.entries = copy;
    mr_ttls_config_free(&c);
    memset(e, 0, sizeof(*e));
}

static void set_types(mr_ttls_entry *e, const char *t)
{
    e->types = mr_calloc(1, sizeof(char *));
    e->types[0] = mr_strdup(t);
    e->n_types = 1;
}

static void test_tls_contexts_and_types(void **state)
{
    (void)state;
    tpki pki, other;
    tleaf server, client, intruder, untyped, stranger;
    tpki_new(&pki);
    tpki_new(&other);
    tleaf_new(&pki, "server", &server);
    tleaf_new(&pki, "client", &client);
    tleaf_new(&pki, "intruder", &intruder);
    tleaf_new(&pki, NULL, &untyped);
    tleaf_new(&other, "client", &stranger);
    mr_ttls_entry srv, cli;
    char sr[320], cr[320];
    entry_from(&srv, MR_TTLS_INCOMING, "*:1", &pki.ca_pem, &server);
    set_types(&srv, "client");
    MR_ASSERT_OK(mr_ttls_entry_tls(&srv));
    /* the extension is read from the certificate */
    X509 *x = SSL_CTX_get0_certificate(srv.ctx);
    char type[64];
    assert_true(mr_ttls_cert_marble_type(x, type, sizeof(type)));
    assert_string_equal(type, "server");
    assert_true(mr_ttls_type_allowed(&srv, "client"));
    assert_false(mr_ttls_type_allowed(&srv, "Client"));
    assert_false(mr_ttls_type_allowed(&srv, NULL));
    /* an allowed marble: both sides content */
    entry_from(&cli, MR_TTLS_OUTGOING, "localhost:1", &pki.ca_pem, &client);
    MR_ASSERT_OK(mr_ttls_entry_tls(&cli));
    assert_true(shake(&srv, &cli, sr, cr));
    entry_clear(&cli);
    /* a marble of another type: the server refuses it, the client learns it */
    entry_from(&cli, MR_TTLS_OUTGOING, "localhost:1", &pki.ca_pem, &intruder);
    MR_ASSERT_OK(mr_ttls_entry_tls(&cli));
    assert_false(shake(&srv, &cli, sr, cr));
    assert_string_equal(sr, "peer marble type \"intruder\" is not allowed");
    assert_non_null(strstr(cr, "alert"));
    entry_clear(&cli);
    /* a certificate without the extension */
    entry_from(&cli, MR_TTLS_OUTGOING, "localhost:1", &pki.ca_pem, &untyped);
    MR_ASSERT_OK(mr_ttls_entry_tls(&cli));
    assert_false(shake(&srv, &cli, sr, cr));
    assert_string_equal(sr, "peer certificate carries no marble type");
    entry_clear(&cli);
    /* a marble of another deployment: neither side trusts the other */
    entry_from(&cli, MR_TTLS_OUTGOING, "localhost:1", &other.ca_pem, &stranger);
    MR_ASSERT_OK(mr_ttls_entry_tls(&cli));
    assert_false(shake(&srv, &cli, sr, cr));
    assert_non_null(strstr(cr, "peer certificate verification failed"));
    entry_clear(&cli);
    /* the wrong name: the client checks the server's SANs */
    entry_from(&cli, MR_TTLS_OUTGOING, "localhost:1", &pki.ca_pem, &client);
    MR_ASSERT_OK(mr_ttls_entry_tls(&cli));
    {
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        side s = {.ssl = mr_ttls_ssl_new(&srv, sv[0], false, NULL, NULL)};
        side c = {.ssl = mr_ttls_ssl_new(&cli, sv[1], true, "db.example", NULL)};
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, handshake, &s), 0);
        handshake(&c);
        (void)shutdown(sv[1], SHUT_RDWR);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_int_not_equal(c.ret, 1);
        assert_non_null(strstr(c.reason, "hostname mismatch"));
        SSL_free(s.ssl);
        SSL_free(c.ssl);
        close(sv[0]);
        close(sv[1]);
    }
    entry_clear(&cli);
    entry_clear(&srv);
    /* unusable credentials */
    entry_from(&srv, MR_TTLS_INCOMING, "*:1", &pki.ca_pem, &server);
    MR_ASSERT_OK(mr_buf_set(&srv.clikey, client.key_pem.data, client.key_pem.len));
    MR_ASSERT_FAIL(mr_ttls_entry_tls(&srv), MR_ERR_USAGE, "clikey is not usable");
    MR_ASSERT_OK(mr_buf_set(&srv.clikey, "junk", 4));
    MR_ASSERT_FAIL(mr_ttls_entry_tls(&srv), MR_ERR_USAGE, "clikey is not a PEM private key");
    MR_ASSERT_OK(mr_buf_set(&srv.clikey, server.key_pem.data, server.key_pem.len));
    MR_ASSERT_OK(mr_buf_set(&srv.cacrt, "junk", 4));
    MR_ASSERT_FAIL(mr_ttls_entry_tls(&srv), MR_ERR_USAGE, "holds no certificate");
    entry_clear(&srv);
    ERR_clear_error();
    tleaf_free(&server);
    tleaf_free(&client);
    tleaf_free(&intruder);
    tleaf_free(&untyped);
    tleaf_free(&stranger);
    tpki_free(&pki);
    tpki_free(&other);
}

int main(void)
{
    mr_ttls_log_set_fd(-1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_coordinator_shape),
        cmocka_unit_test(test_parse_json_details),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_parse_out_of_memory),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_endpoints),
        cmocka_unit_test(test_policy_lines),
        cmocka_unit_test(test_matching),
        cmocka_unit_test(test_tls_contexts_and_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
