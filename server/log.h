/* Logging for the C server.
 *
 * server/ code logs through dfws_log(); where the lines go is decided by a
 * sink. Until a sink is installed (the pre-fork parent, start-up errors) lines
 * go to stderr; asgi/ installs a sink that hands them to Python's `logging`
 * (logger "dfws.server") so users route them like any other log.
 */
#ifndef DFWS_LOG_H
#define DFWS_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum {
    DFWS_LOG_DEBUG = 10, /* same numbers as Python's logging levels */
    DFWS_LOG_INFO = 20,
    DFWS_LOG_WARNING = 30,
    DFWS_LOG_ERROR = 40,
};

/* Receives one formatted line (no trailing newline); msg is valid only for the call. */
typedef void (*dfws_log_sink_fn)(int level, const char *msg, void *ud);

/* Lines below `level` are dropped before they are formatted. */
void dfws_log_set_level(int level);
int dfws_log_enabled(int level);
/* sink NULL restores the stderr sink. */
void dfws_log_set_sink(dfws_log_sink_fn sink, void *ud);
void dfws_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Client bytes made safe to quote in a log line (see log.c): at most `max`
 * input bytes, "..." when cut, NUL-terminated in `out`. Size `out` at
 * DFWS_LOG_QUOTE_SIZE(max) for nothing to be lost. Returns out. */
#define DFWS_LOG_QUOTE_SIZE(max) (4 * (max) + 4)
const char *dfws_log_quote(char *out, size_t outsz, const char *data, size_t len, size_t max);

#define dfws_log_debug(...) dfws_log(DFWS_LOG_DEBUG, __VA_ARGS__)
#define dfws_log_info(...) dfws_log(DFWS_LOG_INFO, __VA_ARGS__)
#define dfws_log_warn(...) dfws_log(DFWS_LOG_WARNING, __VA_ARGS__)
#define dfws_log_error(...) dfws_log(DFWS_LOG_ERROR, __VA_ARGS__)

#endif
