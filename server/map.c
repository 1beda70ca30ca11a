/* A string-keyed hash map (map.h). */
#include "map.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint32_t fnv1a(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    size_t i;
    for (i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

void dfws_map_init(dfws_map_t *m)
{
    memset(m, 0, sizeof(*m));
}

void dfws_map_free(dfws_map_t *m)
{
    size_t i;
    for (i = 0; i < m->nbuckets; i++) {
        dfws_map_entry_t *e = m->buckets[i], *next;
        for (; e != NULL; e = next) {
            next = e->next;
            free(e->key);
            free(e);
        }
    }
    free(m->buckets);
    memset(m, 0, sizeof(*m));
}

static dfws_map_entry_t **map_slot(const dfws_map_t *m, const char *key, size_t klen, uint32_t h)
{
    dfws_map_entry_t **pp;
    if (m->nbuckets == 0)
        return NULL;
    for (pp = &m->buckets[h & (m->nbuckets - 1)]; *pp != NULL; pp = &(*pp)->next)
        if ((*pp)->hash == h && (*pp)->klen == klen && memcmp((*pp)->key, key, klen) == 0)
            return pp;
    return NULL;
}

void *dfws_map_get(const dfws_map_t *m, const char *key, size_t klen)
{
    dfws_map_entry_t **pp = map_slot(m, key, klen, fnv1a(key, klen));
    return pp ? (*pp)->value : NULL;
}

static int map_grow(dfws_map_t *m)
{
    size_t n = m->nbuckets ? m->nbuckets * 2 : 16, i;
    dfws_map_entry_t **b = calloc(n, sizeof(*b));
    if (b == NULL)
        return -ENOMEM;
    for (i = 0; i < m->nbuckets; i++) {
        dfws_map_entry_t *e = m->buckets[i], *next;
        for (; e != NULL; e = next) {
            next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = n;
    return 0;
}

int dfws_map_put(dfws_map_t *m, const char *key, size_t klen, void *value)
{
    uint32_t h = fnv1a(key, klen);
    dfws_map_entry_t **pp = map_slot(m, key, klen, h), *e;

    if (pp != NULL) {
        (*pp)->value = value;
        return 0;
    }
    if (m->count + 1 > m->nbuckets * 3 / 4 && map_grow(m) != 0)
        return -ENOMEM;
    e = malloc(sizeof(*e));
    if (e == NULL)
        return -ENOMEM;
    e->key = malloc(klen + 1);
    if (e->key == NULL) {
        free(e);
        return -ENOMEM;
    }
    memcpy(e->key, key, klen);
    e->key[klen] = '\0';
    e->klen = klen;
    e->hash = h;
    e->value = value;
    e->next = m->buckets[h & (m->nbuckets - 1)];
    m->buckets[h & (m->nbuckets - 1)] = e;
    m->count++;
    return 0;
}

void *dfws_map_del(dfws_map_t *m, const char *key, size_t klen)
{
    dfws_map_entry_t **pp = map_slot(m, key, klen, fnv1a(key, klen)), *e;
    void *v;
    if (pp == NULL)
        return NULL;
    e = *pp;
    *pp = e->next;
    v = e->value;
    free(e->key);
    free(e);
    m->count--;
    return v;
}

void dfws_map_foreach(dfws_map_t *m,
                      void (*fn)(void *ctx, const char *key, size_t klen, void *value), void *ctx)
{
    size_t i;
    for (i = 0; i < m->nbuckets; i++) {
        dfws_map_entry_t *e = m->buckets[i], *next;
        for (; e != NULL; e = next) {
            next = e->next;
            fn(ctx, e->key, e->klen, e->value);
        }
    }
}
