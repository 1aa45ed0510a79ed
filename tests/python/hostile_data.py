#!/usr/bin/env python3
"""What a hostile user broke (issue 18, items 4-6), as regression probes:

- index parameters the builder refuses are refused at create_index (efConstruction
  40000, M 4096, nlist 70000), and a search `ef` / `nprobe` out of range is refused,
  instead of a build that fails for ever and searches that silently scan;
- duplicate primary keys behave as Milvus documents: an insert of a key that exists
  (in another batch or the same one) adds an entity; query, get and count(*) see
  every entity; a search returns a key at most once (its nearest entity); an upsert
  replaces every entity of its keys and refuses a key twice in one batch; a delete
  removes every entity of its keys;
- a collection dropped and re-created while another thread reads it gives that reader
  "collection not found" (or the new collection's rows), never an internal error;
- a request with invalid UTF-8 in a string (built by hand on a raw gRPC channel) gets
  a Milvus status (1100) in its response, not gRPC INTERNAL.

    python hostile_data.py target/debug/quiver [workdir]
"""
import tempfile
import threading
import time

import logging
import os

import grpc
import numpy as np
from pymilvus import DataType, MilvusClient, MilvusException
from pymilvus.grpc_gen import common_pb2, milvus_pb2, schema_pb2

from harness import Server, binary_from_argv

DIM = 8
SERVICE = "/milvus.proto.milvus.MilvusService/"


def refused(fn, code, text=""):
    """`fn()` fails with Milvus status `code` (and `text` in the message)."""
    try:
        fn()
    except MilvusException as e:
        assert e.code == code, f"expected code {code}, got {e.code}: {e.message}"
        assert text in e.message, f"{text!r} not in {e.message!r}"
        return e.message
    raise AssertionError(f"expected a refusal with code {code}")


def schema(pk=DataType.INT64):
    s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    if pk == DataType.INT64:
        s.add_field("id", DataType.INT64, is_primary=True)
    else:
        s.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    s.add_field("tag", DataType.VARCHAR, max_length=64)
    return s


def index(c, index_type="HNSW", **params):
    ip = c.prepare_index_params()
    ip.add_index(field_name="v", index_type=index_type, metric_type="L2", params=params)
    return ip


def index_parameters_are_checked(c):
    c.create_collection("ix", schema=schema())
    for params in ({"M": 16, "efConstruction": 40000}, {"M": 4096, "efConstruction": 100},
                   {"M": 16, "efConstruction": 2147483647}):
        refused(lambda: c.create_index("ix", index(c, **params)), 1100, "should be in range")
    refused(lambda: c.create_index("ix", index(c, "IVF_FLAT", nlist=70000)), 1100, "nlist")
    assert c.list_indexes("ix") == [], "a refused index was created"
    c.create_index("ix", index(c, M=16, efConstruction=32768))  # the builder's own limit
    c.load_collection("ix")
    c.insert("ix", [{"id": i, "v": [float(i)] * DIM, "tag": "t"} for i in range(10)])
    q = [[0.0] * DIM]
    refused(lambda: c.search("ix", q, limit=3, search_params={"params": {"ef": 40000}}), 1100, "ef")
    ok = c.search("ix", q, limit=3, search_params={"params": {"ef": 32768}}, consistency_level="Strong")
    assert [h["id"] for h in ok[0]] == [0, 1, 2], ok
    d = c.describe_index("ix", "v")
    assert d["state"] == "Finished", d
    c.drop_collection("ix")
    c.create_collection("iv", schema=schema(), index_params=index(c, "IVF_FLAT", nlist=4))
    refused(lambda: c.search("iv", q, limit=3, search_params={"params": {"nprobe": 70000}}), 1100, "nprobe")
    c.drop_collection("iv")
    print("index parameters: refused at create_index and search as the builder would")


def rows(ids, base, tag):
    return [{"id": k, "v": [base + i] * DIM, "tag": tag} for i, k in enumerate(ids)]


def count(c, name):
    return c.query(name, filter="", output_fields=["count(*)"], consistency_level="Strong")[0]["count(*)"]


def duplicate_keys_follow_milvus(c):
    c.create_collection("dup", schema=schema(), index_params=index(c, "FLAT"))
    # Within one insert batch: accepted, two entities.
    r = c.insert("dup", rows([1, 2, 1], 0.0, "a"))
    assert r["insert_count"] == 3, r
    c.flush("dup")  # the first entities sealed, the next ones growing
    # Across batches: one more entity of key 1.
    c.insert("dup", rows([1], 10.0, "b"))
    got = c.query("dup", filter="id == 1", output_fields=["tag", "v"], consistency_level="Strong")
    assert sorted(g["tag"] for g in got) == ["a", "a", "b"], got
    assert len(c.get("dup", ids=[1], output_fields=["tag"])) == 3
    assert count(c, "dup") == 4
    # A search returns the key once: its nearest entity, with that entity's fields.
    for target, tag in ((10.0, "b"), (2.0, "a")):
        hits = c.search("dup", [[target] * DIM], limit=10, output_fields=["tag", "v"],
                        consistency_level="Strong")[0]
        ids = [h["id"] for h in hits]
        assert ids.count(1) == 1 and sorted(ids) == [1, 2], ids
        h1 = next(h for h in hits if h["id"] == 1)
        assert h1["entity"]["tag"] == tag and abs(h1["entity"]["v"][0] - target) < 1e-6, h1
    # An upsert refuses a key twice in one batch (Milvus's rule and message) ...
    refused(lambda: c.upsert("dup", rows([5, 5], 0.0, "u")), 1100,
            "duplicate primary keys are not allowed in the same batch")
    # ... and replaces every entity of its keys.
    c.upsert("dup", rows([1], 50.0, "u"))
    got = c.query("dup", filter="id == 1", output_fields=["tag"], consistency_level="Strong")
    assert [g["tag"] for g in got] == ["u"], got
    assert count(c, "dup") == 2
    # A delete removes every entity of its keys.
    c.insert("dup", rows([3], 0.0, "c"))
    c.insert("dup", rows([3], 1.0, "d"))
    assert count(c, "dup") == 4
    c.delete("dup", ids=[3])
    assert c.query("dup", filter="id == 3", consistency_level="Strong") == []
    assert count(c, "dup") == 2
    c.drop_collection("dup")
    print("duplicate keys: insert keeps every entity, upsert/delete act on all of them")


def recreate_under_reads(c, uri, seconds=8.0):
    name = "churn"

    def create():
        c.create_collection(name, schema=schema(), index_params=index(c, "FLAT"))
        c.insert(name, rows(range(50), 0.0, "x"))

    create()
    stop, bad, seen = threading.Event(), [], {}

    def reader():
        r = MilvusClient(uri=uri)
        while not stop.is_set():
            for op in (lambda: r.query(name, filter="id < 40", output_fields=["tag", "v"], limit=40),
                       lambda: count(r, name),
                       lambda: r.search(name, [[1.0] * DIM], limit=5, output_fields=["tag"])):
                try:
                    op()
                    seen["ok"] = seen.get("ok", 0) + 1
                except MilvusException as e:
                    seen[e.code] = seen.get(e.code, 0) + 1
                    # Between drop and create the collection is simply not there (or
                    # not loaded yet); anything else is a leak.
                    if e.code not in (100, 101):
                        bad.append((e.code, e.message))

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    deadline = time.time() + seconds
    rounds = 0
    while time.time() < deadline:
        c.drop_collection(name)
        create()
        rounds += 1
    stop.set()
    for t in threads:
        t.join()
    c.drop_collection(name)
    assert not bad, f"readers saw internal errors: {bad[:5]}"
    assert seen.get("ok", 0) > 0, seen
    print(f"drop and re-create under reads: {rounds} rounds, reader answers {seen}")


def raw_call(channel, method, raw, response_type):
    call = channel.unary_unary(SERVICE + method, request_serializer=lambda b: b,
                               response_deserializer=response_type.FromString)
    return call(raw, timeout=10)


def with_invalid_utf8(msg, marker):
    raw = msg.SerializeToString()
    assert raw.count(marker) == 1
    return raw.replace(marker, b"\xff\xfe" + marker[2:])


def invalid_utf8_gets_a_status(c, uri):
    c.create_collection("u8", schema=schema(DataType.VARCHAR), index_params=index(c, "FLAT"))
    channel = grpc.insecure_channel(uri.replace("http://", ""))
    probes = [
        ("HasCollection", milvus_pb2.HasCollectionRequest(collection_name="ZZcoll"), b"ZZcoll",
         lambda r: r.status),
        ("DropCollection", milvus_pb2.DropCollectionRequest(collection_name="ZZcoll"), b"ZZcoll",
         lambda r: r),
        ("Query", milvus_pb2.QueryRequest(collection_name="u8", expr='tag == "ZZfilter"'), b"ZZfilter",
         lambda r: r.status),
    ]
    insert = milvus_pb2.InsertRequest(collection_name="u8", num_rows=1)
    for name, fill in (("id", lambda f: f.scalars.string_data.data.append("ZZkey")),
                       ("tag", lambda f: f.scalars.string_data.data.append("t"))):
        f = insert.fields_data.add(field_name=name, type=schema_pb2.DataType.VarChar)
        fill(f)
    v = insert.fields_data.add(field_name="v", type=schema_pb2.DataType.FloatVector)
    v.vectors.dim = DIM
    v.vectors.float_vector.data.extend([0.0] * DIM)
    probes.append(("Insert", insert, b"ZZkey", lambda r: r.status))
    response_types = {"HasCollection": milvus_pb2.BoolResponse, "DropCollection": common_pb2.Status,
                      "Query": milvus_pb2.QueryResults, "Insert": milvus_pb2.MutationResult}
    for method, msg, marker, status_of in probes:
        try:
            resp = raw_call(channel, method, with_invalid_utf8(msg, marker), response_types[method])
        except grpc.RpcError as e:
            raise AssertionError(f"{method}: gRPC {e.code()} {e.details()} instead of a Milvus status")
        st = status_of(resp)
        assert st.code == 1100 and "UTF-8" in st.reason, (method, st)
    channel.close()
    assert "u8" in c.list_collections()
    assert count(c, "u8") == 0
    c.drop_collection("u8")
    print("invalid UTF-8: a 1100 status in every response type probed")


def main():
    # The readers' expected refusals would each print a traceback.
    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
    binary, workdir = binary_from_argv()
    workdir = workdir or tempfile.mkdtemp(prefix="quiver-hostile-")
    srv = Server(binary, f"{workdir}/data").start()
    try:
        c = MilvusClient(uri=srv.uri)
        probes = [lambda: index_parameters_are_checked(c), lambda: duplicate_keys_follow_milvus(c),
                  lambda: recreate_under_reads(c, srv.uri), lambda: invalid_utf8_gets_a_status(c, srv.uri)]
        only = os.environ.get("HOSTILE_ONLY")  # e.g. HOSTILE_ONLY=2 runs the third probe alone
        for i, probe in enumerate(probes):
            if not only or int(only) == i:
                probe()
        srv.stop()
    except BaseException:
        srv.kill9()
        raise
    print("hostile_data: all probes passed")


if __name__ == "__main__":
    main()
