/* SPDX-License-Identifier: Apache-2.0 */
/* A fixed pool of worker threads fed from one FIFO queue. */
#include <pthread.h>
#include <string.h>

#include "common/alloc.h"
#include "coordinator/server/internal.h"

struct mr_srv_pool {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    mr_srv_job *head;
    mr_srv_job *tail;
    bool quit;
    pthread_t *threads;
    unsigned n;
};

static void *worker_main(void *arg)
{
    mr_srv_pool *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        while (p->head == NULL && !p->quit)
            pthread_cond_wait(&p->cond, &p->lock);
        mr_srv_job *job = p->head;
        if (job == NULL) {
            pthread_mutex_unlock(&p->lock);
            return NULL;
        }
        p->head = job->next;
        if (p->head == NULL)
            p->tail = NULL;
        pthread_mutex_unlock(&p->lock);
        /* the job lives in its request, which fn may complete (and so free) */
        void (*fn)(void *) = job->fn;
        void *fn_arg = job->arg;
        fn(fn_arg);
        mr_error_clear();
    }
}

MR_RESULT mr_srv_pool_new(unsigned n, mr_srv_pool **out)
{
    mr_result res = MR_FAILURE;
    mr_srv_pool *p = mr_calloc(1, sizeof(*p));
    MR_ENSURE_ALLOC(p);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    p->threads = mr_calloc(n, sizeof(pthread_t));
    MR_ENSURE_ALLOC_OUT(p->threads);
    for (unsigned i = 0; i < n; i++) {
        MR_ENSURE_OUT(pthread_create(&p->threads[i], NULL, worker_main, p) == 0,
                      MR_ERR_INTERNAL, "cannot start worker thread");
        p->n++;
    }
    *out = p;
    p = NULL;
    res = MR_SUCCESS;
out:
    mr_srv_pool_free(p);
    return res;
}

void mr_srv_pool_push(mr_srv_pool *p, mr_srv_job *job)
{
    job->next = NULL;
    pthread_mutex_lock(&p->lock);
    if (p->tail != NULL)
        p->tail->next = job;
    else
        p->head = job;
    p->tail = job;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

void mr_srv_pool_free(mr_srv_pool *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    p->quit = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    for (unsigned i = 0; i < p->n; i++)
        pthread_join(p->threads[i], NULL);
    mr_free(p->threads);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
    mr_free(p);
}
