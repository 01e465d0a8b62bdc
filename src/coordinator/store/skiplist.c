/* SPDX-License-Identifier: Apache-2.0 */
/* The ordered map of the store engine: a skip list of keys (see internal.h). */
#include <string.h>

#include "common/alloc.h"
#include "coordinator/store/internal.h"

int key_cmp(const char *a, size_t al, const char *b, size_t bl)
{
    size_t n = al < bl ? al : bl;
    int c = n == 0 ? 0 : memcmp(a, b, n);
    if (c != 0)
        return c;
    return al < bl ? -1 : (al > bl ? 1 : 0);
}

static node *node_alloc(int level, const char *key, size_t klen)
{
    node *n = mr_calloc(1, sizeof(node) + (size_t)level * sizeof(node *));
    if (n == NULL)
        return NULL;
    n->key = mr_alloc(klen + 1);
    if (n->key == NULL) {
        mr_free(n);
        return NULL;
    }
    if (klen > 0)
        memcpy(n->key, key, klen);
    n->key[klen] = '\0';
    n->klen = klen;
    n->level = level;
    return n;
}

void sl_node_free(node *n)
{
    if (n == NULL)
        return;
    mr_free_wipe(n->key, n->klen + 1); /* key names are not key material, but tidy */
    mr_free(n);
}

MR_RESULT sl_init(skiplist *l, uint64_t seed)
{
    memset(l, 0, sizeof(*l));
    l->head = node_alloc(SL_MAX_LEVEL, "", 0);
    MR_ENSURE_ALLOC(l->head);
    l->level = 1;
    l->rng = seed | 1;
    return MR_SUCCESS;
}

/* xorshift64*: level choice only; no security relevance. */
static int random_level(skiplist *l)
{
    int lvl = 1;
    while (lvl < SL_MAX_LEVEL) {
        l->rng ^= l->rng >> 12;
        l->rng ^= l->rng << 25;
        l->rng ^= l->rng >> 27;
        uint64_t r = l->rng * 2685821657736338717ull;
        if ((r >> 62) != 0) /* continue with probability 1/4 */
            break;
        lvl++;
    }
    return lvl;
}

/* Fills upd[i] with the last node at level i whose key is < key. */
static node *find_path(const skiplist *l, const char *key, size_t klen, node **upd)
{
    node *x = l->head;
    for (int i = l->level - 1; i >= 0; i--) {
        while (x->next[i] != NULL && key_cmp(x->next[i]->key, x->next[i]->klen, key, klen) < 0)
            x = x->next[i];
        if (upd != NULL)
            upd[i] = x;
    }
    return x->next[0];
}

node *sl_lower_bound(const skiplist *l, const char *key, size_t klen)
{
    return find_path(l, key, klen, NULL);
}

node *sl_find(const skiplist *l, const char *key, size_t klen)
{
    node *n = find_path(l, key, klen, NULL);
    if (n != NULL && key_cmp(n->key, n->klen, key, klen) == 0)
        return n;
    return NULL;
}

node *sl_node_new(skiplist *l, const char *key, size_t klen)
{
    return node_alloc(random_level(l), key, klen);
}

void sl_link(skiplist *l, node *n)
{
    node *upd[SL_MAX_LEVEL];
    for (int i = 0; i < SL_MAX_LEVEL; i++)
        upd[i] = l->head;
    find_path(l, n->key, n->klen, upd);
    if (n->level > l->level) {
        for (int i = l->level; i < n->level; i++)
            upd[i] = l->head;
        l->level = n->level;
    }
    for (int i = 0; i < n->level; i++) {
        n->next[i] = upd[i]->next[i];
        upd[i]->next[i] = n;
    }
    l->count++;
}

void sl_unlink(skiplist *l, node *n)
{
    node *upd[SL_MAX_LEVEL];
    for (int i = 0; i < SL_MAX_LEVEL; i++)
        upd[i] = l->head;
    find_path(l, n->key, n->klen, upd);
    for (int i = 0; i < l->level; i++) {
        if (upd[i]->next[i] == n)
            upd[i]->next[i] = n->next[i];
    }
    while (l->level > 1 && l->head->next[l->level - 1] == NULL)
        l->level--;
    l->count--;
}

