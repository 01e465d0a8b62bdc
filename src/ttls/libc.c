/* SPDX-License-Identifier: Apache-2.0 */
/* The libc functions behind the TTLS hooks, resolved with dlsym(RTLD_NEXT): from
 * libmarble-ttls.so (or a test executable that contains the hooks) the next definition is
 * libc's, or a sanitizer's interceptor in front of it. */
#include <dlfcn.h>
#include <pthread.h>

#include "ttls/ttls.h"

mr_ttls_libc mr_ttls_real;

static pthread_once_t g_once = PTHREAD_ONCE_INIT;

#define RESOLVE(var, name) (var) = (__typeof__(var))dlsym(RTLD_NEXT, name)

static void resolve(void)
{
    RESOLVE(mr_ttls_real.connect, "connect");
    RESOLVE(mr_ttls_real.accept, "accept");
    RESOLVE(mr_ttls_real.accept4, "accept4");
    RESOLVE(mr_ttls_real.close, "close");
    RESOLVE(mr_ttls_real.dup, "dup");
    RESOLVE(mr_ttls_real.dup2, "dup2");
    RESOLVE(mr_ttls_real.dup3, "dup3");
    RESOLVE(mr_ttls_real.fcntl, "fcntl");
    RESOLVE(mr_ttls_real.getsockname, "getsockname");
    RESOLVE(mr_ttls_real.getpeername, "getpeername");
    RESOLVE(mr_ttls_real.getsockopt, "getsockopt");
    RESOLVE(mr_ttls_real.setsockopt, "setsockopt");
    RESOLVE(mr_ttls_real.epoll_ctl, "epoll_ctl");
}

void mr_ttls_libc_resolve(void) { (void)pthread_once(&g_once, resolve); }
