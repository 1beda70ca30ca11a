/* Unit tests for server/proxy.c: the PROXY protocol header (v1 and v2) fed
 * in every prefix length, down to one byte (a parser that sees fewer bytes
 * must ask for more, never guess), the --forwarded-allow-ips list. */
#include "proxy.h"

#include <stdio.h>
#include <string.h>

#include "check.h"

/* Every prefix of `hdr` (+ trailing HTTP bytes) must answer "more" until the
 * header is whole, then its exact length and addresses. */
static void header_case(const char *name, const char *hdr, size_t hlen, const char *want_src,
                        unsigned want_sport, const char *want_dst, unsigned want_dport)
{
    char buf[512], src[64], dst[64];
    uint16_t sp, dp;
    memcpy(buf, hdr, hlen);
    memcpy(buf + hlen, "GET / HTTP/1.1\r\n", 16);
    for (size_t k = 1; k < hlen; k++) {
        long n = dfws_proxy_protocol_parse(buf, k, src, sizeof(src), &sp, dst, sizeof(dst), &dp);
        CHECK_OR_RETURN(, n == 0, "%s: %zu of %zu bytes gave %ld", name, k, hlen, n);
    }
    for (size_t extra = 0; extra <= 16; extra += 16) {
        long n = dfws_proxy_protocol_parse(buf, hlen + extra, src, sizeof(src), &sp, dst,
                                           sizeof(dst), &dp);
        CHECK_OR_RETURN(, n == (long)hlen, "%s: length %ld, want %zu", name, n, hlen);
        CHECK_OR_RETURN(, !strcmp(src, want_src) && sp == want_sport, "%s: src %s:%u", name, src,
                        sp);
        CHECK_OR_RETURN(, !strcmp(dst, want_dst) && dp == want_dport, "%s: dst %s:%u", name, dst,
                        dp);
    }
}

static void invalid_case(const char *name, const char *hdr, size_t hlen)
{
    char src[64], dst[64];
    uint16_t sp, dp;
    long n = dfws_proxy_protocol_parse(hdr, hlen, src, sizeof(src), &sp, dst, sizeof(dst), &dp);
    CHECK_OR_RETURN(, n == -1, "%s: gave %ld", name, n);
}

static void allow_case(const char *list, const char *host, int want)
{
    dfws_proxy_allow_t a;
    char err[128];
    CHECK_OR_RETURN(, dfws_proxy_allow_parse(&a, list, err, sizeof(err)) == 0, "%s: %s", list, err);
    CHECK_OR_RETURN(, dfws_proxy_allowed(&a, host) == want, "%s / %s: want %d", list, host, want);
}

static void allow_invalid(const char *list)
{
    dfws_proxy_allow_t a;
    char err[128] = "";
    CHECK_OR_RETURN(, dfws_proxy_allow_parse(&a, list, err, sizeof(err)) == -1 && err[0],
                    "%s accepted", list);
}

int main(void)
{
    static const char v1[] = "PROXY TCP4 192.0.2.7 10.0.0.1 51234 443\r\n";
    header_case("v1 tcp4", v1, sizeof(v1) - 1, "192.0.2.7", 51234, "10.0.0.1", 443);
    static const char v1b[] = "PROXY TCP6 2001:db8::7 2001:db8::1 1 65535\r\n";
    header_case("v1 tcp6", v1b, sizeof(v1b) - 1, "2001:db8::7", 1, "2001:db8::1", 65535);
    static const char v1u[] = "PROXY UNKNOWN\r\n";
    header_case("v1 unknown", v1u, sizeof(v1u) - 1, "", 0, "", 0);

    static const unsigned char v2[] = {'\r', '\n', '\r', '\n', 0,    '\r', '\n', 'Q', 'U', 'I',
                                       'T',  '\n', 0x21, 0x11, 0,    12,   198,  51,  100, 9,
                                       10,   0,    0,    2,    0xc3, 0x50, 0x01, 0xbb};
    header_case("v2 inet", (const char *)v2, sizeof(v2), "198.51.100.9", 50000, "10.0.0.2", 443);
    unsigned char v2t[sizeof(v2) + 7];
    memcpy(v2t, v2, sizeof(v2));
    v2t[15] = 12 + 7; /* TLVs after the addresses are skipped */
    memset(v2t + sizeof(v2), 0x04, 7);
    header_case("v2 inet + tlv", (const char *)v2t, sizeof(v2t), "198.51.100.9", 50000, "10.0.0.2",
                443);
    unsigned char v2l[16];
    memcpy(v2l, v2, 16);
    v2l[12] = 0x20, v2l[13] = 0, v2l[15] = 0;
    header_case("v2 local", (const char *)v2l, sizeof(v2l), "", 0, "", 0);
    unsigned char v26[16 + 36] = {'\r', '\n', '\r', '\n', 0,    '\r', '\n', 'Q',
                                  'U',  'I',  'T',  '\n', 0x21, 0x21, 0,    36};
    v26[16] = 0x20, v26[17] = 0x01, v26[31] = 7; /* 2001::7 */
    v26[32] = 0x20, v26[33] = 0x01, v26[47] = 1; /* 2001::1 */
    v26[48] = 0x12, v26[49] = 0x34, v26[50] = 0, v26[51] = 80;
    header_case("v2 inet6", (const char *)v26, sizeof(v26), "2001::7", 0x1234, "2001::1", 80);

    invalid_case("plain HTTP", "GET / HTTP/1.1\r\n", 16);
    invalid_case("v1 bad family", "PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n", 32);
    invalid_case("v1 bad address", "PROXY TCP4 1.2.3 1.2.3.4 1 2\r\n", 30);
    invalid_case("v1 port", "PROXY TCP4 1.2.3.4 1.2.3.4 1 65536\r\n", 36);
    invalid_case("v1 extra", "PROXY TCP4 1.2.3.4 1.2.3.4 1 2 x\r\n", 34);
    invalid_case("v1 bare LF", "PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n", 31);
    char longline[120];
    memset(longline, 'A', sizeof(longline));
    memcpy(longline, "PROXY ", 6);
    invalid_case("v1 too long", longline, sizeof(longline));
    unsigned char bad[sizeof(v2)];
    memcpy(bad, v2, sizeof(v2));
    bad[12] = 0x31; /* version 3 */
    invalid_case("v2 version", (const char *)bad, sizeof(bad));
    bad[12] = 0x21, bad[13] = 0x11, bad[15] = 4; /* an INET body too short */
    invalid_case("v2 short body", (const char *)bad, 20);

    allow_case("127.0.0.1", "127.0.0.1", 1);
    allow_case("127.0.0.1", "127.0.0.2", 0);
    allow_case("10.0.0.0/8, 192.168.1.0/24", "10.200.3.4", 1);
    allow_case("10.0.0.0/8, 192.168.1.0/24", "192.168.2.1", 0);
    allow_case("127.0.0.0/30", "::ffff:127.0.0.3", 1);
    allow_case("2001:db8::/32", "2001:db8:1::5", 1);
    allow_case("2001:db8::/32", "2001:db9::5", 0);
    allow_case("*", "203.0.113.9", 1);
    allow_case("10.0.0.1/0", "8.8.8.8", 1);
    allow_case("127.0.0.1", "not-an-address", 0);
    allow_invalid("");
    allow_invalid(" , ");
    allow_invalid("10.0.0.0/33");
    allow_invalid("::/129");
    allow_invalid("example.com");
    allow_invalid("10.0.0.0/x");

    return check_summary();
}
