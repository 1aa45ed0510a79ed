#!/usr/bin/env python3
"""pymilvus insert throughput of standalone on the local WAL and on the object-storage
WAL (`--wal object`), back to back in one run on the same machine: 1000-row batches of
128-d float vectors, one client, for a fixed number of rows. Prints one JSON line per
backend and the ratio.

    python benches/python/insert_wal.py target/release/quiver [--rows 100000] [--repeats 2]
"""
import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np
from pymilvus import DataType, MilvusClient

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "python"))
from harness import Server  # noqa: E402

DIM, BATCH = 128, 1000


def run(binary, workdir, wal, rows):
    srv = Server(binary, f"{workdir}/{wal}", extra=["--wal", wal]).start()
    try:
        c = MilvusClient(uri=srv.uri)
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
        c.create_collection("bench", schema=schema)
        rng = np.random.default_rng(42)
        batches = []
        for lo in range(0, rows, BATCH):
            vecs = rng.random((BATCH, DIM), dtype=np.float32)
            batches.append([{"id": lo + i, "v": vecs[i]} for i in range(BATCH)])
        t = time.perf_counter()
        for b in batches:
            c.insert("bench", b)
        wall = time.perf_counter() - t
        return rows / wall
    finally:
        srv.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()
    workdir = tempfile.mkdtemp(prefix="quiver-insert-wal-")
    best = {}
    for r in range(a.repeats):
        for wal in ("local", "object"):
            rate = run(a.binary, f"{workdir}/{r}", wal, a.rows)
            best[wal] = max(best.get(wal, 0), rate)
            print(json.dumps({"wal": wal, "repeat": r, "rows_per_s": round(rate)}), flush=True)
    print(json.dumps({"object_over_local": round(best["object"] / best["local"], 3)}))


if __name__ == "__main__":
    main()
