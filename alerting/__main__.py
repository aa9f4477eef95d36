"""``python -m kyoten.alerting …`` is ``kyoten bridge …`` (used by the crash test and systemd)."""

import sys

from .cli import main

sys.exit(main(["bridge", *sys.argv[1:]]))
