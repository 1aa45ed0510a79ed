#!/usr/bin/env python3
"""Standalone on the object-storage WAL (`--wal object`), as an operator runs it.

The WAL lives as block objects under <data>/objects/wal/<pchannel>/ and nothing under
<data>/wal; rows survive a clean restart; starting the same data directory with the
other backend is refused with a message naming the right flag, and nothing is touched.

    python wal_backend.py target/debug/quiver [workdir]
"""
import os
import subprocess
import tempfile

import numpy as np
from pymilvus import DataType, MilvusClient

from harness import Server, binary_from_argv

DIM = 8


def rows(lo, hi):
    rng = np.random.default_rng(lo)
    return [{"id": i, "v": rng.random(DIM).astype("float32").tolist()} for i in range(lo, hi)]


def refused(binary, data_dir, *flags):
    """Starts the server with `flags`; it must exit non-zero at once. Returns its output."""
    p = subprocess.run([binary, "standalone", "--data-dir", data_dir, "--host", "127.0.0.1",
                        "--port", "1", *flags], capture_output=True, text=True, timeout=60)
    assert p.returncode != 0, f"started with {flags} over the other backend's data"
    return p.stdout + p.stderr


def main():
    binary, workdir = binary_from_argv()
    workdir = workdir or tempfile.mkdtemp(prefix="quiver-walbackend-")
    data = f"{workdir}/data"
    srv = Server(binary, data, extra=["--wal", "object"]).start()
    c = MilvusClient(uri=srv.uri)
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    ip = c.prepare_index_params()
    ip.add_index(field_name="v", index_type="FLAT", metric_type="L2")
    c.create_collection("objwal", schema=schema, index_params=ip, num_shards=2)
    for lo in range(0, 2000, 500):
        assert c.insert("objwal", rows(lo, lo + 500))["insert_count"] == 500
    c.delete("objwal", filter="id < 100")
    logs = sorted(os.listdir(f"{data}/objects/wal"))
    assert len(logs) == 2, f"one log per pchannel of the two shards, found {logs}"
    for log in logs:
        blocks = os.listdir(f"{data}/objects/wal/{log}")
        assert blocks and all(len(b) == 20 and b.isdigit() for b in blocks), blocks
    assert not os.path.exists(f"{data}/wal") or not os.listdir(f"{data}/wal"), "local WAL files written"
    srv.stop()

    out = refused(binary, data)
    assert "--wal object" in out, out

    srv = Server(binary, data, extra=["--wal", "object"]).start()
    c = MilvusClient(uri=srv.uri)
    c.load_collection("objwal")
    n = c.query("objwal", filter="", output_fields=["count(*)"], consistency_level="Strong")
    assert n[0]["count(*)"] == 1900, n
    hit = c.search("objwal", data=[rows(1500, 1501)[0]["v"]], limit=1, consistency_level="Strong")
    assert hit[0][0]["id"] == 1500, hit
    srv.stop()

    # And the other way round: local data refuses the object backend.
    local = f"{workdir}/local"
    srv = Server(binary, local).start()
    c = MilvusClient(uri=srv.uri)
    c.create_collection("loc", schema=schema, index_params=ip)
    c.insert("loc", rows(0, 10))
    srv.stop()
    out = refused(binary, local, "--wal", "object")
    assert "--wal local" in out, out
    print("wal_backend: ok")


if __name__ == "__main__":
    main()
