#include "log.h"

#include <stdio.h>
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
