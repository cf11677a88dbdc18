"""The pgqueuer side of bench/side_by_side.py: one consumer process with a no-op
entrypoint, run from Python (pgqueuer 1.6's `pgq run` CLI fails at start with
typer 0.29). `--batch-size` and `--dequeue-timeout` pick latency or throughput."""

from __future__ import annotations

import argparse
import asyncio
from datetime import timedelta

import asyncpg
from pgqueuer import AsyncpgDriver, PgQueuer


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--dequeue-timeout", type=float, default=30.0)
    args = parser.parse_args()
    # asyncpg, pgqueuer's own driver: its psycopg driver holds the connection in
    # notifies(timeout=1 s) between queries, which adds seconds to every job.
    connection = await asyncpg.connect(args.dsn)
    pgq = PgQueuer(AsyncpgDriver(connection))

    @pgq.entrypoint("noop")
    async def noop(job) -> None:
        return None

    print("pgqueuer consumer ready", flush=True)
    await pgq.run(dequeue_timeout=timedelta(seconds=args.dequeue_timeout), batch_size=args.batch_size)


if __name__ == "__main__":
    asyncio.run(main())
