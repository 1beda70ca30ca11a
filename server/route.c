#include "route.h"

#include <string.h>

int dfws_route_ws_add(dfws_routes_t *t, const dfws_ws_route_t *r)
{
    if (t->nws >= DFWS_WS_ROUTES_MAX)
        return -1;
    t->ws[t->nws++] = *r;
    return 0;
}

void dfws_route_ws_remove(dfws_routes_t *t, const void *ud)
{
    size_t o = 0;
    for (size_t i = 0; i < t->nws; i++)
        if (t->ws[i].ud != ud)
            t->ws[o++] = t->ws[i];
    memset(t->ws + o, 0, (t->nws - o) * sizeof(t->ws[0]));
    t->nws = o;
}

const dfws_ws_route_t *dfws_route_ws_find(const dfws_routes_t *t, const char *target, size_t len)
{
    for (size_t i = 0; i < t->nws; i++)
        if (t->ws[i].matches(t->ws[i].ud, target, len))
            return &t->ws[i];
    return NULL;
}
