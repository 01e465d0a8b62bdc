/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Which TTLS entry a connection belongs to (spec/marble-cli-k8s.md §3.3, and the limits of
 * §3.4 we lift): Outgoing entries match on IP literal and port, or on a host name: one the
 * application resolved with getaddrinfo, "localhost" for every loopback address (RFC 6761;
 * curl, for one, never asks the resolver for it), or, when neither says, what the resolver
 * answers for the entry's name now (for applications with their own resolver; at most once per
 * entry every few seconds). IPv4 and IPv6, brackets optional. Incoming entries match on the
 * local port only.
 */
#include <netinet/in.h>
#include <pthread.h>
#include <time.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "ttls/ttls.h"

static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int mr_ttls_sockaddr_ip(const struct sockaddr *sa, socklen_t len, uint8_t ip[16], uint16_t *port)
{
    if (sa == NULL)
        return 0;
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        memcpy(ip, &in->sin_addr, 4);
        *port = ntohs(in->sin_port);
        return AF_INET;
    }
    if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        *port = ntohs(in6->sin6_port);
        if (memcmp(in6->sin6_addr.s6_addr, v4mapped, sizeof(v4mapped)) == 0) {
            memcpy(ip, in6->sin6_addr.s6_addr + 12, 4);
            return AF_INET;
        }
        memcpy(ip, in6->sin6_addr.s6_addr, 16);
        return AF_INET6;
    }
    return 0;
}

/* ---- names from getaddrinfo ---- */

#define NAMES_MAX 1024

typedef struct name_rec {
    int family;
    uint8_t ip[16];
    char host[MR_TTLS_HOST_MAX];
} name_rec;

#define RESOLVE_EVERY_MS 5000

static pthread_mutex_t g_names_lock = PTHREAD_MUTEX_INITIALIZER;
static name_rec g_names[NAMES_MAX];
static size_t g_names_n, g_names_next;
static mr_ttls_resolver g_resolver;
static int64_t g_resolved_at[2 * MR_TTLS_ENTRIES_MAX]; /* per entry, monotonic ms */

void mr_ttls_names_set_resolver(mr_ttls_resolver fn) { g_resolver = fn; }

void mr_ttls_names_fork_prepare(void) { (void)pthread_mutex_lock(&g_names_lock); }
void mr_ttls_names_fork_done(void) { (void)pthread_mutex_unlock(&g_names_lock); }

static int64_t mono_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t ip_len(int family) { return family == AF_INET ? 4 : 16; }

void mr_ttls_names_reset(void)
{
    (void)pthread_mutex_lock(&g_names_lock);
    g_names_n = g_names_next = 0;
    memset(g_resolved_at, 0, sizeof(g_resolved_at));
    (void)pthread_mutex_unlock(&g_names_lock);
}

static void remember(int family, const uint8_t *ip, const char *host)
{
    for (size_t i = 0; i < g_names_n; i++) {
        name_rec *r = &g_names[i];
        if (r->family == family && memcmp(r->ip, ip, ip_len(family)) == 0 &&
            strcasecmp(r->host, host) == 0)
            return;
    }
    name_rec *r = &g_names[g_names_next];
    g_names_next = (g_names_next + 1) % NAMES_MAX;
    if (g_names_n < NAMES_MAX)
        g_names_n++;
    r->family = family;
    memcpy(r->ip, ip, ip_len(family));
    (void)snprintf(r->host, sizeof(r->host), "%s", host);
}

void mr_ttls_names_record(const mr_ttls_config *c, const char *node, const struct addrinfo *res)
{
    if (c == NULL || c->n_out_names == 0 || node == NULL)
        return;
    const char *host = NULL;
    for (size_t i = 0; i < c->count && host == NULL; i++) {
        const mr_ttls_entry *e = &c->entries[i];
        if (e->dir == MR_TTLS_OUTGOING && e->ip_family == 0 && strcasecmp(e->host, node) == 0)
            host = e->host;
    }
    if (host == NULL)
        return;
    (void)pthread_mutex_lock(&g_names_lock);
    for (const struct addrinfo *a = res; a != NULL; a = a->ai_next) {
        uint8_t ip[16];
        uint16_t port = 0;
        int fam = mr_ttls_sockaddr_ip(a->ai_addr, a->ai_addrlen, ip, &port);
        if (fam != 0)
            remember(fam, ip, host);
    }
    (void)pthread_mutex_unlock(&g_names_lock);
}

/* ---- lookups ---- */

static bool port_set(const uint8_t *map, uint16_t port)
{
    return (map[port >> 3] & (1u << (port & 7))) != 0;
}

/* The name entry for (fam, ip, port) known from the name memory, or NULL. */
static const mr_ttls_entry *remembered(const mr_ttls_config *c, int fam, const uint8_t *ip,
                                       uint16_t port)
{
    const mr_ttls_entry *found = NULL;
    (void)pthread_mutex_lock(&g_names_lock);
    for (size_t k = 0; k < g_names_n && found == NULL; k++) {
        const name_rec *r = &g_names[(g_names_next + NAMES_MAX - 1 - k) % NAMES_MAX];
        if (r->family != fam || memcmp(r->ip, ip, ip_len(fam)) != 0)
            continue;
        for (size_t i = 0; i < c->count; i++) {
            const mr_ttls_entry *e = &c->entries[i];
            if (e->dir == MR_TTLS_OUTGOING && e->ip_family == 0 && e->port == port &&
                strcasecmp(e->host, r->host) == 0) {
                found = e;
                break;
            }
        }
    }
    (void)pthread_mutex_unlock(&g_names_lock);
    return found;
}

static bool is_localhost(const char *h)
{
    return strcasecmp(h, "localhost") == 0 || strcasecmp(h, "localhost.") == 0;
}

static bool loopback(int fam, const uint8_t *ip)
{
    static const uint8_t v6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    return fam == AF_INET ? ip[0] == 127 : memcmp(ip, v6, sizeof(v6)) == 0;
}

/* Asks the resolver for the names of the entries on this port (rate-limited per entry). */
static void resolve_names(const mr_ttls_config *c, uint16_t port)
{
    if (g_resolver == NULL)
        return;
    int64_t now = mono_ms();
    for (size_t i = 0; i < c->count && i < MR_ARRAY_LEN(g_resolved_at); i++) {
        const mr_ttls_entry *e = &c->entries[i];
        if (e->dir != MR_TTLS_OUTGOING || e->ip_family != 0 || e->port != port ||
            is_localhost(e->host))
            continue;
        (void)pthread_mutex_lock(&g_names_lock);
        bool due = g_resolved_at[i] == 0 || now - g_resolved_at[i] >= RESOLVE_EVERY_MS;
        if (due)
            g_resolved_at[i] = now;
        (void)pthread_mutex_unlock(&g_names_lock);
        if (!due)
            continue;
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
        struct addrinfo *res = NULL;
        if (g_resolver(e->host, NULL, &hints, &res) == 0) {
            mr_ttls_names_record(c, e->host, res);
            freeaddrinfo(res);
        }
    }
}

const mr_ttls_entry *mr_ttls_match_outgoing(const mr_ttls_config *c, const struct sockaddr *sa,
                                            socklen_t len, const char **name)
{
    uint8_t ip[16];
    uint16_t port = 0;
    *name = NULL;
    if (c == NULL || c->n_out == 0)
        return NULL;
    int fam = mr_ttls_sockaddr_ip(sa, len, ip, &port);
    if (fam == 0 || !port_set(c->out_ports, port))
        return NULL;
    for (int pass = 0; c->n_out_names > 0 && pass < 2; pass++) {
        /* names the application resolved to this address, newest first */
        const mr_ttls_entry *found = remembered(c, fam, ip, port);
        for (size_t i = 0; found == NULL && loopback(fam, ip) && i < c->count; i++) {
            const mr_ttls_entry *e = &c->entries[i];
            if (e->dir == MR_TTLS_OUTGOING && e->port == port && is_localhost(e->host))
                found = e;
        }
        if (found != NULL) {
            *name = found->host;
            return found;
        }
        bool literal = false;
        for (size_t i = 0; i < c->count && !literal; i++) {
            const mr_ttls_entry *e = &c->entries[i];
            literal = e->dir == MR_TTLS_OUTGOING && e->ip_family == fam && e->port == port &&
                      memcmp(e->ip, ip, ip_len(fam)) == 0;
        }
        if (literal || pass == 1)
            break;
        resolve_names(c, port);
    }
    for (size_t i = 0; i < c->count; i++) {
        const mr_ttls_entry *e = &c->entries[i];
        if (e->dir == MR_TTLS_OUTGOING && e->ip_family == fam && e->port == port &&
            memcmp(e->ip, ip, ip_len(fam)) == 0)
            return e;
    }
    return NULL;
}

const mr_ttls_entry *mr_ttls_match_incoming(const mr_ttls_config *c, uint16_t port)
{
    if (c == NULL || c->n_in == 0 || !port_set(c->in_ports, port))
        return NULL;
    for (size_t i = 0; i < c->count; i++)
        if (c->entries[i].dir == MR_TTLS_INCOMING && c->entries[i].port == port)
            return &c->entries[i];
    return NULL;
}
