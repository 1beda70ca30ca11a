#include "log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int log_level = DFWS_LOG_INFO;
static dfws_log_sink_fn log_sink;
static void *log_sink_ud;

void dfws_log_set_level(int level)
{
    log_level = level;
}

int dfws_log_enabled(int level)
{
    return level >= log_level;
}

void dfws_log_set_sink(dfws_log_sink_fn sink, void *ud)
{
    log_sink = sink;
    log_sink_ud = ud;
}

static const char *level_name(int level)
{
    if (level >= DFWS_LOG_ERROR)
        return "ERROR";
    if (level >= DFWS_LOG_WARNING)
        return "WARNING";
    if (level >= DFWS_LOG_INFO)
        return "INFO";
    return "DEBUG";
}

void dfws_log(int level, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;

    if (level < log_level)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (log_sink) {
        log_sink(level, msg, log_sink_ud);
        return;
    }
    /* Same layout as daphne's default --log-fmt, so the pre-fork parent's
     * lines look like the workers'. */
    char ts[32];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
    fprintf(stderr, "%s %-8s [%d] %s\n", ts, level_name(level), (int)getpid(), msg);
}

/* Client bytes in a log line: a newline would let a client write a line of
 * its own, a terminal escape would act on whoever reads the log. Everything
 * that is not printable UTF-8 becomes \xNN (C0, DEL and bytes that are not
 * UTF-8) or \uNNNN (C1 controls, U+2028/U+2029, which some viewers break
 * lines on); cuts happen only at character boundaries. */
static size_t utf8_seq_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    size_t need;
    unsigned cp;
    if (c < 0xc2 || c > 0xf4)
        return 0;
    need = c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
    if (n < need)
        return 0;
    cp = c & (need == 2 ? 0x1f : need == 3 ? 0x0f : 0x07);
    for (size_t i = 1; i < need; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((need == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (need == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return need;
}

const char *dfws_log_quote(char *out, size_t outsz, const char *data, size_t len, size_t max)
{
    const unsigned char *p = (const unsigned char *)data;
    size_t o = 0, i = 0;
    if (!outsz)
        return out;
    while (i < len) {
        char esc[8];
        size_t elen, seq = 1;
        unsigned c = p[i];
        if (i >= max)
            break;
        if (c >= 0x20 && c < 0x7f) {
            esc[0] = (char)c;
            elen = 1;
        } else if (c == '\n' || c == '\r' || c == '\t') {
            esc[0] = '\\';
            esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
            elen = 2;
        } else if (c < 0x80 || !(seq = utf8_seq_len(p + i, len - i))) {
            elen = (size_t)snprintf(esc, sizeof(esc), "\\x%02x", c);
            seq = 1;
        } else if ((seq == 2 && c == 0xc2 && p[i + 1] < 0xa0) ||
                   (seq == 3 && c == 0xe2 && p[i + 1] == 0x80 && (p[i + 2] | 1) == 0xa9)) {
            unsigned cp = seq == 2 ? p[i + 1] : (p[i + 2] == 0xa8 ? 0x2028u : 0x2029u);
            elen = (size_t)snprintf(esc, sizeof(esc), "\\u%04x", cp);
        } else {
            memcpy(esc, p + i, seq);
            elen = seq;
        }
        if (o + elen + 1 > outsz)
            break;
        memcpy(out + o, esc, elen);
        o += elen;
        i += seq;
    }
    if (i < len && o + 4 <= outsz) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return out;
}
