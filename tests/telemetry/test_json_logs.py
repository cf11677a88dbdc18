"""Structured logs: --log-format json writes one JSON object per line with the
same ids that label spans and events."""

from __future__ import annotations

import json
import logging

from services.common.logging_setup import JsonFormatter, TextFormatter


def record(**extra) -> logging.LogRecord:
    entry = logging.LogRecord("vp.test", logging.INFO, __file__, 1, "mission %s done", ("m-1",), None)
    for key, value in extra.items():
        setattr(entry, key, value)
    return entry


def test_json_lines_carry_mission_ids():
    line = JsonFormatter().format(record(mission_id="m-1", vp_id="vp.coder.primary", run_id="r-9", attempt=2,
                                         session_id="s-3"))
    parsed = json.loads(line)
    assert parsed["msg"] == "mission m-1 done" and parsed["level"] == "info"
    assert (parsed["mission_id"], parsed["vp_id"], parsed["run_id"], parsed["attempt"], parsed["session_id"]) == (
        "m-1", "vp.coder.primary", "r-9", 2, "s-3")
    assert parsed["ts"].endswith("+00:00")


def test_text_lines_show_ids_and_omit_empty_ones():
    text = TextFormatter().format(record(mission_id="m-1", vp_id=""))
    assert text.endswith("[mission_id=m-1]")
