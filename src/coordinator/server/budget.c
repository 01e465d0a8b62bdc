/* SPDX-License-Identifier: Apache-2.0 */
/* Admission of connections per listener and source address, eviction of idle connections,
 * and the request-body memory budget (internal.h explains the rules). Loop thread only, but
 * for mr_srv_render_budgets (atomic counters, any thread). */
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <openssl/rand.h>

#include "common/alloc.h"
#include "common/log.h"
#include "coordinator/server/internal.h"

/* ---- sources ---- */

static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

/* Keyed with a random seed, so a peer cannot pick addresses that share one chain. */
static size_t bucket_of(const mr_srv_sources *t, int listener, uint8_t family,
                        const uint8_t addr[16])
{
    uint64_t h = mix(t->seed ^ ((uint64_t)(unsigned)listener << 8 | family));
    for (int i = 0; i < 16; i += 8) {
        uint64_t w = 0;
        memcpy(&w, addr + i, 8);
        h = mix(h ^ w);
    }
    return (size_t)(h & (t->nbuckets - 1));
}

static MR_RESULT sources_grow(mr_srv_sources *t)
{
    size_t n = t->nbuckets == 0 ? 256 : t->nbuckets * 2;
    mr_srv_source **b = mr_calloc(n, sizeof(*b)); /* NOLINT(bugprone-sizeof-expression) */
    MR_ENSURE_ALLOC(b);
    if (t->nbuckets == 0 && RAND_bytes((unsigned char *)&t->seed, sizeof(t->seed)) != 1)
        t->seed = (uint64_t)(uintptr_t)b ^ mr_srv_now_ns();
    size_t old = t->nbuckets;
    mr_srv_source **ob = t->buckets;
    t->buckets = b;
    t->nbuckets = n;
    for (size_t i = 0; i < old; i++) {
        while (ob[i] != NULL) {
            mr_srv_source *e = ob[i];
            ob[i] = e->next;
            size_t k = bucket_of(t, e->listener, e->family, e->addr);
            e->next = b[k];
            b[k] = e;
        }
    }
    mr_free(ob);
    return MR_SUCCESS;
}

static void peer_key(const struct sockaddr *sa, int salen, uint8_t *family, uint8_t addr[16])
{
    memset(addr, 0, 16);
    *family = 0;
    if (sa == NULL)
        return;
    if (sa->sa_family == AF_INET && (size_t)salen >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        memcpy(addr, &in->sin_addr, 4);
        *family = AF_INET;
    } else if (sa->sa_family == AF_INET6 && (size_t)salen >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(in6->sin6_addr.s6_addr, v4mapped, 12) == 0) {
            memcpy(addr, in6->sin6_addr.s6_addr + 12, 4); /* the same peer as over IPv4 */
            *family = AF_INET;
        } else {
            memcpy(addr, in6->sin6_addr.s6_addr, 16);
            *family = AF_INET6;
        }
    }
}

static mr_srv_source *source_get(mr_srv *s, int listener, uint8_t family, const uint8_t addr[16])
{
    mr_srv_sources *t = &s->sources;
    if (t->nbuckets == 0 || t->count >= t->nbuckets) {
        if (!mr_ok(sources_grow(t)) && t->nbuckets == 0)
            return NULL;
    }
    size_t k = bucket_of(t, listener, family, addr);
    for (mr_srv_source *e = t->buckets[k]; e != NULL; e = e->next)
        if (e->listener == listener && e->family == family && memcmp(e->addr, addr, 16) == 0)
            return e;
    mr_srv_source *e = mr_calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    e->listener = listener;
    e->family = family;
    memcpy(e->addr, addr, 16);
    e->next = t->buckets[k];
    t->buckets[k] = e;
    t->count++;
    return e;
}

/* Frees the entry once nothing refers to it any more. */
static void source_put(mr_srv *s, mr_srv_source *e)
{
    if (e == NULL || e->conns > 0 || e->body_bytes > 0)
        return;
    mr_srv_sources *t = &s->sources;
    size_t k = bucket_of(t, e->listener, e->family, e->addr);
    for (mr_srv_source **pp = &t->buckets[k]; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == e) {
            *pp = e->next;
            t->count--;
            mr_free(e);
            return;
        }
    }
}

void mr_srv_sources_free(mr_srv_sources *t)
{
    for (size_t i = 0; i < t->nbuckets; i++) {
        while (t->buckets[i] != NULL) {
            mr_srv_source *e = t->buckets[i];
            t->buckets[i] = e->next;
            mr_free(e);
        }
    }
    mr_free(t->buckets);
    memset(t, 0, sizeof(*t));
}

/* ---- idle lists ---- */

static void list_remove(mr_srv_listener *l, mr_srv_conn *c)
{
    mr_srv_conn **head = c->idle == MR_SRV_LIST_FRESH ? &l->fresh_head : &l->idle_head;
    mr_srv_conn **tail = c->idle == MR_SRV_LIST_FRESH ? &l->fresh_tail : &l->idle_tail;
    if (c->idle_prev != NULL)
        c->idle_prev->idle_next = c->idle_next;
    else
        *head = c->idle_next;
    if (c->idle_next != NULL)
        c->idle_next->idle_prev = c->idle_prev;
    else
        *tail = c->idle_prev;
    c->idle = MR_SRV_LIST_NONE;
    c->idle_prev = c->idle_next = NULL;
}

static void list_append(mr_srv_listener *l, mr_srv_conn *c, int which)
{
    mr_srv_conn **head = which == MR_SRV_LIST_FRESH ? &l->fresh_head : &l->idle_head;
    mr_srv_conn **tail = which == MR_SRV_LIST_FRESH ? &l->fresh_tail : &l->idle_tail;
    c->idle = which;
    c->idle_next = NULL;
    c->idle_prev = *tail;
    if (*tail != NULL)
        (*tail)->idle_next = c;
    else
        *head = c;
    *tail = c;
}

void mr_srv_fresh_enter(mr_srv_conn *c)
{
    if (c->lst == NULL || c->closed)
        return;
    mr_srv_idle_leave(c);
    list_append(c->lst, c, MR_SRV_LIST_FRESH);
}

void mr_srv_conn_started(mr_srv_conn *c)
{
    if (c->idle == MR_SRV_LIST_FRESH)
        mr_srv_idle_enter(c);
}

void mr_srv_idle_enter(mr_srv_conn *c)
{
    if (c->lst == NULL || c->closed)
        return;
    mr_srv_idle_leave(c);
    list_append(c->lst, c, MR_SRV_LIST_IDLE);
}

void mr_srv_idle_leave(mr_srv_conn *c)
{
    if (c->lst == NULL || c->idle == MR_SRV_LIST_NONE)
        return;
    list_remove(c->lst, c);
}

/* ---- admission ---- */

/* Connections that have not sent a byte since they were accepted go first: a client that
 * means to talk sends its ClientHello at once, a flood that never starts a handshake does not.
 * Then the waiting ones. Of the EVICT_SAMPLE oldest of a list, the one whose source holds the
 * most connections (the oldest among equals). */
#define EVICT_SAMPLE 8

/* Bytes are waiting in the socket (read by the loop later): the peer has spoken. */
static bool has_input(const mr_srv_conn *c)
{
    char b;
    evutil_socket_t fd = c->bev != NULL ? bufferevent_getfd(c->bev) : -1;
    return fd >= 0 && recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 1;
}

static mr_srv_conn *heaviest(mr_srv_conn *first, bool fresh)
{
    mr_srv_conn *best = NULL;
    unsigned best_n = 0;
    int seen = 0;
    for (mr_srv_conn *c = first, *next = NULL; c != NULL && seen < EVICT_SAMPLE; c = next) {
        next = c->idle_next;
        seen++;
        if (fresh && has_input(c)) {
            mr_srv_conn_started(c); /* its ClientHello arrived after the accept */
            continue;
        }
        unsigned n = c->src != NULL ? c->src->conns : 0;
        if (best == NULL || n > best_n) {
            best = c;
            best_n = n;
        }
    }
    return best;
}

static mr_srv_conn *pick_victim(mr_srv_listener *l)
{
    mr_srv_conn *v = l->fresh_head != NULL ? heaviest(l->fresh_head, true) : NULL;
    return v != NULL ? v : heaviest(l->idle_head, false);
}

mr_srv_admit mr_srv_admit_conn(mr_srv *s, mr_srv_listener *l, const struct sockaddr *sa,
                               int salen, mr_srv_source **src)
{
    uint8_t family = 0, addr[16];
    *src = NULL;
    peer_key(sa, salen, &family, addr);
    mr_srv_source *e = source_get(s, l->id, family, addr);
    if (e == NULL)
        return MR_SRV_ADMIT_LISTENER_FULL; /* out of memory: refuse rather than not count */
    if (e->conns >= s->limits.max_conns_per_source) {
        atomic_fetch_add(&l->refused_source, 1);
        source_put(s, e);
        return MR_SRV_ADMIT_SOURCE_FULL;
    }
    e->conns++; /* counted first: closing a victim of the same source must not free e */
    if (l->nconns >= l->max_conns) {
        mr_srv_conn *victim = pick_victim(l);
        if (victim == NULL) {
            atomic_fetch_add(&l->refused_full, 1);
            e->conns--;
            source_put(s, e);
            return MR_SRV_ADMIT_LISTENER_FULL;
        }
        atomic_fetch_add(&l->evicted, 1);
        MR_LOG_DEBUG("listener full: closing its longest-idle connection",
                     MR_F_UINT("port", l->port));
        mr_srv_conn_close(victim); /* uncounts it */
    }
    l->nconns++;
    atomic_store(&l->conns_now, l->nconns);
    *src = e;
    return MR_SRV_ADMIT_OK;
}

void mr_srv_source_release(mr_srv *s, mr_srv_listener *l, mr_srv_source *src)
{
    if (src == NULL)
        return;
    src->conns--;
    l->nconns--;
    atomic_store(&l->conns_now, l->nconns);
    source_put(s, src);
}

void mr_srv_conn_uncount(mr_srv_conn *c)
{
    mr_srv_idle_leave(c);
    if (c->src == NULL)
        return;
    mr_srv_listener *l = c->lst;
    c->src->conns--;
    l->nconns--;
    atomic_store(&l->conns_now, l->nconns);
    source_put(c->srv, c->src);
    c->src = NULL;
}

/* ---- body budget ---- */

static size_t source_share(const mr_srv *s) { return s->limits.body_budget / 4; }

/* Large bodies (manifests, secrets, big gRPC messages) may fill three quarters of the budget:
 * the rest stays for small requests such as activations. */
static size_t room_for(const mr_srv_request *r, size_t want)
{
    size_t b = r->srv->limits.body_budget;
    return want > r->srv->limits.max_small_body_bytes ? b / 4 * 3 : b;
}

static bool charge(mr_srv_request *r, size_t want)
{
    mr_srv_listener *l = r->lst;
    if (l == NULL || want <= r->charged)
        return true;
    size_t extra = want - r->charged;
    size_t room = room_for(r, want);
    mr_srv *s = r->srv;
    bool fits = s->body_used <= room && extra <= room - s->body_used;
    if (fits && r->src != NULL) {
        size_t share = source_share(s);
        fits = r->src->body_bytes <= share && extra <= share - r->src->body_bytes;
    }
    if (!fits) {
        atomic_fetch_add(&l->body_refused, 1);
        return false;
    }
    s->body_used += extra;
    l->body_used += extra;
    atomic_store(&l->body_now, l->body_used);
    if (r->src != NULL)
        r->src->body_bytes += extra;
    r->charged = want;
    return true;
}

bool mr_srv_body_charge(mr_srv_request *r) { return charge(r, r->body.cap); }

bool mr_srv_body_reserve(mr_srv_request *r, size_t total)
{
    if (total == 0)
        return true;
    if (!charge(r, r->body.cap > total ? r->body.cap : total))
        return false;
    /* exactly `total` bytes: the buffer grows to its maximum at once */
    if (r->body.cap < total) {
        size_t max = r->body.max;
        r->body.max = total;
        mr_result ok = mr_buf_reserve(&r->body, total - r->body.len);
        r->body.max = max;
        if (!mr_ok(ok))
            return false;
    }
    return charge(r, r->body.cap);
}

void mr_srv_body_drop(mr_srv_request *r)
{
    mr_buf_free(&r->body);
    mr_srv_listener *l = r->lst;
    if (l == NULL || r->charged == 0)
        return;
    r->srv->body_used -= r->charged;
    l->body_used -= r->charged;
    atomic_store(&l->body_now, l->body_used);
    if (r->src != NULL) {
        r->src->body_bytes -= r->charged;
        source_put(r->srv, r->src);
    }
    r->charged = 0;
}

/* ---- metrics ---- */

static const char *kind_name(mr_srv_listener_kind k)
{
    return k == MR_SRV_LISTENER_MESH ? "mesh" : k == MR_SRV_LISTENER_PLAIN ? "metrics" : "client";
}

MR_RESULT mr_srv_render_budgets(const mr_srv *s, mr_buf *out)
{
    static const struct {
        const char *name, *type, *help;
    } fam[] = {
        {"marblerun_server_connections", "gauge", "Open connections per listener."},
        {"marblerun_server_connections_max", "gauge", "Connection budget per listener."},
        {"marblerun_server_connections_refused_total", "counter",
         "Connections closed at accept: the peer address held its share (source), or the "
         "listener was full with no idle connection to close (full)."},
        {"marblerun_server_connections_evicted_total", "counter",
         "Idle connections closed to make room on a full listener."},
        {"marblerun_server_request_body_bytes", "gauge",
         "Memory held by request bodies being received or handled."},
        {"marblerun_server_request_body_budget_bytes", "gauge",
         "Most memory request bodies may hold, all listeners together."},
        {"marblerun_server_request_body_refused_total", "counter",
         "Requests answered 503 / RESOURCE_EXHAUSTED because the body budget was spent."},
    };
    for (size_t f = 0; f < MR_ARRAY_LEN(fam); f++) {
        MR_GUARD(mr_srv_prom_family(out, fam[f].name, fam[f].type, fam[f].help));
        for (size_t i = 0; i < s->nlst; i++) {
            mr_srv_listener *l = s->lst[i];
            const char *k = kind_name(l->kind);
            switch (f) {
            case 0:
                MR_GUARD(mr_srv_prom_sample(out, fam[f].name, (double)atomic_load(&l->conns_now),
                                            "listener", k, MR_SRV_PROM_END));
                break;
            case 1:
                MR_GUARD(mr_srv_prom_sample(out, fam[f].name, (double)l->max_conns, "listener",
                                            k, MR_SRV_PROM_END));
                break;
            case 2:
                MR_GUARD(mr_srv_prom_sample(out, fam[f].name,
                                            (double)atomic_load(&l->refused_source), "listener",
                                            k, "reason", "source", MR_SRV_PROM_END));
                MR_GUARD(mr_srv_prom_sample(out, fam[f].name,
                                            (double)atomic_load(&l->refused_full), "listener", k,
                                            "reason", "full", MR_SRV_PROM_END));
                break;
            case 3:
                MR_GUARD(mr_srv_prom_sample(out, fam[f].name, (double)atomic_load(&l->evicted),
                                            "listener", k, MR_SRV_PROM_END));
                break;
            case 4:
                MR_GUARD(mr_srv_prom_sample(out, fam[f].name, (double)atomic_load(&l->body_now),
                                            "listener", k, MR_SRV_PROM_END));
                break;
            case 5:
                if (i == 0)
                    MR_GUARD(mr_srv_prom_sample(out, fam[f].name, (double)s->limits.body_budget,
                                                MR_SRV_PROM_END));
                break;
            default:
                MR_GUARD(mr_srv_prom_sample(out, fam[f].name,
                                            (double)atomic_load(&l->body_refused), "listener", k,
                                            MR_SRV_PROM_END));
                break;
            }
        }
    }
    return MR_SUCCESS;
}
