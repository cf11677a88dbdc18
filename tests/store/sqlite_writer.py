"""One writer process for test_sqlite_concurrency: opens its own SqlStore (so
also migrates, concurrently with its siblings), prints "ready", waits for a
line on stdin, then runs the shared write workload."""

from __future__ import annotations

import sys

from store_workload import write_once

from services.common.store import SqlStore


def main() -> None:
    url, writer, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with SqlStore(url) as store:
        print("ready", flush=True)
        sys.stdin.readline()
        for i in range(count):
            store.run(lambda tx: write_once(tx, f"{writer}-{i}"))
    print("done", flush=True)


if __name__ == "__main__":
    main()
