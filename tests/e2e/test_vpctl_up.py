"""The README's run command: `vpctl up` brings the embedded stack up on SQLite, a
demo mission visibly completes with its artifact in the VP workspace, and
Ctrl-C (SIGINT) stops every process cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from urllib.parse import urlparse

from tests.support.e2e import free_port
from tests.support.processes import ServiceProcess, console_script


def test_vpctl_up_runs_demo_and_stops_cleanly(tmp_path):
    data = tmp_path / ".vp"  # the default data dir, relative to the working directory below
    dispatcher = f"127.0.0.1:{free_port()}"
    up = ServiceProcess([console_script("vpctl"), "--registry", f"127.0.0.1:{free_port()}", "--dispatcher",
                         dispatcher, "up", "--data-dir", str(data), "--metrics-base-port", "0"])
    try:
        up.wait_for_line(r"VP Mission Control is up", timeout=60)
        up.wait_for_line(r"demo mission asks: Before I go on: .*May it rhyme\?", timeout=60)
        done = up.wait_for_line(r"demo mission COMPLETED; artifacts in (\S+)", timeout=60)
        up.wait_for_line(r"demo mission usage: \d+ tokens, \d+\.\d{4} USD \(demo-1\)", timeout=10)
        mission_dir = Path(urlparse(done.group(1)).path)
        assert mission_dir.is_relative_to(data / "workspaces" / "vp.general.primary")
        assert (mission_dir / "result.md").exists() and (mission_dir / "sync_ready.json").exists()
        assert (data / "workspaces" / "vp.general.primary" / "journal.md").exists()
        up.wait_for_line(r"Press Ctrl-C to stop", timeout=10)
        # Secure by default: credentials under the data dir, TLS on the listeners, and vpctl
        # finds the credentials there with no flags (cwd = the data dir's parent: .vp is the default).
        assert (data / "tls" / "ca.pem").exists() and (data / "auth" / "tokens.json").exists()
        assert "created a local CA" in up.output
        env = {k: v for k, v in os.environ.items() if not k.startswith("VP_")}
        listed = subprocess.run([console_script("vpctl"), "--dispatcher", dispatcher, "--json", "list"],
                                capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
        assert listed.returncode == 0 and len(listed.stdout.splitlines()) == 1, listed.stderr
        plaintext = subprocess.run([console_script("vpctl"), "--dispatcher", dispatcher, "--insecure", "list"],
                                   capture_output=True, text=True, timeout=60)
        assert plaintext.returncode == 5, plaintext.stdout  # UNAVAILABLE: no TLS, no call
        # The registry's session events are on the dispatcher's event stream (one store file).
        events = subprocess.run([console_script("vpctl"), "--dispatcher", dispatcher, "--json", "events",
                                 "--type", "vp.session.created"], capture_output=True, text=True, timeout=60,
                                cwd=tmp_path, env=env)
        assert events.returncode == 0, events.stderr
        acquired = {json.loads(line)["vp_id"] for line in events.stdout.splitlines()}
        assert acquired == {"vp.coder.primary", "vp.general.primary"}, events.stdout
        assert sorted(p.name for p in data.glob("*.db")) == ["vp.db"]
        assert up.output.count("metrics on http://127.0.0.1:") == 4  # registry, dispatcher, both workers
        up.proc.send_signal(signal.SIGINT)
        assert up.proc.wait(40) == 0, up.output
        assert "lease released" in up.output
        assert "Traceback" not in up.output
    finally:
        up.kill()
