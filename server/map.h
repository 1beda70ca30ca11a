/* A string-keyed hash map with chained buckets that double as it grows:
 * the channel layer's listeners and groups, the native endpoint's groups.
 * Keys are copied and owned by the map; values are the caller's. */
#ifndef DFWS_MAP_H
#define DFWS_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct dfws_map_entry_s {
    struct dfws_map_entry_s *next;
    char *key;
    size_t klen;
    uint32_t hash;
    void *value;
} dfws_map_entry_t;

typedef struct dfws_map_s {
    dfws_map_entry_t **buckets;
    size_t nbuckets;
    size_t count;
} dfws_map_t;

void dfws_map_init(dfws_map_t *m);
/* Frees entries and keys; values are the caller's (free them first with
 * dfws_map_foreach). */
void dfws_map_free(dfws_map_t *m);
void *dfws_map_get(const dfws_map_t *m, const char *key, size_t klen);
/* Insert or replace; returns 0 or -ENOMEM (DFWS_LAYER_ENOMEM's value). */
int dfws_map_put(dfws_map_t *m, const char *key, size_t klen, void *value);
/* Remove; returns the value that was stored, or NULL. */
void *dfws_map_del(dfws_map_t *m, const char *key, size_t klen);
/* Iteration safe against deleting the current entry from inside fn. */
void dfws_map_foreach(dfws_map_t *m,
                      void (*fn)(void *ctx, const char *key, size_t klen, void *value), void *ctx);

#endif
