/* Trusting a reverse proxy: which peers may name the client
 * (--forwarded-allow-ips), and what a trusted peer's request says about the
 * client (RFC 7239 `Forwarded`, else `X-Forwarded-For` / `-Port` / `-Proto`,
 * or the header names given with --proxy-headers-host/-port).
 *
 * The result is kept on the connection (dfws_conn_t.fwd_*), updated at the
 * end of every request's header section, and read by the scope builder
 * (asgi/) and the access log: one parse, one rule set.
 */
#ifndef DFWS_PROXY_H
#define DFWS_PROXY_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct dfws_conn_s;
struct dfws_req_s;

#define DFWS_PROXY_MAX_NETS 32

typedef struct dfws_proxy_net_s {
    uint8_t family; /* 4 or 6 */
    uint8_t bits;   /* prefix length */
    uint8_t addr[16];
} dfws_proxy_net_t;

typedef struct dfws_proxy_allow_s {
    int any; /* "*": every peer */
    size_t n;
    dfws_proxy_net_t nets[DFWS_PROXY_MAX_NETS];
} dfws_proxy_allow_t;

/* What the command line says about proxies (the server fills it at start:
 * this module reads no command line). */
typedef struct dfws_proxy_conf_s {
    int headers;              /* --proxy-headers */
    const char *host_header;  /* --proxy-headers-host (lower case) */
    const char *port_header;  /* --proxy-headers-port */
    dfws_proxy_allow_t allow; /* --forwarded-allow-ips */
} dfws_proxy_conf_t;

enum { DFWS_FWD_SCHEME_NONE, DFWS_FWD_SCHEME_PLAIN, DFWS_FWD_SCHEME_SECURE };

/* Parses a comma-separated list of addresses and CIDR networks (IPv4 and
 * IPv6), or "*". 0, or -1 with the reason in err. */
int dfws_proxy_allow_parse(dfws_proxy_allow_t *a, const char *list, char *err, size_t errlen);
/* Whether the peer with textual address `host` is trusted. */
int dfws_proxy_allowed(const dfws_proxy_allow_t *a, const char *host);
/* At the end of a header section: sets c->fwd_* from request r when
 * --proxy-headers is on and c's peer is trusted (UNIX-socket peers always
 * are: the socket file's permissions decide who connects), else clears
 * them. */
void dfws_proxy_resolve(struct dfws_conn_s *c, const struct dfws_req_s *r,
                        const dfws_proxy_conf_t *conf);

/* --proxy-protocol: the PROXY protocol header (v1 text or v2 binary) a load
 * balancer (HAProxy, AWS NLB) sends before the first byte of HTTP. Parses
 * it from the start of `in`, consumes it and takes its source and
 * destination as the connection's client and server addresses (a v2 LOCAL
 * command, or v1 UNKNOWN, keeps the socket's). Returns 1 done, 0 when more
 * bytes are needed, -1 when the bytes are not a valid header or the peer is
 * not in --forwarded-allow-ips (the caller closes the connection; the
 * reason is logged here). */
int dfws_proxy_protocol_take(struct dfws_conn_s *c, dfws_buf_t *in,
                             const dfws_proxy_allow_t *allow);
/* The same parse on raw bytes, for tests and fuzzing: 0 need more, -1
 * invalid, else the header's length; addresses go to the out parameters
 * (src/dst empty for LOCAL/UNKNOWN). */
long dfws_proxy_protocol_parse(const char *data, size_t len, char *src, size_t srclen,
                               uint16_t *sport, char *dst, size_t dstlen, uint16_t *dport);

#endif
