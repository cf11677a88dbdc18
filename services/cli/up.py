"""vpctl up: start the whole embedded stack (registry, dispatcher, two workers on
SQLite). Placeholder until the real implementation replaces run_up."""

from __future__ import annotations

import sys

from services.cli import exit_codes


def run_up(args) -> int:
    print("vpctl up: not implemented yet", file=sys.stderr)
    return exit_codes.USAGE
