/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one error model of MarbleRun-C.
 *
 * Internal functions return `mr_result` and are declared with MR_RESULT so the compiler
 * warns when a caller ignores the outcome. The cause of a failure does not travel in the
 * return value: it is recorded in a thread-local error slot (category, human message,
 * file:line). The message is written so that it can be sent to a client verbatim (JSend
 * `message`, gRPC status message, CLI stderr), so it must never contain secret material.
 *
 * Propagation uses a small macro vocabulary and nothing else:
 *   MR_GUARD(x)              return the failure of x
 *   MR_ENSURE(c, cat, ...)   fail with category cat and a printf-style message unless c
 *   MR_BAIL(cat, ...)        fail unconditionally
 *   MR_ENSURE_REF(p)         fail (internal) when p is NULL
 *   MR_GUARD_OSSL(x, cat, m) OpenSSL call that returns 1 on success; appends the
 *                            OpenSSL error queue's first reason to the message
 *   MR_ENSURE_OSSL(c, cat, m) the same for a condition (an OpenSSL call that returns a
 *                            pointer or a length)
 * The *_OUT variants jump to the function's single `out:` label instead of returning; such
 * functions declare `mr_result res = MR_FAILURE;` at the top and set `res = MR_SUCCESS`
 * just before `out:` (see docs/coding-style.md).
 */
#ifndef MR_COMMON_RESULT_H
#define MR_COMMON_RESULT_H

#include <stdbool.h>
#include <stddef.h>

#define MR_MUST_USE __attribute__((warn_unused_result))
#define MR_API __attribute__((visibility("default")))
#define MR_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))

typedef struct mr_result {
    int ok_; /* 1 = success; never read directly, use mr_ok() */
} mr_result;

#define MR_RESULT MR_MUST_USE mr_result
#define MR_SUCCESS ((mr_result){.ok_ = 1})
#define MR_FAILURE ((mr_result){.ok_ = 0})

static inline bool mr_ok(mr_result r) { return r.ok_ == 1; }

/* Error categories. Each maps mechanically to an HTTP status, a gRPC code and a CLI exit
 * code through mr_errcat_http(), mr_errcat_grpc() and mr_errcat_exit().
 *
 * The classes (MR_ERR_USAGE .. MR_ERR_UNAVAILABLE) decide the mapping. The specific
 * categories below them name a cause a caller must branch on; each refines one class (its
 * low byte) and maps exactly like it, so making an error more specific never changes what a
 * client sees. mr_error.cat always holds the class, mr_error.kind the category as raised:
 * branch with mr_error_is(), which understands both, never on the message text. */
#define MR_ERR_KIND_SHIFT 8
typedef enum mr_errcat {
    MR_ERR_NONE = 0,
    MR_ERR_USAGE,       /* the caller sent something invalid (bad request, bad flag) */
    MR_ERR_AUTH,        /* the caller is not who is allowed to do this */
    MR_ERR_NOT_FOUND,   /* a named object does not exist */
    MR_ERR_STATE,       /* the operation is not allowed in the current state */
    MR_ERR_ATTESTATION, /* a quote, report or collateral did not verify or violates policy */
    MR_ERR_PROTOCOL,    /* a peer spoke the wire protocol wrongly */
    MR_ERR_IO,          /* file system, network, or a store that could not be written */
    MR_ERR_INTERNAL,    /* a bug or resource exhaustion on our side */
    MR_ERR_UNAVAILABLE, /* a backend or peer cannot be reached right now; a retry may work */
    MR_ERR__COUNT,
    /* specific categories (class | n << MR_ERR_KIND_SHIFT) */
    /* optimistic concurrency lost: a commit saw a newer revision of what it read or wrote;
     * redo the whole transaction on the new state */
    MR_ERR_CONFLICT = MR_ERR_STATE | (1 << MR_ERR_KIND_SHIFT),
    /* an input over its size limit (mr_buf's maximum, a store value, a secret, a file) */
    MR_ERR_TOO_LARGE = MR_ERR_USAGE | (2 << MR_ERR_KIND_SHIFT),
    /* stored or sealed data does not verify: corruption, tampering or the wrong key */
    MR_ERR_CORRUPT = MR_ERR_PROTOCOL | (3 << MR_ERR_KIND_SHIFT),
} mr_errcat;

#define MR_ERR_MSG_MAX 512

typedef struct mr_error {
    mr_errcat cat;  /* the class: what the outside world sees */
    mr_errcat kind; /* the category as raised (a specific one or the class itself) */
    const char *file; /* static string from __FILE__ (build-relative path) */
    int line;
    char msg[MR_ERR_MSG_MAX];
} mr_error;

/* Records a failure in the calling thread's slot, replacing what was there. */
void mr_error_set(mr_errcat cat, const char *file, int line, const char *fmt, ...) MR_PRINTF(4, 5);
/* Like mr_error_set, then appends ": <first OpenSSL error reason>" and clears the queue. */
void mr_error_set_ossl(mr_errcat cat, const char *file, int line, const char *fmt, ...)
    MR_PRINTF(4, 5);
/* Puts "<prefix>: " in front of the current message (context on the way up). */
void mr_error_prefix(const char *fmt, ...) MR_PRINTF(1, 2);
/* The calling thread's slot; never NULL. Valid until the next mr_error_* call on the thread. */
const mr_error *mr_error_get(void);
/* Copies the slot into *out (for handing an error to another thread) and clears the slot. */
void mr_error_take(mr_error *out);
/* Restores an error taken on another thread into this thread's slot. */
void mr_error_restore(const mr_error *e);
void mr_error_clear(void);

/* True when the calling thread's error is of category `cat`: for a class, any error of that
 * class (specific ones included); for a specific category, exactly that one. */
bool mr_error_is(mr_errcat cat);

/* The class of a category (itself for a class; MR_ERR_INTERNAL for unknown values). */
mr_errcat mr_errcat_class(mr_errcat cat);
const char *mr_errcat_name(mr_errcat cat);
int mr_errcat_http(mr_errcat cat);
int mr_errcat_grpc(mr_errcat cat);
int mr_errcat_exit(mr_errcat cat);

#define MR_GUARD(x)                                                                           \
    do {                                                                                      \
        if (!mr_ok(x))                                                                        \
            return MR_FAILURE;                                                                \
    } while (0)

#define MR_ENSURE(cond, cat, ...)                                                             \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            mr_error_set((cat), __FILE__, __LINE__, __VA_ARGS__);                             \
            return MR_FAILURE;                                                                \
        }                                                                                     \
    } while (0)

#define MR_BAIL(cat, ...)                                                                     \
    do {                                                                                      \
        mr_error_set((cat), __FILE__, __LINE__, __VA_ARGS__);                                 \
        return MR_FAILURE;                                                                    \
    } while (0)

#define MR_ENSURE_REF(p) MR_ENSURE((p) != NULL, MR_ERR_INTERNAL, "internal error: %s is NULL", #p)

#define MR_GUARD_OSSL(x, cat, ...)                                                            \
    do {                                                                                      \
        if ((x) != 1) {                                                                       \
            mr_error_set_ossl((cat), __FILE__, __LINE__, __VA_ARGS__);                        \
            return MR_FAILURE;                                                                \
        }                                                                                     \
    } while (0)

#define MR_ENSURE_OSSL(cond, cat, ...)                                                        \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            mr_error_set_ossl((cat), __FILE__, __LINE__, __VA_ARGS__);                        \
            return MR_FAILURE;                                                                \
        }                                                                                     \
    } while (0)

/* Variants for functions with a single `out:` cleanup label. */
#define MR_GUARD_OUT(x)                                                                       \
    do {                                                                                      \
        if (!mr_ok(x))                                                                        \
            goto out;                                                                         \
    } while (0)

#define MR_ENSURE_OUT(cond, cat, ...)                                                         \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            mr_error_set((cat), __FILE__, __LINE__, __VA_ARGS__);                             \
            goto out;                                                                         \
        }                                                                                     \
    } while (0)

#define MR_BAIL_OUT(cat, ...)                                                                 \
    do {                                                                                      \
        mr_error_set((cat), __FILE__, __LINE__, __VA_ARGS__);                                 \
        goto out;                                                                             \
    } while (0)

#define MR_GUARD_OSSL_OUT(x, cat, ...)                                                        \
    do {                                                                                      \
        if ((x) != 1) {                                                                       \
            mr_error_set_ossl((cat), __FILE__, __LINE__, __VA_ARGS__);                        \
            goto out;                                                                         \
        }                                                                                     \
    } while (0)

#define MR_ENSURE_OSSL_OUT(cond, cat, ...)                                                    \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            mr_error_set_ossl((cat), __FILE__, __LINE__, __VA_ARGS__);                        \
            goto out;                                                                         \
        }                                                                                     \
    } while (0)

/* Allocation-failure shorthand: p must be non-NULL. */
#define MR_ENSURE_ALLOC(p) MR_ENSURE((p) != NULL, MR_ERR_INTERNAL, "out of memory")
#define MR_ENSURE_ALLOC_OUT(p) MR_ENSURE_OUT((p) != NULL, MR_ERR_INTERNAL, "out of memory")

/* Discards a result on purpose. Only where a failure is harmless and the reason is obvious
 * (e.g. a log line that is cut short when memory runs out). A plain (void) cast does not
 * silence warn_unused_result in GCC, which is the point. */
#define MR_IGNORE(x) ((void)mr_ok(x))

#define MR_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
