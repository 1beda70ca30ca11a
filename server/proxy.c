/* Reverse-proxy headers and the peers allowed to send them (proxy.h). */
#include "proxy.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conn.h"
#include "log.h"
#include "request.h"

/* ---- --forwarded-allow-ips ------------------------------------------------- */

static int parse_net(dfws_proxy_net_t *net, const char *s, size_t n)
{
    char tmp[64];
    if (!n || n >= sizeof(tmp))
        return -1;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    char *slash = strchr(tmp, '/');
    long bits = -1;
    if (slash) {
        char *end;
        *slash = '\0';
        bits = strtol(slash + 1, &end, 10);
        if (end == slash + 1 || *end)
            return -1;
    }
    if (inet_pton(AF_INET, tmp, net->addr) == 1) {
        net->family = 4;
        if (bits > 32)
            return -1;
        net->bits = (uint8_t)(bits < 0 ? 32 : bits);
    } else if (inet_pton(AF_INET6, tmp, net->addr) == 1) {
        net->family = 6;
        if (bits > 128)
            return -1;
        net->bits = (uint8_t)(bits < 0 ? 128 : bits);
    } else {
        return -1;
    }
    return 0;
}

int dfws_proxy_allow_parse(dfws_proxy_allow_t *a, const char *list, char *err, size_t errlen)
{
    memset(a, 0, sizeof(*a));
    const char *p = list;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        while (n && (*p == ' ' || *p == '\t'))
            p++, n--;
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n == 1 && *p == '*') {
            a->any = 1;
        } else if (n) {
            if (a->n == DFWS_PROXY_MAX_NETS) {
                snprintf(err, errlen, "at most %d addresses or networks", DFWS_PROXY_MAX_NETS);
                return -1;
            }
            if (parse_net(&a->nets[a->n], p, n)) {
                snprintf(err, errlen, "not an IP address or network: %.*s", (int)(n > 60 ? 60 : n),
                         p);
                return -1;
            }
            a->n++;
        }
        p += n;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == ',')
            p++;
    }
    if (!a->any && !a->n) {
        snprintf(err, errlen, "an empty list (use * to trust every peer)");
        return -1;
    }
    return 0;
}

static int prefix_match(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned full = bits / 8, rest = bits % 8;
    if (memcmp(a, b, full))
        return 0;
    if (!rest)
        return 1;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
}

int dfws_proxy_allowed(const dfws_proxy_allow_t *a, const char *host)
{
    if (a->any)
        return 1;
    uint8_t addr[16], v4[4];
    int family = 0;
    if (inet_pton(AF_INET, host, addr) == 1) {
        family = 4;
    } else if (inet_pton(AF_INET6, host, addr) == 1) {
        family = 6;
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (!memcmp(addr, mapped, 12)) { /* ::ffff:a.b.c.d is an IPv4 peer */
            memcpy(v4, addr + 12, 4);
            memcpy(addr, v4, 4);
            family = 4;
        }
    } else {
        return 0;
    }
    for (size_t i = 0; i < a->n; i++)
        if (a->nets[i].family == family && prefix_match(addr, a->nets[i].addr, a->nets[i].bits))
            return 1;
    return 0;
}

/* ---- what the request says ---------------------------------------------------- */

static const dfws_hdr_t *header(const dfws_req_t *r, const char *name)
{
    return dfws_req_header(r, name, strlen(name));
}

static void trim(const char **v, size_t *n)
{
    while (*n && (**v == ' ' || **v == '\t'))
        (*v)++, (*n)--;
    while (*n && ((*v)[*n - 1] == ' ' || (*v)[*n - 1] == '\t'))
        (*n)--;
}

static void set_host(dfws_conn_t *c, const char *v, size_t n)
{
    if (n >= sizeof(c->fwd_host))
        n = sizeof(c->fwd_host) - 1;
    memcpy(c->fwd_host, v, n);
    c->fwd_host[n] = '\0';
    c->fwd_port = 0;
    c->fwd_client = 1;
}

static uint16_t parse_port(const char *v, size_t n, int *ok)
{
    unsigned long p = 0;
    *ok = n > 0 && n <= 5;
    for (size_t i = 0; *ok && i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            *ok = 0;
        else
            p = p * 10 + (unsigned long)(v[i] - '0');
    }
    if (p > 65535)
        *ok = 0;
    return *ok ? (uint16_t)p : 0;
}

static void set_scheme(dfws_conn_t *c, const char *v, size_t n)
{
    if ((n == 5 && !strncasecmp(v, "https", 5)) || (n == 3 && !strncasecmp(v, "wss", 3)))
        c->fwd_scheme = DFWS_FWD_SCHEME_SECURE;
    else if ((n == 4 && !strncasecmp(v, "http", 4)) || (n == 2 && !strncasecmp(v, "ws", 2)))
        c->fwd_scheme = DFWS_FWD_SCHEME_PLAIN;
}

/* RFC 7239: the first element of the first Forwarded header, its `for` and
 * `proto` parameters ("for=192.0.2.60;proto=https, for=...";
 * for="[2001:db8::17]:4711"). 1 when it named a client. */
static int forwarded(dfws_conn_t *c, const dfws_req_t *r)
{
    const dfws_hdr_t *h = header(r, "forwarded");
    if (!h)
        return 0;
    const char *v = r->head.base + h->value_off, *end = v + h->value_len;
    int named = 0;
    while (v < end && *v != ',') {
        const char *eq = memchr(v, '=', (size_t)(end - v));
        if (!eq)
            break;
        const char *name = v;
        size_t nlen = (size_t)(eq - v);
        trim(&name, &nlen);
        const char *val = eq + 1;
        size_t vlen;
        if (val < end && *val == '"') { /* quoted-string (no escapes in addresses) */
            const char *q = memchr(val + 1, '"', (size_t)(end - val - 1));
            if (!q)
                break;
            vlen = (size_t)(q - val - 1);
            val++;
            v = q + 1;
        } else {
            const char *stop = val;
            while (stop < end && *stop != ';' && *stop != ',')
                stop++;
            vlen = (size_t)(stop - val);
            v = stop;
            trim(&val, &vlen);
        }
        if (nlen == 3 && !strncasecmp(name, "for", 3) && vlen) {
            const char *host = val;
            size_t hlen = vlen;
            const char *port = NULL;
            size_t plen = 0;
            if (*val == '[') { /* [v6]:port */
                const char *rb = memchr(val, ']', vlen);
                if (rb) {
                    host = val + 1;
                    hlen = (size_t)(rb - val - 1);
                    if (rb + 1 < val + vlen && rb[1] == ':')
                        port = rb + 2, plen = (size_t)(val + vlen - rb - 2);
                }
            } else {
                const char *colon = memchr(val, ':', vlen);
                if (colon)
                    hlen = (size_t)(colon - val), port = colon + 1,
                    plen = (size_t)(val + vlen - colon - 1);
            }
            set_host(c, host, hlen);
            int ok;
            uint16_t p = port ? parse_port(port, plen, &ok) : 0;
            if (port && ok)
                c->fwd_port = p;
            named = 1;
        } else if (nlen == 5 && !strncasecmp(name, "proto", 5)) {
            set_scheme(c, val, vlen);
        }
        while (v < end && *v == ' ')
            v++;
        if (v < end && *v == ';')
            v++;
    }
    return named;
}

/* X-Forwarded-For's left-most address (the original client), X-Forwarded-Port,
 * X-Forwarded-Proto. */
static void x_forwarded(dfws_conn_t *c, const dfws_req_t *r, const dfws_proxy_conf_t *conf)
{
    const dfws_hdr_t *h = header(r, conf->host_header);
    if (h && h->value_len) {
        const char *v = r->head.base + h->value_off;
        size_t n = h->value_len;
        const char *comma = memchr(v, ',', n);
        if (comma)
            n = (size_t)(comma - v);
        trim(&v, &n);
        if (n) {
            set_host(c, v, n);
            h = header(r, conf->port_header);
            int ok;
            uint16_t p = h ? parse_port(r->head.base + h->value_off, h->value_len, &ok) : 0;
            if (h && ok)
                c->fwd_port = p;
        }
    }
    h = header(r, "x-forwarded-proto");
    if (h)
        set_scheme(c, r->head.base + h->value_off, h->value_len);
}

void dfws_proxy_resolve(dfws_conn_t *c, const dfws_req_t *r, const dfws_proxy_conf_t *conf)
{
    c->fwd_client = 0;
    c->fwd_scheme = DFWS_FWD_SCHEME_NONE;
    if (!conf->headers)
        return;
    if (!c->tr.is_unix && !dfws_proxy_allowed(&conf->allow, c->client_host))
        return;
    if (!forwarded(c, r))
        x_forwarded(c, r, conf);
}

/* ---- the PROXY protocol ----------------------------------------------------------- */

#define V1_MAX 107 /* "PROXY TCP6 <39> <39> 65535 65535\r\n" */
static const char v2_sig[12] = {'\r', '\n', '\r', '\n', '\0', '\r', '\n', 'Q', 'U', 'I', 'T', '\n'};

static long parse_v1(const char *data, size_t len, char *src, size_t srclen, uint16_t *sport,
                     char *dst, size_t dstlen, uint16_t *dport)
{
    const char *nl = memchr(data, '\n', len < V1_MAX ? len : V1_MAX);
    if (!nl)
        return len >= V1_MAX ? -1 : 0;
    if (nl == data || nl[-1] != '\r')
        return -1;
    char line[V1_MAX + 1];
    size_t n = (size_t)(nl - 1 - data);
    memcpy(line, data, n);
    line[n] = '\0';
    long used = (long)(nl - data) + 1;
    if (!strncmp(line, "PROXY UNKNOWN", 13) && (line[13] == '\0' || line[13] == ' '))
        return used;
    char proto[8], a[48], b[48];
    unsigned sp, dp;
    char extra;
    if (sscanf(line, "PROXY %7s %47s %47s %u %u%c", proto, a, b, &sp, &dp, &extra) != 5 ||
        sp > 65535 || dp > 65535)
        return -1;
    unsigned char bin[16];
    int family = !strcmp(proto, "TCP4") ? AF_INET : !strcmp(proto, "TCP6") ? AF_INET6 : 0;
    if (!family || inet_pton(family, a, bin) != 1 || inet_pton(family, b, bin) != 1)
        return -1;
    snprintf(src, srclen, "%s", a);
    snprintf(dst, dstlen, "%s", b);
    *sport = (uint16_t)sp;
    *dport = (uint16_t)dp;
    return used;
}

static long parse_v2(const unsigned char *d, size_t len, char *src, size_t srclen, uint16_t *sport,
                     char *dst, size_t dstlen, uint16_t *dport)
{
    if (len < 16)
        return 0;
    size_t body = (size_t)d[14] << 8 | d[15];
    if (len < 16 + body)
        return 0;
    int version = d[12] >> 4, command = d[12] & 15, family = d[13] >> 4;
    if (version != 2 || command > 1)
        return -1;
    long used = (long)(16 + body);
    if (command == 0) /* LOCAL: the balancer's own health check */
        return used;
    if (family == 1 && body >= 12) { /* AF_INET */
        inet_ntop(AF_INET, d + 16, src, (socklen_t)srclen);
        inet_ntop(AF_INET, d + 20, dst, (socklen_t)dstlen);
        *sport = (uint16_t)(d[24] << 8 | d[25]);
        *dport = (uint16_t)(d[26] << 8 | d[27]);
    } else if (family == 2 && body >= 36) { /* AF_INET6 */
        inet_ntop(AF_INET6, d + 16, src, (socklen_t)srclen);
        inet_ntop(AF_INET6, d + 32, dst, (socklen_t)dstlen);
        *sport = (uint16_t)(d[48] << 8 | d[49]);
        *dport = (uint16_t)(d[50] << 8 | d[51]);
    } else if (family == 0 || family == 3) {
        /* UNSPEC, or AF_UNIX: no address worth taking */
    } else {
        return -1;
    }
    return used;
}

long dfws_proxy_protocol_parse(const char *data, size_t len, char *src, size_t srclen,
                               uint16_t *sport, char *dst, size_t dstlen, uint16_t *dport)
{
    src[0] = dst[0] = '\0';
    *sport = *dport = 0;
    size_t k = len < 12 ? len : 12;
    if (!memcmp(data, v2_sig, k))
        return k < 12 ? 0
                      : parse_v2((const unsigned char *)data, len, src, srclen, sport, dst, dstlen,
                                 dport);
    k = len < 6 ? len : 6;
    if (!memcmp(data, "PROXY ", k))
        return k < 6 ? 0 : parse_v1(data, len, src, srclen, sport, dst, dstlen, dport);
    return -1;
}

int dfws_proxy_protocol_take(dfws_conn_t *c, dfws_buf_t *in, const dfws_proxy_allow_t *allow)
{
    char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN];
    uint16_t sport, dport;
    if (!c->tr.is_unix && !dfws_proxy_allowed(allow, c->client_host)) {
        dfws_log_warn("%s:%u: PROXY protocol header from a peer not in --forwarded-allow-ips; "
                      "closing",
                      c->client_host, c->client_port);
        return -1;
    }
    long n = dfws_proxy_protocol_parse(in->base, in->len, src, sizeof(src), &sport, dst,
                                       sizeof(dst), &dport);
    if (n == 0)
        return 0;
    if (n < 0) {
        dfws_log_warn("%s:%u: no valid PROXY protocol header (--proxy-protocol); closing",
                      c->client_host, c->client_port);
        return -1;
    }
    if (src[0]) {
        snprintf(c->client_host, sizeof(c->client_host), "%s", src);
        c->client_port = sport;
        snprintf(c->server_host, sizeof(c->server_host), "%s", dst);
        c->server_port = dport;
    }
    dfws_buf_consume(in, (size_t)n);
    return 1;
}
