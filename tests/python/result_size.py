#!/usr/bin/env python3
"""A result too large to send gets a clear status (issue 18): 300 rows with a 60 KB
JSON each, searched with nq=16 and limit=300 asking for the JSON, is about 290 MB of
result, over the 256 MB message limit. It is refused with Milvus's status for this
(65535, "results exceed the maxOutputSize limit", the size, the limit and how to
shrink the request), not a misleading "node unreachable"; a smaller request works and
the server stays healthy.

    python result_size.py target/debug/quiver [workdir]
"""
import tempfile
import time

from pymilvus import DataType, MilvusClient, MilvusException

from harness import Server, binary_from_argv

DIM, N = 8, 300


def main():
    binary, workdir = binary_from_argv()
    workdir = workdir or tempfile.mkdtemp(prefix="quiver-result-size-")
    srv = Server(binary, f"{workdir}/data").start()
    try:
        c = MilvusClient(uri=srv.uri)
        schema = c.create_schema()
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
        schema.add_field("j", DataType.JSON)
        ip = c.prepare_index_params()
        ip.add_index("v", index_type="FLAT", metric_type="L2")
        c.create_collection("big", schema=schema, index_params=ip)
        blob = "a" * 60000
        for b in range(0, N, 100):
            c.insert("big", [{"id": i, "v": [float(i)] * DIM, "j": {"x": blob}} for i in range(b, b + 100)])
        q = [[0.0] * DIM]
        t = time.time()
        try:
            c.search("big", q * 16, limit=N, output_fields=["j"], timeout=60, consistency_level="Strong")
            raise AssertionError("a 290 MB result was sent")
        except MilvusException as e:
            assert e.code == 65535, e
            assert "exceed the maxOutputSize limit" in e.message, e.message
            assert "the limit is 268435456 bytes" in e.message and "fewer rows" in e.message, e.message
        refused = time.time() - t
        hits = c.search("big", q, limit=N, output_fields=["j"], timeout=60)[0]
        assert len(hits) == N and len(hits[0]["entity"]["j"]["x"]) == 60000
        assert len(c.search("big", q * 16, limit=10, output_fields=["j"])) == 16
        print(f"result size: ok (refused in {refused:.1f}s with a clear status; smaller requests served)")
    finally:
        if srv.proc and srv.proc.poll() is None:
            srv.stop()


if __name__ == "__main__":
    main()
