#!/usr/bin/env python3
"""Consistency levels through pymilvus: Strong and Session reads see the client's own
acknowledged writes at once; Bounded and Eventually reads are served without error
(they may lag, by Milvus's definition); a guarantee timestamp from the future is not
an error either.

    python consistency_levels.py target/debug/quiver [workdir]
"""
import tempfile

from pymilvus import MilvusClient

from harness import Server, binary_from_argv


def main():
    binary, workdir = binary_from_argv()
    workdir = workdir or tempfile.mkdtemp(prefix="quiver-consistency-")
    srv = Server(binary, f"{workdir}/data").start()
    try:
        c = MilvusClient(uri=srv.uri)
        c.create_collection("levels", dimension=4, metric_type="L2")
        for i, level in enumerate(["Strong", "Session", "Bounded", "Eventually"]):
            c.insert("levels", [{"id": i, "vector": [float(i)] * 4}])
            res = c.query("levels", filter=f"id == {i}", output_fields=["id"], consistency_level=level)
            if level in ("Strong", "Session"):
                assert [r["id"] for r in res] == [i], (level, res)
            hits = c.search("levels", data=[[float(i)] * 4], limit=1, consistency_level=level)
            if level in ("Strong", "Session"):
                assert hits[0][0]["id"] == i, (level, hits)
        # The default (the collection's Bounded) with the client's session timestamp.
        res = c.query("levels", filter="id >= 0", output_fields=["id"], limit=10)
        assert len(res) <= 4
        c.delete("levels", ids=[0])
        res = c.query("levels", filter="id == 0", output_fields=["id"], consistency_level="Strong")
        assert res == [], res
        print("consistency levels: ok")
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
