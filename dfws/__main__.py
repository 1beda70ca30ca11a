"""``dfws-asgi`` and ``python -m dfws``: the command line, then the workers.

    dfws-asgi [options] module:application

The C server parses the command line (daphne's flags, see docs/cli.md) and
opens the listening socket; with ``--workers N`` (or ``--reload``, or a
recycling limit) it forks the workers and supervises them from this
process (server/supervisor.c). Each worker runs dfws.runner.main().

A lone worker restarts in place on SIGHUP (dfws.runner.reexec): the same
process executes itself again and takes back its listening socket, whose
number it finds in the environment variable named by RESTART_FD_ENV.
"""
import os
import sys

RESTART_FD_ENV = "DFWS_RESTART_FD"


def main(argv=None, options=None):
    """Runs dfws-asgi with ``argv`` (default: sys.argv), or with ``options``,
    a dict of option names to values (``{"app": "myproj.asgi:application",
    "fd": 7, "verbosity": 0, "native_websockets": False, "reload_dir":
    ["src"]}``: the keys of ``_dfws.options()`` or the flags' names, a list
    for a repeatable flag, True/False for a flag without a value, None to
    leave one out). Returns the exit status."""
    from dfws.binding import UnusableUvloop, load_extension

    if options is not None:
        config = dict(options)
    else:
        config = list(sys.argv if argv is None else argv)
        config[0] = "dfws-asgi"  # what --help and errors call the program
    try:
        _dfws = load_extension()
    except (UnusableUvloop, ImportError) as exc:
        print("dfws-asgi: error: %s" % exc, file=sys.stderr)
        return 1
    # read once and removed: the application's own subprocesses must not see it
    inherited = os.environ.pop(RESTART_FD_ENV, "")
    status = _dfws.configure(config, int(inherited) if inherited.isdigit() else -1)
    if status is not None:
        return status
    opts = _dfws.options()
    if opts["workers"] > 1:
        # the project's LOGGING, and a layer the workers cannot share (dfws.project)
        from dfws.project import prepare_supervisor

        problem = prepare_supervisor(opts)
        if problem:
            print("dfws-asgi: error: %s" % problem, file=sys.stderr)
            return 1
    status = _dfws.prefork()
    if status is not None:
        return status  # the supervisor: every worker is gone
    from dfws import runner

    return runner.main()


def run():
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
