#!/usr/bin/env python3
"""Dropping collections under churn (issue 18, items 3 and 9): every drop succeeds
while the garbage collector, woken by each drop, sweeps the previous ones; flushed,
indexed and unflushed collections alike; and nothing is left behind on disk — no WAL
directory but the pchannels' shared logs, no empty object directory, no manifest.

    python drop_churn.py target/debug/quiver [workdir]
"""
import os
import tempfile
import threading

from pymilvus import MilvusClient

from harness import Server, binary_from_argv

ROUNDS = 60


def leftovers(data_dir):
    """Every directory under the data directory that is not part of an empty store. The
    pchannels' logs stay (collections share them; what a dropped collection wrote there
    goes when the log is truncated past it)."""
    keep = {data_dir, os.path.join(data_dir, "wal"), os.path.join(data_dir, "objects")}
    found = []
    for root, dirs, _files in os.walk(data_dir):
        found += [os.path.join(root, d) for d in dirs
                  if os.path.join(root, d) not in keep
                  and not (root == os.path.join(data_dir, "wal") and d.startswith("quiver-dml_"))]
    return found


def churn(c, prefix, errors):
    for i in range(ROUNDS):
        name = f"{prefix}{i}"
        try:
            c.create_collection(name, dimension=4)
            c.insert(name, [{"id": j, "vector": [float(j), 0.0, 0.0, 1.0]} for j in range(20)])
            if i % 3 == 0:
                c.flush(name)
            c.drop_collection(name)
        except Exception as e:  # noqa: BLE001 - every failure is reported
            errors.append(f"{name}: {e}")


def main():
    binary, work = binary_from_argv()
    work = work or tempfile.mkdtemp(prefix="quiver-drop-")
    data = os.path.join(work, "data")
    server = Server(binary, data).start()
    try:
        errors = []
        clients = [MilvusClient(uri=server.uri) for _ in range(2)]
        threads = [threading.Thread(target=churn, args=(c, f"churn{k}_", errors))
                   for k, c in enumerate(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, f"{len(errors)} of {2 * ROUNDS} rounds failed: {errors[:5]}"
        assert clients[0].list_collections() == []
    finally:
        server.stop()
    # Start again: recovery runs the garbage collector once more over what is left.
    server = Server(binary, data).start()
    server.stop()
    left = leftovers(data)
    assert not left, f"{len(left)} directories left after {2 * ROUNDS} drops: {left[:5]}"
    print(f"drop churn: {2 * ROUNDS} create-insert-drop rounds, none failed, nothing left")


if __name__ == "__main__":
    main()
