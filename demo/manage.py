#!/usr/bin/env python3
"""Django's command-line utility for the dfws demo project.

Run it with Debian's interpreter from this directory, e.g.:

    /usr/bin/python3 manage.py migrate
    /usr/bin/python3 manage.py demo_broadcast "hello"
"""
import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
