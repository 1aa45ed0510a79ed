#!/usr/bin/env python3
"""pchannels (issue 12): a thousand collections share the data directory's few WAL logs.

Standalone with the default 16 pchannels; 1,000 collections created and written to:
the WAL holds exactly 16 logs (local files under <data>/wal, or with `--wal object`
block objects under <data>/objects/wal), each collection's rows come back after a
kill -9 (replayed from the shared logs), and a restart asking for another number of
pchannels keeps the recorded one. Strong reads on idle collections are answered (they
wait for the pchannel's time tick, asked for at once).

    python pchannels.py target/debug/quiver [workdir]
"""
import os
import tempfile
import time

from pymilvus import DataType, MilvusClient

from harness import Server, binary_from_argv, free_port

COLLECTIONS = 1000
PCHANNELS = 16
DIM = 4


def logs(data, backend):
    root = f"{data}/objects/wal" if backend == "object" else f"{data}/wal"
    return sorted(os.listdir(root)) if os.path.isdir(root) else []


def create_all(c, names):
    """Creates and writes to every collection (no index: pymilvus waits ~0.5 s for each
    index to build, and writes need none)."""
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    for i, name in enumerate(names):
        c.create_collection(name, schema=schema)
        c.insert(name, [{"id": i, "v": [float(i)] * DIM}, {"id": i + 1_000_000, "v": [0.0] * DIM}])


def load(c, names):
    for name in names:
        ip = c.prepare_index_params()
        ip.add_index(field_name="v", index_type="FLAT", metric_type="L2")
        c.create_index(name, ip)
        c.load_collection(name)


def check_rows(c, names, checked):
    for i, name in enumerate(names):
        if name not in checked:
            continue
        got = c.query(name, filter="id >= 0", output_fields=["id"], consistency_level="Strong")
        assert sorted(r["id"] for r in got) == [i, i + 1_000_000], (name, got)


def run(binary, workdir, backend):
    data = f"{workdir}/{backend}"
    extra = ["--wal", backend, "--idle-flush-secs", "3600"]
    srv = Server(binary, data, extra=extra).start()
    c = MilvusClient(uri=srv.uri)
    names = [f"c{i:04d}" for i in range(COLLECTIONS)]
    t0 = time.time()
    create_all(c, names)
    took = time.time() - t0
    found = logs(data, backend)
    assert len(found) == PCHANNELS, f"{COLLECTIONS} collections, {len(found)} logs: {found}"
    assert all(f.startswith("quiver-dml_") for f in found), found
    checked = set(names[::50])
    load(c, sorted(checked))
    check_rows(c, names, checked)

    # Everything since the last flush is only in the shared logs: each collection
    # replays its own records from them.
    srv.kill9()
    srv.port = free_port()
    srv.extra = extra + ["--pchannels", "4"]
    srv.start()
    c = MilvusClient(uri=srv.uri)
    check_rows(c, names, checked)
    more = [f"d{i:04d}" for i in range(20)]
    create_all(c, more)
    found = logs(data, backend)
    assert len(found) == PCHANNELS, f"the recorded number of pchannels changed: {found}"
    srv.stop()
    log = open(srv.data_dir + ".log").read()
    assert "the number of pchannels is fixed" in log, "a different --pchannels was not reported"
    assert "panicked" not in log
    print(f"pchannels ({backend}): {COLLECTIONS} collections on {len(found)} logs, "
          f"created and written in {took:.1f} s")


def main():
    binary, workdir = binary_from_argv()
    workdir = workdir or tempfile.mkdtemp(prefix="quiver-pchannels-")
    for backend in ("local", "object"):
        run(binary, workdir, backend)
    print("pchannels: ok")


if __name__ == "__main__":
    main()
