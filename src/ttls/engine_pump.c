/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A TTLS connection in its worker (engine_int.h, engine.c): non-blocking connect, handshake,
 * the TLS 1.3 confirmation of a client, and the pump that moves bytes between the app end
 * (pfd) and TLS once it is open. Everything here runs under the worker's mutex, driven by
 * epoll readiness as the worker recorded it in the connection.
 */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "ttls/engine_int.h"
#include "ttls/ttls.h"

#define ROUNDS 32       /* pump rounds per event before other connections get a turn */
#define CONFIRM_MS 1500 /* a TLS 1.3 server that sends no ticket: assume it accepted us */


static void set_state(conn *c, int state, int err)
{
    (void)pthread_mutex_lock(&mr_ttls_lock);
    if (c->m->state == ST_PENDING || state == ST_FAILED)
        c->m->state = state;
    if (err != 0)
        c->m->error = err;
    (void)pthread_cond_broadcast(&c->m->cv);
    (void)pthread_mutex_unlock(&mr_ttls_lock);
}

static void fail(conn *c, int err, const char *reason)
{
    set_state(c, ST_FAILED, err);
    mr_ttls_log(MR_TTLS_WARN, c->client ? "TLS connection refused" : "refused a connection",
                "entry", c->e->key, "peer", c->peer, "reason", reason, (const char *)NULL);
    mr_ttls_conn_teardown(c);
}

static void fail_tls(conn *c, int ret, int err)
{
    char reason[320];
    mr_ttls_ssl_reason(c->ssl, ret, reason, sizeof(reason));
    fail(c, err, reason);
}

void mr_ttls_conn_confirmed(void *owner)
{
    conn *c = owner;
    c->confirmed = true;
}

static void opened(conn *c)
{
    c->phase = PH_OPEN;
    mr_ttls_conn_leave_hs(c);
    set_state(c, ST_OPEN, 0);
    if (c->adup >= 0) {
        if (c->sndbuf > 0)
            (void)mr_ttls_real.setsockopt(c->adup, SOL_SOCKET, SO_SNDBUF, &c->sndbuf,
                                          sizeof(c->sndbuf));
        mr_ttls_close_internal(c->adup);
        c->adup = -1;
    }
    mr_ttls_log(MR_TTLS_DEBUG, "TLS connection established", "entry", c->e->key, "peer", c->peer,
                "version", SSL_get_version(c->ssl), (const char *)NULL);
}

static void net_broken(conn *c, int ret)
{
    char reason[320];
    mr_ttls_ssl_reason(c->ssl, ret, reason, sizeof(reason));
    c->net_dead = true;
    (void)pthread_mutex_lock(&mr_ttls_lock);
    if (c->m->error == 0)
        c->m->error = ECONNRESET;
    (void)pthread_mutex_unlock(&mr_ttls_lock);
    mr_ttls_log(MR_TTLS_DEBUG, "TLS connection failed", "entry", c->e->key, "peer", c->peer,
                "reason", reason, (const char *)NULL);
}

static bool retry(int e) { return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE; }

static bool would_block(void) { return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR; }

/* Discards the junk bytes that kept the app end of an unfinished connect() unwritable. */
static bool discard_junk(conn *c)
{
    bool progress = false;
    while (c->junk > 0 && c->app_rd) {
        uint8_t tmp[4096];
        ssize_t n = recv(c->pfd, tmp, c->junk < sizeof(tmp) ? c->junk : sizeof(tmp),
                         MSG_DONTWAIT);
        if (n < 0 && would_block())
            c->app_rd = false;
        if (n <= 0)
            break;
        c->junk -= (size_t)n;
        progress = true;
    }
    return progress;
}

/* network -> application: the buffered plaintext goes to the app end */
static bool send_to_app(conn *c)
{
    bool progress = false;
    if (c->n2a_off >= c->n2a_len)
        return false;
    if (c->app_noread) {
        c->n2a_off = c->n2a_len = 0;
    } else if (c->app_wr) {
        ssize_t n = send(c->pfd, c->n2a + c->n2a_off, c->n2a_len - c->n2a_off,
                         MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            c->n2a_off += (size_t)n;
            progress = true;
        } else if (n < 0 && would_block()) {
            c->app_wr = false;
        } else if (n < 0) {
            c->app_noread = true; /* the application shut down reading or closed */
            progress = true;
        }
        if (c->app_noread || c->n2a_off == c->n2a_len)
            c->n2a_off = c->n2a_len = 0;
    }
    return progress;
}

/* network -> application: reads the next plaintext record into the empty buffer */
static bool read_net(conn *c)
{
    bool want = c->n2a_len == 0 && !c->net_eof && !c->net_dead &&
                (c->net_rd || SSL_has_pending(c->ssl));
    if (!want)
        return false;
    ERR_clear_error();
    int r = SSL_read(c->ssl, c->n2a, BUF_CAP);
    if (r > 0) {
        c->n2a_len = (size_t)r;
        c->n2a_off = 0;
        return true;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
        c->net_rd = false;
        return false;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        c->net_wr = false;
        return false;
    }
    if (e == SSL_ERROR_ZERO_RETURN)
        c->net_eof = true;
    else
        net_broken(c, r);
    return true;
}

/* The peer is done (or the connection failed) and the application has everything: EOF. */
static void eof_to_app(conn *c)
{
    if ((c->net_eof || c->net_dead) && c->n2a_len == 0 && !c->pfd_shut) {
        (void)shutdown(c->pfd, SHUT_WR); /* the application reads EOF */
        c->pfd_shut = true;
    }
}

/* application -> network: the buffered bytes go out through TLS */
static bool write_net(conn *c)
{
    bool progress = false;
    if (c->a2n_off < c->a2n_len && !c->net_dead && c->net_wr) {
        ERR_clear_error();
        int r = SSL_write(c->ssl, c->a2n + c->a2n_off, (int)(c->a2n_len - c->a2n_off));
        int e = r > 0 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, r);
        if (r > 0) {
            c->a2n_off += (size_t)r;
            progress = true;
        } else if (e == SSL_ERROR_WANT_WRITE) {
            c->net_wr = false;
        } else if (e == SSL_ERROR_WANT_READ) {
            c->net_rd = false; /* a post-handshake message first: wait for the network */
        } else {
            net_broken(c, r);
            progress = true;
        }
    }
    if (c->net_dead || c->a2n_off == c->a2n_len)
        c->a2n_off = c->a2n_len = 0;
    return progress;
}

/* application -> network: reads what the application wrote into the empty buffer */
static bool read_app(conn *c)
{
    if (c->a2n_len != 0 || c->app_eof || !c->app_rd || c->junk != 0)
        return false;
    ssize_t n = recv(c->pfd, c->a2n, BUF_CAP, MSG_DONTWAIT);
    if (n > 0) {
        c->a2n_len = c->net_dead ? 0 : (size_t)n;
    } else if (n == 0) {
        c->app_eof = true;
    } else if (would_block()) {
        c->app_rd = false;
        return false;
    } else {
        c->app_eof = c->app_noread = true;
    }
    return true;
}

/* the application's write side is done: close_notify (TLS 1.3 half-close) */
static bool send_close_notify(conn *c)
{
    if (!c->app_eof || c->a2n_len != 0 || c->cn_sent || c->net_dead)
        return false;
    ERR_clear_error();
    int r = SSL_shutdown(c->ssl);
    if (r >= 0) {
        c->cn_sent = true;
        (void)shutdown(c->tcp, SHUT_WR);
        return true;
    }
    if (retry(SSL_get_error(c->ssl, r)))
        return false;
    net_broken(c, r);
    return true;
}

/* Both directions are done, or the TLS connection failed and the application has it all. */
static bool finished(const conn *c)
{
    bool out_done = c->app_eof && (c->cn_sent || c->net_dead);
    bool in_done = c->app_noread || ((c->net_eof || c->net_dead) && c->n2a_len == 0);
    return (out_done && in_done) || (c->net_dead && c->n2a_len == 0);
}

void mr_ttls_conn_pump(conn *c)
{
    for (int round = 0; round < ROUNDS; round++) {
        /* every step runs in every round, in this order; any of them may make progress */
        bool progress = discard_junk(c);
        if (send_to_app(c))
            progress = true;
        if (read_net(c))
            progress = true;
        eof_to_app(c);
        if (write_net(c))
            progress = true;
        if (read_app(c))
            progress = true;
        if (send_close_notify(c))
            progress = true;
        if (finished(c)) {
            mr_ttls_conn_teardown(c);
            return;
        }
        if (!progress)
            return;
    }
    mr_ttls_conn_again(c); /* more to do: after the other connections had their turn */
}

void mr_ttls_conn_drive(conn *c)
{
    if (c->dead)
        return;
    if (c->phase == PH_CONNECTING) {
        int err = 0;
        socklen_t l = sizeof(err);
        if (mr_ttls_real.getsockopt(c->tcp, SOL_SOCKET, SO_ERROR, &err, &l) != 0)
            err = errno;
        if (err != 0) {
            char reason[128];
            (void)snprintf(reason, sizeof(reason), "connect: %s", strerror(err));
            fail(c, err, reason);
            return;
        }
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        if (mr_ttls_real.getpeername(c->tcp, (struct sockaddr *)&ss, &sl) != 0)
            return; /* still connecting */
        c->phase = PH_HANDSHAKE;
    }
    if (c->phase == PH_HANDSHAKE) {
        ERR_clear_error();
        int r = SSL_do_handshake(c->ssl);
        if (r != 1) {
            if (!retry(SSL_get_error(c->ssl, r)))
                fail_tls(c, r, c->client ? ECONNREFUSED : ECONNRESET);
            return;
        }
        if (c->client && SSL_version(c->ssl) == TLS1_3_VERSION && !c->confirmed) {
            /* TLS 1.3: the server checks our certificate after our Finished; its session
             * ticket (or first data) says it accepted us, an alert that it did not */
            c->phase = PH_CONFIRM;
            c->confirm_deadline = mr_ttls_now_ms() + CONFIRM_MS;
        } else {
            opened(c);
        }
    }
    if (c->phase == PH_CONFIRM) {
        ERR_clear_error();
        int r = SSL_read(c->ssl, c->n2a, BUF_CAP);
        if (r > 0) {
            c->n2a_len = (size_t)r;
            c->n2a_off = 0;
            opened(c);
        } else {
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_ZERO_RETURN) {
                c->net_eof = true;
                opened(c);
            } else if (!retry(e)) {
                fail_tls(c, r, ECONNREFUSED);
                return;
            } else if (c->confirmed) {
                opened(c);
            } else {
                return;
            }
        }
    }
    if (c->phase == PH_OPEN)
        mr_ttls_conn_pump(c);
}

void mr_ttls_worker_deadlines(worker *w)
{
    if (w->n_hs == 0)
        return;
    int64_t now = mr_ttls_now_ms();
    for (conn *c = w->head, *next = NULL; c != NULL; c = next) {
        next = c->next;
        if (c->dead || !c->in_hs)
            continue;
        if (c->phase == PH_CONFIRM && now >= c->confirm_deadline) {
            opened(c);
            mr_ttls_conn_pump(c);
        } else if (now >= c->deadline) {
            fail(c, ETIMEDOUT, "handshake timed out");
        }
    }
}
