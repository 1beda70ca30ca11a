#!/usr/bin/env python3
"""Django's command-line utility for the dfws demo project.

Run it from this directory with the Python of the virtualenv dfws is
installed in, e.g.:

    python3 manage.py migrate
    python3 manage.py demo_broadcast "hello"
"""
import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
