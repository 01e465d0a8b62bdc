/* SPDX-License-Identifier: Apache-2.0 */
/* Crash consistency: SIGKILL the committing child at random moments; every acknowledged
 * commit must be present after the restart, and the state must always load. */
#include "mr_test.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/rand.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "store_test_util.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void child_path(char *out, size_t cap)
{
    char exe[PATH_MAX - 64];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    assert_true(n > 0);
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    assert_non_null(slash);
    *slash = '\0';
    snprintf(out, cap, "%s/store-crash-child", exe);
}

/* Parses acknowledged counters out of the pipe data; returns the highest. */
static unsigned long parse_acks(const char *buf, size_t len, unsigned long best)
{
    unsigned long cur = 0;
    bool in = false;
    for (size_t i = 0; i < len; i++) {
        if (buf[i] >= '0' && buf[i] <= '9') {
            cur = cur * 10 + (unsigned long)(buf[i] - '0');
            in = true;
        } else if (buf[i] == '\n' && in) {
            if (cur > best)
                best = cur;
            cur = 0;
            in = false;
        }
    }
    return best;
}

static void test_crash_kill_points(void **state)
{
    (void)state;
    char child[PATH_MAX];
    child_path(child, sizeof(child));
    if (access(child, X_OK) != 0)
        fail_msg("missing %s", child);
    char *dir = st_mkdtemp();
    unsigned long acked = 0;
    int kills = 0;
    double start = now_s();
    while (kills < 60 && (now_s() - start < 25.0 || kills < 50)) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            dup2(fds[1], 1);
            close(fds[0]);
            close(fds[1]);
            int devnull = open("/dev/null", O_WRONLY);
            if (devnull >= 0)
                dup2(devnull, 2);
            execl(child, child, dir, (char *)NULL);
            _exit(127);
        }
        close(fds[1]);
        uint8_t r[2];
        assert_int_equal(RAND_bytes(r, sizeof(r)), 1);
        int delay_ms = (r[0] | r[1] << 8) % 50;
        /* Most kills land while the child commits (after its first ack, whatever the
         * start-up cost under the sanitizers); every fourth one during start-up/replay. */
        char *buf = mr_alloc(1 << 20);
        size_t len = 0;
        bool early = kills % 4 == 3;
        double until = now_s() + (early ? delay_ms / 1000.0 : 10.0);
        bool started = early;
        for (;;) {
            double left = until - now_s();
            if (left <= 0)
                break;
            struct pollfd p = {.fd = fds[0], .events = POLLIN};
            int pr = poll(&p, 1, (int)(left * 1000) + 1);
            if (pr > 0) {
                ssize_t n = read(fds[0], buf + len, (1 << 20) - len - 1);
                if (n <= 0)
                    break;
                len += (size_t)n;
                if (!started) {
                    started = true;
                    until = now_s() + delay_ms / 1000.0;
                }
                if (len > (1 << 19)) {
                    acked = parse_acks(buf, len, acked);
                    len = 0;
                }
            }
        }
        kill(pid, SIGKILL);
        int status = 0;
        waitpid(pid, &status, 0);
        /* whatever the child acknowledged before dying is in the pipe */
        for (;;) {
            ssize_t n = read(fds[0], buf + len, (1 << 20) - len - 1);
            if (n <= 0)
                break;
            len += (size_t)n;
            if (len > (1 << 19)) {
                acked = parse_acks(buf, len, acked);
                len = 0;
            }
        }
        acked = parse_acks(buf, len, acked);
        mr_free(buf);
        close(fds[0]);
        if (WIFEXITED(status))
            fail_msg("child exited with %d before the kill (state failed to load?)",
                     WEXITSTATUS(status));
        kills++;

        /* restart: the state loads and holds every acknowledged commit */
        mr_store *s = NULL;
        MR_ASSERT_OK(mr_store_open_embedded(dir, st_dek, 32, NULL, &s));
        mr_buf v;
        bool found = false;
        mr_buf_init(&v, 0, MR_BUF_SECRET);
        MR_ASSERT_OK(mr_store_get1(s, "counter", &v, &found));
        MR_ASSERT_OK(mr_buf_nul_terminate(&v));
        unsigned long counter = found ? strtoul((const char *)v.data, NULL, 10) : 0;
        mr_buf_free(&v);
        if (counter < acked)
            fail_msg("kill %d: counter %lu < acknowledged %lu", kills, counter, acked);
        mr_store_stats st;
        mr_store_stats_get(s, &st);
        if (st.keys != counter + (counter > 0 ? 1 : 0))
            fail_msg("kill %d: %llu keys for counter %lu", kills, (unsigned long long)st.keys,
                     counter);
        mr_store_close(s);
        acked = counter; /* a durable but unacknowledged commit is fine, and now it counts */
    }
    printf("# crash test: %d kills, %lu commits survived\n", kills, acked);
    assert_true(kills >= 50);
    assert_true(acked > 0);
    st_rmdir(dir);
}

static const struct CMUnitTest crash_tests[] = {
    cmocka_unit_test(test_crash_kill_points),
};

st_suite st_crash_suite(void)
{
    return (st_suite){"crash", crash_tests, MR_ARRAY_LEN(crash_tests)};
}
