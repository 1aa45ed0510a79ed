#!/usr/bin/env python3
"""What a hostile user broke (issue 18, items 1, 2 and 7), as regression probes:

- a search that cannot finish within the client's `timeout=` comes back promptly with
  Milvus's timeout status (10001), not "unreachable" (98), and the server answers the
  next search at once (the abandoned work stopped);
- a heavy search on one collection does not stall small searches on another;
- Milvus's limits are enforced with its status (1100, invalid parameter): nq, search
  and query limit/offset, JSON size, field count, `ef`, `round_decimal`.

    python hostile_limits.py target/debug/quiver [workdir]
    HOSTILE_PROBES=isolation python hostile_limits.py ...   (only some probes)
"""
import os
import tempfile
import threading
import time

import grpc
import numpy as np
from pymilvus import DataType, MilvusClient, MilvusException
from pymilvus.grpc_gen import common_pb2, milvus_pb2, milvus_pb2_grpc

from harness import Server, binary_from_argv

DIM, N = 32, 20000
INVALID, TIMEOUT = 1100, 10001


def refused(fn, code, text):
    """`fn` must fail with status `code` and a message containing `text`."""
    try:
        fn()
    except MilvusException as e:
        assert e.code == code, f"expected code {code}, got {e.code}: {e.message}"
        assert text in e.message, f"{text!r} not in {e.message!r}"
        return e
    except Exception as e:  # a bare gRPC error (no Milvus status) is a failure too
        raise AssertionError(f"expected code {code}, got {type(e).__name__}: {e}") from None
    raise AssertionError(f"accepted; expected code {code} ({text})")


def create(c, name, schema):
    """Creates and loads `name` with an exact (FLAT) index on `v`."""
    ip = c.prepare_index_params()
    ip.add_index(field_name="v", index_type="FLAT", metric_type="L2")
    c.create_collection(name, schema=schema, index_params=ip)


def setup(c, rng):
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    schema.add_field("meta", DataType.JSON)
    create(c, "a", schema)
    create(c, "b", schema)
    X = rng.normal(size=(N, DIM)).astype(np.float32)
    for s in range(0, N, 5000):
        c.insert("a", [{"id": i, "v": X[i].tolist(), "meta": {"i": i}} for i in range(s, s + 5000)])
    c.insert("b", [{"id": 0, "v": X[0].tolist(), "meta": {}}])
    return X


def probe_deadline(c, rng):
    """A search far over its timeout gets the timeout status promptly; the next is fast."""
    Q = rng.normal(size=(16384, DIM)).astype(np.float32).tolist()
    t0 = time.time()
    e = refused(lambda: c.search("a", data=Q, limit=10, timeout=2), TIMEOUT, "deadline exceeded")
    took = time.time() - t0
    assert took < 4, f"the timeout status took {took:.1f}s for timeout=2"
    t0 = time.time()
    hits = c.search("a", data=[Q[0]], limit=3, timeout=10)
    after = time.time() - t0
    assert len(hits[0]) == 3
    assert after < 1.5, f"the search right after an abandoned one took {after:.1f}s"
    print(f"  deadline: timeout=2 answered in {took:.2f}s ({e.message[:60]}...), next search {after:.2f}s")


def probe_isolation(c, rng, X):
    """Small searches on B finish long before heavy searches on A (one per core, so
    that work which ties up its thread stalls everything else)."""
    Q = rng.normal(size=(1500, DIM)).astype(np.float32).tolist()
    heavy = []

    def run_heavy():
        t0 = time.time()
        try:
            c.search("a", data=Q, limit=10, timeout=60)
        finally:
            heavy.append((time.time() - t0, time.time()))

    threads = [threading.Thread(target=run_heavy) for _ in range(max(2, os.cpu_count() or 2))]
    for t in threads:
        t.start()
    time.sleep(0.5)
    small = []
    for _ in range(5):
        t0 = time.time()
        hits = c.search("b", data=[X[0].tolist()], limit=1)
        small.append(time.time() - t0)
        assert hits[0][0]["id"] == 0
    b_end = time.time()
    for t in threads:
        t.join()
    took = max(h[0] for h in heavy)
    print(f"  isolation: {len(threads)} heavy searches on A took up to {took:.2f}s; one-row "
          f"searches on B max {max(small):.3f}s, median {sorted(small)[2]:.3f}s")
    assert b_end < min(h[1] for h in heavy), "the small searches on B finished after a heavy one on A"
    assert max(small) < max(1.0, took / 4), f"a one-row search on B took {max(small):.2f}s"


def raw_search(uri, collection, vector, params):
    """A search sent with a raw gRPC stub, so no client-side checks stand in the way."""
    ph = common_pb2.PlaceholderGroup(placeholders=[common_pb2.PlaceholderValue(
        tag="$0", type=101, values=[np.asarray(vector, dtype="<f4").tobytes()])])
    req = milvus_pb2.SearchRequest(
        collection_name=collection, dsl_type=common_pb2.BoolExprV1, nq=1,
        placeholder_group=ph.SerializeToString(),
        search_params=[common_pb2.KeyValuePair(key=k, value=str(v)) for k, v in params.items()])
    with grpc.insecure_channel(uri.replace("http://", "")) as ch:
        return milvus_pb2_grpc.MilvusServiceStub(ch).Search(req, timeout=10)


def probe_limits(c, rng, srv_uri):
    q = [rng.normal(size=DIM).astype(np.float32).tolist()]
    big = rng.normal(size=(16385, 4)).astype(np.float32)
    small_schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    small_schema.add_field("id", DataType.INT64, is_primary=True)
    small_schema.add_field("v", DataType.FLOAT_VECTOR, dim=4)
    create(c, "tiny", small_schema)
    refused(lambda: c.search("tiny", data=big.tolist(), limit=1), INVALID,
            "nq (number of search vector per search request) should be in range [1, 16384], but got 16385")
    refused(lambda: c.search("a", data=q, limit=16385), INVALID, "16384")
    refused(lambda: c.search("a", data=q, limit=10, offset=16380), INVALID, "16384")
    refused(lambda: c.query("a", filter="id >= 0", limit=16385), INVALID,
            "limit [16385] is invalid, it should be in range [1, 16384]")
    refused(lambda: c.query("a", filter="id >= 0", limit=10, offset=16380), INVALID,
            "(offset+limit) should be in range [1, 16384], but got 16390")
    assert len(c.query("a", filter="id >= 0", limit=16384)) == 16384
    refused(lambda: c.search("a", data=q, limit=3, search_params={"params": {"ef": -1}}), INVALID, "ef")
    refused(lambda: c.search("a", data=q, limit=3, search_params={"params": {"ef": "abc"}}), INVALID, "ef")
    # pymilvus refuses round_decimal=99 itself; a raw client reaches the server.
    raw = raw_search(srv_uri, "a", q[0], {"topk": 3, "round_decimal": 99, "params": "{}"})
    assert raw.status.code == INVALID and "round_decimal [99] is invalid" in raw.status.reason, raw.status
    assert c.search("a", data=q, limit=3, round_decimal=6)[0]
    blob = {"x": "y" * 70000}
    refused(lambda: c.insert("a", [{"id": -1, "v": q[0], "meta": blob}]), INVALID,
            "exceeds max length (65536)")
    assert c.query("a", filter="id == -1", output_fields=["meta"]) == []
    c.insert("a", [{"id": -2, "v": q[0], "meta": {"x": "y" * 60000}}])
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=4)
    for i in range(63):
        schema.add_field(f"f{i}", DataType.INT32)
    refused(lambda: c.create_collection("wide", schema=schema), INVALID,
            "maximum field's number should be limited to 64")
    assert not c.has_collection("wide")
    print("  limits: nq, limit/offset, JSON size, field count, ef and round_decimal refused")


def main():
    binary, workdir = binary_from_argv()
    workdir = workdir or tempfile.mkdtemp(prefix="quiver-hostile-")
    srv = Server(binary, f"{workdir}/data").start()
    t0 = time.time()
    try:
        c = MilvusClient(uri=srv.uri)
        rng = np.random.default_rng(18)
        X = setup(c, rng)
        failed = []
        for name, probe in [("limits", lambda: probe_limits(c, rng, srv.uri)),
                            ("deadline", lambda: probe_deadline(c, rng)),
                            ("isolation", lambda: probe_isolation(c, rng, X))]:
            if name not in os.environ.get("HOSTILE_PROBES", name):
                continue
            try:
                probe()
            except AssertionError as e:
                print(f"  {name}: FAILED: {e}")
                failed.append(name)
    finally:
        t1 = time.time()
        srv.stop()
        print(f"  shutdown took {time.time() - t1:.1f}s")
    assert not failed, f"probes failed: {failed}"
    print(f"hostile_limits: all probes passed in {time.time() - t0:.1f}s")


if __name__ == "__main__":
    main()
