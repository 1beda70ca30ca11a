/* dfws-asgi: parse the command line, open the listening socket, then run
 * one worker here or pre-fork several (server/listener.c). Python starts in
 * each worker, never in the pre-fork parent. */
#include "asgi.h"
#include "cli.h"
#include "listener.h"
#include "log.h"

#include <stdlib.h>

static dfws_cli_t cli;
static int saved_argc;
static char **saved_argv;

static int run_worker(void *arg)
{
    (void)arg;
    return dfws_embed_run(saved_argc, saved_argv);
}

int main(int argc, char **argv)
{
    int rc = dfws_cli_parse(&cli, argc, argv);
    if (rc == DFWS_CLI_EXIT)
        return 0;
    if (rc == DFWS_CLI_USAGE)
        return 2;
    dfws_log_set_level(cli.verbosity == 0 ? DFWS_LOG_WARNING
                       : cli.verbosity == 1 ? DFWS_LOG_INFO
                                            : DFWS_LOG_DEBUG);
    int is_unix = 0;
    int fd = dfws_listener_open(&cli, &is_unix);
    if (fd < 0)
        return 1;
    dfws_asgi_cli = &cli;
    dfws_asgi_fd = fd;
    dfws_asgi_is_unix = is_unix;
    saved_argc = argc;
    saved_argv = argv;
    if (cli.workers > 1)
        return dfws_prefork_run(cli.workers, run_worker, NULL);
    return run_worker(NULL);
}
