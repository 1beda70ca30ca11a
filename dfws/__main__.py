"""``dfws-asgi`` and ``python -m dfws``: the command line, then the workers.

    dfws-asgi [options] module:application

The C server parses the command line (daphne's flags, see docs/cli.md) and
opens the listening socket; with ``--workers N`` it forks N workers and
supervises them from this process. Each worker runs dfws.runner.main().
"""
import sys


def main(argv=None):
    """Runs dfws-asgi with ``argv`` (default: sys.argv); returns the exit status."""
    from dfws.binding import UnusableUvloop, load_extension

    argv = list(sys.argv if argv is None else argv)
    argv[0] = "dfws-asgi"  # what --help and errors call the program
    try:
        _dfws = load_extension()
    except (UnusableUvloop, ImportError) as exc:
        print("dfws-asgi: error: %s" % exc, file=sys.stderr)
        return 1
    status = _dfws.configure(argv)
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
