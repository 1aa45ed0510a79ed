#!/usr/bin/env python3
"""Nothing acknowledged is lost across `kill -9`.

A writer thread inserts and deletes through pymilvus while the server is killed with
SIGKILL at random moments and restarted on the same data directory. Every insert the
server acknowledged must be there afterwards unless a delete touched its key; every
acknowledged delete must stay deleted; nothing that was never sent may appear.

    python kill9_durability.py target/debug/quiver [workdir]
"""
import logging
import random
import tempfile
import threading
import time

import numpy as np
from pymilvus import DataType, MilvusClient

from harness import Server, binary_from_argv, free_port

DIM = 8
COLL = "durability"
ROUNDS = 6


def main():
    # pymilvus logs every failed RPC with a traceback; the kills make many on purpose.
    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
    binary, workdir = binary_from_argv()
    workdir = workdir or tempfile.mkdtemp(prefix="quiver-kill9-")
    rng = random.Random(1234)
    srv = Server(binary, f"{workdir}/data", extra=["--seal-rows", "300", "--idle-flush-secs", "1"]).start()
    c = MilvusClient(uri=srv.uri)
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    ip = c.prepare_index_params()
    ip.add_index(field_name="v", index_type="FLAT", metric_type="L2")
    c.create_collection(COLL, schema=schema, index_params=ip)

    acked_insert, maybe_insert, acked_delete, maybe_delete = set(), set(), set(), set()
    next_id = [0]

    def writer(client, stop):
        while not stop.is_set():
            if acked_insert and rng.random() < 0.2:
                keys = rng.sample(sorted(acked_insert - acked_delete), min(3, len(acked_insert - acked_delete)))
                if not keys:
                    continue
                maybe_delete.update(keys)
                try:
                    client.delete(COLL, ids=keys, timeout=5)
                    acked_delete.update(keys)
                except Exception:
                    return
            else:
                n = rng.randint(1, 50)
                keys = list(range(next_id[0], next_id[0] + n))
                next_id[0] += n
                maybe_insert.update(keys)
                rows = [{"id": k, "v": np.full(DIM, k % 97, dtype=np.float32).tolist()} for k in keys]
                try:
                    client.insert(COLL, rows, timeout=5)
                    acked_insert.update(keys)
                except Exception:
                    return

    for rnd in range(ROUNDS):
        stop = threading.Event()
        t = threading.Thread(target=writer, args=(c, stop))
        t.start()
        time.sleep(rng.uniform(0.3, 1.5))
        srv.kill9()
        stop.set()
        t.join()
        # A new port each time: pymilvus caches channels per address, and a channel that
        # saw the server die backs off for a long time before it reconnects.
        srv.port = free_port()
        srv.start()
        c = MilvusClient(uri=srv.uri)
        c.load_collection(COLL)
        print(f"round {rnd}: {len(acked_insert)} inserts and {len(acked_delete)} deletes acknowledged so far")

    # Paged by key (rows come ordered by primary key): offset+limit is capped at 16384,
    # as in Milvus.
    got = set()
    last = -1
    while True:
        page = c.query(COLL, filter=f"id > {last}", output_fields=["id"], limit=10000,
                       consistency_level="Strong")
        got.update(r["id"] for r in page)
        if len(page) < 10000:
            break
        last = max(r["id"] for r in page)
    lost = acked_insert - maybe_delete - got
    undeleted = acked_delete & got
    phantom = got - maybe_insert
    srv.stop()
    print(f"visible={len(got)} acked_inserts={len(acked_insert)} acked_deletes={len(acked_delete)}")
    assert not lost, f"acknowledged inserts lost: {sorted(lost)[:20]}"
    assert not undeleted, f"acknowledged deletes undone: {sorted(undeleted)[:20]}"
    assert not phantom, f"keys never sent are visible: {sorted(phantom)[:20]}"
    assert len(acked_insert) > 100, "the workload barely ran"
    print("kill -9 durability: ok")


if __name__ == "__main__":
    main()
