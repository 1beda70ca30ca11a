"""``manage.py celery <args>``: Celery's command line with ``-A <CELERY_APP>``."""
from django.core.management import BaseCommand

from df_websockets.management.commands.worker import run_celery


class Command(BaseCommand):
    help = "Run Celery's command line on the df_websockets Celery app."

    def run_from_argv(self, argv):
        return run_celery(argv[2:])

    def handle(self, *args, **options):  # call_command("celery") without args
        return run_celery(list(args))
