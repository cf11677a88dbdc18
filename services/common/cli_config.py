"""Command-line flags that also read an environment variable, listed in --help.

Every service flag has an environment equivalent (12-factor deployments set
env; operators type flags); the flag wins when both are given.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

DEFAULT_HOST = "127.0.0.1"


class EnvArgumentParser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        super().__init__(*args, **kwargs)
        self.env_vars: dict[str, str] = {}

    def add_env_argument(
        self,
        *flags: str,
        env: str,
        default: Any = None,
        type: Callable[[str], Any] = str,  # noqa: A002 - mirrors argparse
        help: str = "",  # noqa: A002
        **kwargs: Any,
    ) -> argparse.Action:
        raw = os.environ.get(env)
        value = default
        if raw is not None and raw != "":
            try:
                value = type(raw)
            except (TypeError, ValueError) as exc:
                self.error(f"environment variable {env}={raw!r} is invalid: {exc}")
        self.env_vars[env] = help
        return self.add_argument(*flags, default=value, type=type, help=f"{help} [env: {env}]", **kwargs)


def add_logging_arguments(parser: EnvArgumentParser) -> None:
    """--log-level and --log-format, the same on every service."""
    parser.add_env_argument("--log-level", env="VP_LOG_LEVEL", default="INFO", help="log level")
    parser.add_env_argument("--log-format", env="VP_LOG_FORMAT", default="text", choices=["text", "json"],
                            help="log format (json: one object per line, with mission/session ids)")


def host_port(value: str) -> str:
    """Validate HOST:PORT (port 0 allowed, meaning any free port)."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return value


def env_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected a boolean (1/0/true/false/yes/no/on/off), got {value!r}")


def positive_float(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return number
