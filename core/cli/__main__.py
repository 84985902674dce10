"""`python -m core.cli`: the same as the `learngene` command."""

import sys

from core.cli.main import main

code = main()
# A Ctrl-C or SIGTERM that main() handled may have passed through code run from a string (a dataclass or namedtuple
# being created by a lazy import); under `python -m` CPython then exits by SIGINT whatever main returned (its
# "unhandled KeyboardInterrupt" flag). Running any string resets that flag.
exec("")
sys.exit(code)
