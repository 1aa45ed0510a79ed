#!/usr/bin/env python3
"""The index path end to end: after a flush the data node builds the collection's HNSW
index, the segment is handed to the query node, and searches go through the index
with the client's `ef` (recall checked against numpy); deletes after the handoff are
honoured; after a restart the index and the deletes are still there.

    python indexed_search.py target/debug/quiver [workdir]
"""
import tempfile
import time

import numpy as np
from pymilvus import DataType, MilvusClient

from harness import Server, binary_from_argv, free_port

DIM, N = 32, 6000


def recall(c, X, Q, ef):
    res = c.search("h", data=Q.tolist(), limit=10, search_params={"params": {"ef": ef}}, consistency_level="Strong")
    d = ((X[None] - Q[:, None]) ** 2).sum(-1)
    return np.mean([len({h["id"] for h in r} & set(np.argsort(d[i])[:10].tolist())) / 10 for i, r in enumerate(res)])


def wait_for_log(path, text, timeout=60, times=1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if open(path, errors="replace").read().count(text) >= times:
            return
        time.sleep(0.2)
    raise AssertionError(f"{text!r} never appeared in {path}")


def main():
    binary, workdir = binary_from_argv()
    workdir = workdir or tempfile.mkdtemp(prefix="quiver-index-")
    srv = Server(binary, f"{workdir}/data").start()
    log = f"{workdir}/data.log"
    try:
        c = MilvusClient(uri=srv.uri)
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
        ip = c.prepare_index_params()
        ip.add_index(field_name="v", index_type="HNSW", metric_type="L2", params={"M": 16, "efConstruction": 100})
        c.create_collection("h", schema=schema, index_params=ip)
        rng = np.random.default_rng(1)
        X = rng.normal(size=(N, DIM)).astype(np.float32)
        for s in range(0, N, 1000):
            c.insert("h", [{"id": i, "v": X[i].tolist()} for i in range(s, s + 1000)])
        c.flush("h")
        wait_for_log(log, "index built")
        wait_for_log(log, "handed off to the query node")
        Q = rng.normal(size=(50, DIM)).astype(np.float32)
        r = recall(c, X, Q, 128)
        assert r >= 0.95, f"recall@10 through the index at ef=128: {r}"
        c.delete("h", ids=list(range(0, 100)))
        hits = c.search("h", data=X[:20].tolist(), limit=3, consistency_level="Strong")
        assert all(h["id"] >= 100 for hs in hits for h in hs), "a deleted row was found after the handoff"
        srv.stop()
        srv.port = free_port()
        srv.start()
        c = MilvusClient(uri=srv.uri)
        c.load_collection("h")
        hits = c.search("h", data=X[:20].tolist(), limit=3, consistency_level="Strong")
        assert all(h["id"] >= 100 for hs in hits for h in hs), "a deleted row came back after a restart"
        n = c.query("h", filter="", output_fields=["count(*)"], consistency_level="Strong")[0]["count(*)"]
        assert n == N - 100, n
        # A new index for segments the query node already serves (once the restarted
        # node has handed its recovered segment off again).
        wait_for_log(log, "handed off to the query node", times=2)
        c.release_collection("h")
        c.drop_index("h", "v")
        ip = c.prepare_index_params()
        ip.add_index(field_name="v", index_type="IVF_FLAT", metric_type="L2", params={"nlist": 16})
        c.create_index("h", ip)
        c.load_collection("h")
        wait_for_log(log, "index loaded for a served segment")
        res = c.search("h", data=Q.tolist(), limit=10, search_params={"params": {"nprobe": 16}},
                       consistency_level="Strong")
        alive = X[100:]
        d = ((alive[None] - Q[:, None]) ** 2).sum(-1)
        r2 = np.mean([len({h["id"] for h in hs} & set((np.argsort(d[i])[:10] + 100).tolist())) / 10
                      for i, hs in enumerate(res)])
        assert r2 >= 0.99, f"IVF_FLAT with nprobe = nlist must be exact, recall {r2}"
        print(f"indexed search: ok (recall@10 {r:.3f} at ef=128; {r2:.3f} after re-indexing)")
    finally:
        if srv.proc and srv.proc.poll() is None:
            srv.stop()


if __name__ == "__main__":
    main()
