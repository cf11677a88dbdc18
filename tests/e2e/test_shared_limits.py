"""One capacity limit on both sides: a worker at the largest capacity its own
configuration accepts is accepted by the dispatcher (it used to accept 1024
while the dispatcher refused anything over 256, so such a worker reconnected
forever), and one over the limit is a configuration error at start."""

from __future__ import annotations

import subprocess

from services.common.limits import MAX_WORKER_CAPACITY
from tests.e2e.test_processes import CODER
from tests.support.processes import console_script


def test_a_worker_at_the_shared_capacity_limit_connects_and_one_above_it_fails_at_start(e2e):
    worker = e2e.start_worker(CODER, "--capacity", str(MAX_WORKER_CAPACITY))  # waits for "connected to"
    assert "INVALID_ARGUMENT" not in worker.output
    above = subprocess.run(
        [console_script("vp-worker"), "--dispatcher", e2e.dispatcher_address, "--registry", e2e.registry_address,
         "--vp-id", "vp.general.primary", "--capacity", str(MAX_WORKER_CAPACITY + 1)],
        capture_output=True, text=True, timeout=60)
    assert above.returncode == 2, above
    assert f"1..{MAX_WORKER_CAPACITY}" in above.stderr, above.stderr
