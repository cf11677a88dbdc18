"""Process-wide logging: human-readable by default, one JSON object per line with
--log-format json (VP_LOG_FORMAT). Ids passed in ``extra`` (mission_id, vp_id,
session_id, run_id, attempt) become fields, so logs join traces and events."""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone

CONTEXT_FIELDS = ("mission_id", "vp_id", "session_id", "run_id", "attempt", "lease_epoch", "address")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value not in (None, ""):
                entry[name] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        ids = " ".join(
            f"{name}={getattr(record, name)}" for name in CONTEXT_FIELDS if getattr(record, name, None) not in (None, "")
        )
        return f"{text} [{ids}]" if ids else text


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
