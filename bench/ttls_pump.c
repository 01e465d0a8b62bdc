/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ttls-pump: the program of the TTLS benchmark (bench/ttls-bench). It is an ordinary TCP
 * program; run plain, or under marblerun-premain with libmarble-ttls.so, it measures what
 * the library costs.
 *
 *   ttls-pump server PORT            sequential connections on 127.0.0.1:PORT: after a 'T',
 *                                    read to EOF and answer the byte count (8 bytes); after
 *                                    an 'h', answer 'h' and close
 *   ttls-pump send PORT BYTES        one connection, BYTES after the 'T', half-close, wait for
 *                                    the count; prints {"bytes","seconds","mb_per_s"}
 *   ttls-pump connects PORT N        N connections, one 'h' round trip each; prints the mean
 *                                    and median wall time and this process's CPU per connection
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (256 * 1024)

static uint8_t g_buf[CHUNK];

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + (double)u.ru_utime.tv_usec / 1e6 + (double)u.ru_stime.tv_sec +
           (double)u.ru_stime.tv_usec / 1e6;
}

static unsigned long long number(const char *s)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0') {
        fprintf(stderr, "ttls-pump: not a number: %s\n", s);
        exit(2);
    }
    return v;
}

static struct sockaddr_in loopback(const char *port)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)number(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static int dial(const char *port)
{
    struct sockaddr_in a = loopback(port);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        perror("ttls-pump: connect");
        exit(1);
    }
    return fd;
}

static void write_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            perror("ttls-pump: write");
            exit(1);
        }
        b += w;
        n -= (size_t)w;
    }
}

static int read_all(int fd, void *p, size_t n)
{
    uint8_t *b = p;
    while (n > 0) {
        ssize_t r = read(fd, b, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        b += r;
        n -= (size_t)r;
    }
    return 0;
}

static int server(const char *port)
{
    struct sockaddr_in a = loopback(port);
    int one = 1, ls = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(ls, 128) != 0) {
        perror("ttls-pump: listen");
        return 1;
    }
    printf("listening\n");
    fflush(stdout);
    for (;;) {
        int c = accept(ls, NULL, NULL);
        if (c < 0)
            continue;
        char mode = 0;
        if (read_all(c, &mode, 1) == 0 && mode == 'h') {
            write_all(c, "h", 1);
        } else if (mode == 'T') {
            uint64_t total = 0;
            for (;;) {
                ssize_t r = read(c, g_buf, sizeof(g_buf));
                if (r < 0 && errno == EINTR)
                    continue;
                if (r <= 0)
                    break;
                total += (uint64_t)r;
            }
            write_all(c, &total, sizeof(total));
        }
        close(c);
    }
}

static int sender(const char *port, const char *bytes)
{
    uint64_t n = number(bytes), got = 0;
    memset(g_buf, 0x5a, sizeof(g_buf));
    double t0 = now_s();
    int fd = dial(port);
    write_all(fd, "T", 1);
    for (uint64_t left = n; left > 0;) {
        size_t k = left < sizeof(g_buf) ? (size_t)left : sizeof(g_buf);
        write_all(fd, g_buf, k);
        left -= k;
    }
    shutdown(fd, SHUT_WR);
    if (read_all(fd, &got, sizeof(got)) != 0 || got != n) {
        fprintf(stderr, "ttls-pump: the server counted %llu of %llu bytes\n",
                (unsigned long long)got, (unsigned long long)n);
        return 1;
    }
    double dt = now_s() - t0;
    close(fd);
    printf("{\"bytes\": %llu, \"seconds\": %.6f, \"mb_per_s\": %.1f}\n", (unsigned long long)n, dt,
           (double)n / dt / 1e6);
    return 0;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int connects(const char *port, const char *count)
{
    static double t[100000];
    unsigned long long n = number(count);
    double sum = 0;
    if (n == 0 || n > sizeof(t) / sizeof(t[0])) {
        fprintf(stderr, "ttls-pump: 1..100000 connections\n");
        return 2;
    }
    double c0 = cpu_s();
    for (unsigned long long i = 0; i < n; i++) {
        double t0 = now_s();
        int fd = dial(port);
        char b = 0;
        write_all(fd, "h", 1);
        if (read_all(fd, &b, 1) != 0 || b != 'h') {
            fprintf(stderr, "ttls-pump: no answer on connection %llu\n", i);
            return 1;
        }
        close(fd);
        t[i] = now_s() - t0;
        sum += t[i];
    }
    double cpu = cpu_s() - c0;
    qsort(t, n, sizeof(double), cmp);
    printf("{\"connections\": %llu, \"mean_us\": %.1f, \"median_us\": %.1f, \"cpu_us_per_conn\": %.1f}\n",
           n, sum / (double)n * 1e6, t[n / 2] * 1e6, cpu / (double)n * 1e6);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "server") == 0)
        return server(argv[2]);
    if (argc == 4 && strcmp(argv[1], "send") == 0)
        return sender(argv[2], argv[3]);
    if (argc == 4 && strcmp(argv[1], "connects") == 0)
        return connects(argv[2], argv[3]);
    fprintf(stderr, "usage: ttls-pump server PORT | send PORT BYTES | connects PORT N\n");
    return 2;
}
