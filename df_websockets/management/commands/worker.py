"""``manage.py worker``: run the workers that process server-side signals.

- ``WEBSOCKET_WORKERS = "celery"``: the arguments are handed to Celery, i.e.
  ``manage.py worker -Q celery,slow`` = ``celery -A <CELERY_APP> worker -Q celery,slow``.
- other modes: a Channels worker consuming ``process.signal`` messages on the
  channel names given by ``-Q/--queues`` (comma-separated, default
  ``WEBSOCKET_DEFAULT_QUEUE``). Needs a channel layer shared between
  processes (channels_redis, or the dfws-asgi layer).
"""
import logging
import os
import sys

from django.core.management import BaseCommand, CommandError

from df_websockets import ws_settings
from df_websockets.constants import WORKER_CELERY

logger = logging.getLogger("df_websockets.signals")


def run_celery(argv):
    """Run Celery's command line with ``argv`` (without the program name)."""
    os.environ["CELERY_APP"] = ws_settings.CELERY_APP
    from celery.__main__ import main

    sys.argv = ["celery", "-A", ws_settings.CELERY_APP] + list(argv)
    main()


class Command(BaseCommand):
    help = "Run the df_websockets workers (Celery or Channels, after WEBSOCKET_WORKERS)."

    def run_from_argv(self, argv):
        if ws_settings.get_worker_mode() == WORKER_CELERY:
            args = list(argv[2:])
            if "worker" not in args:
                args = ["worker"] + args
            return run_celery(args)
        return super().run_from_argv(argv)

    def add_arguments(self, parser):
        parser.add_argument(
            "-Q", "--queues", default=None,
            help="comma-separated queue (channel) names; default: WEBSOCKET_DEFAULT_QUEUE",
        )
        parser.add_argument("--layer", default="default", help="channel layer alias")

    def handle(self, *args, **options):
        from channels.layers import get_channel_layer
        from channels.worker import Worker

        from df_websockets.consumers import DFChannelNameRouter
        from df_websockets.tasks import import_signals_and_functions

        os.environ["CELERY_APP"] = ws_settings.CELERY_APP
        queues = options["queues"] or ws_settings.WEBSOCKET_DEFAULT_QUEUE
        queues = [q.strip() for q in queues.split(",") if q.strip()]
        if not queues:
            raise CommandError("no queue given (-Q q1,q2)")
        layer = get_channel_layer(options["layer"])
        if layer is None:
            raise CommandError("channel layer %r is not configured (CHANNEL_LAYERS)" % options["layer"])
        for queue in queues:
            try:
                layer.require_valid_channel_name(queue)
            except TypeError as exc:
                raise CommandError("invalid channel name %r: %s" % (queue, exc)) from None
        import_signals_and_functions()
        logger.info("df_websockets worker listening on %s", ", ".join(queues))
        self.stdout.write("df_websockets worker listening on %s\n" % ", ".join(queues))
        self.stdout.flush()
        Worker(application=DFChannelNameRouter(), channels=queues, channel_layer=layer).run()
