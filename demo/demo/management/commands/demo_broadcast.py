"""``manage.py demo_broadcast [CONTENT]``: sets the text of
``#broadcast-target`` in every open demo window.

The server and this command must share a channel layer: run both with the
same ``DFWS_DEMO_REDIS_URL``. Without it the message goes to this process's
own embedded layer and no window receives it (the command says so).
"""
from django.conf import settings
import logging

from django.core.management.base import BaseCommand, CommandError

from demo.broadcast import broadcast

logger = logging.getLogger("demo.broadcast")


class Command(BaseCommand):
    help = "Broadcast a text to the #broadcast-target element of every open demo window."

    def add_arguments(self, parser):
        parser.add_argument(
            "content",
            nargs="?",
            default=None,
            help='text to show (default: "shell <n>", n counting broadcasts)',
        )

    def handle(self, *args, content=None, **options):
        if not settings.DFWS_DEMO_REDIS_URL:
            self.stderr.write(
                "warning: no shared channel layer (DFWS_DEMO_REDIS_URL is not set); "
                "windows served by another process will not receive this broadcast."
            )
        try:
            sent = broadcast(content, source="shell")
        except Exception as e:  # Redis down, bad URL...
            logger.error("demo_broadcast failed: %s: %s", type(e).__name__, e)
            raise CommandError("cannot broadcast: %s: %s" % (type(e).__name__, e))
        self.stdout.write("broadcast sent: %s" % sent)
