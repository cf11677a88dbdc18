"""The Celery side of bench/side_by_side.py: a no-op task and a progress streamer.
Broker and result backend come from BENCH_REDIS_URL (the script's own redis-server)."""

from __future__ import annotations

import os

from celery import Celery

REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
app = Celery("bench", broker=REDIS, backend=REDIS)
app.conf.update(task_acks_late=False, worker_prefetch_multiplier=1, result_expires=600,
                broker_connection_retry_on_startup=True, task_serializer="json", result_serializer="json")


@app.task(name="bench.noop")
def noop(i: int) -> int:
    return i


@app.task(name="bench.progress", bind=True)
def progress(self, lines: int) -> int:
    # The nearest Celery has to a progress line: a state update in the result backend.
    for i in range(lines):
        self.update_state(state="PROGRESS", meta={"seq": i + 1, "message": f"line {i + 1}"})
    return lines
