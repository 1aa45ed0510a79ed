#!/usr/bin/env python3
"""One damaged file takes down one collection, not the server (issue 18, item 8).

Three collections with data; one file of one of them is damaged while the server is
stopped: a byte flipped in the middle of its WAL, or (after a flush) one of its segment
objects deleted. On restart the server serves the two healthy collections exactly and
answers for the damaged one with code 604 naming the file; `quiver inspect` reports it
(exit status 1); `quiver repair --truncate-wal` (resp. `--drop-damaged-segments`)
repairs it, saying what was lost, and after a restart it loads with what survived. A
WAL file deleted after a flush is the same kind of damage (the log no longer reaches
the flush checkpoint). A truncated meta.redb refuses the start with a message naming
the file.

    python damaged_files.py target/debug/quiver [workdir]
"""
import glob
import logging
import os
import re
import subprocess
import tempfile

import numpy as np
from pymilvus import DataType, MilvusClient, MilvusException

from harness import Server, binary_from_argv, free_port

DIM = 4
BATCH = 50
BATCHES = 10
NAMES = ["healthy_a", "damaged", "healthy_c"]
DAMAGED_CODE = 604


def create(c, name):
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    ip = c.prepare_index_params()
    ip.add_index(field_name="v", index_type="FLAT", metric_type="L2")
    c.create_collection(name, schema=schema, index_params=ip)


def insert_batches(c, name, batches, flush_after=()):
    for b in batches:
        keys = range(b * BATCH, (b + 1) * BATCH)
        c.insert(name, [{"id": k, "v": [float(k)] * DIM} for k in keys])
        if b in flush_after:
            c.flush(name)


def ids_of(c, name):
    rows = c.query(name, filter="id >= 0", output_fields=["id"], limit=16384)
    return sorted(r["id"] for r in rows)


def check_healthy(c, name):
    c.load_collection(name)
    assert ids_of(c, name) == list(range(BATCH * BATCHES)), name
    hits = c.search(name, data=[[7.0] * DIM], limit=3, output_fields=["id"])[0]
    assert [h["id"] for h in hits] == [7, 6, 8] or [h["id"] for h in hits] == [7, 8, 6], hits


def expect_damaged(c, name, *needles):
    """Load and search of `name` fail with the damage status naming the file."""
    for what, call in [("load", lambda: c.load_collection(name)),
                       ("search", lambda: c.search(name, data=[[1.0] * DIM], limit=1))]:
        try:
            call()
        except MilvusException as e:
            assert e.code == DAMAGED_CODE, (what, e.code, e.message)
            for n in ("is damaged", *needles):
                assert n in e.message, (what, n, e.message)
        else:
            raise AssertionError(f"{what} of a damaged collection succeeded")
    # The catalog still answers for it.
    assert c.describe_collection(name)["collection_name"] == name
    assert sorted(c.list_collections()) == sorted(NAMES)


def quiver(binary, *args):
    p = subprocess.run([binary, *args], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


def restart(srv):
    srv.port = free_port()  # a fresh channel: pymilvus backs off on a dead one
    srv.start()
    return MilvusClient(uri=srv.uri)


def fresh(binary, workdir, tag):
    srv = Server(binary, f"{workdir}/{tag}", extra=["--idle-flush-secs", "3600"]).start()
    c = MilvusClient(uri=srv.uri)
    for n in NAMES:
        create(c, n)
    ids = {n: c.describe_collection(n)["collection_id"] for n in NAMES}
    return srv, c, ids


def wal_of(data_dir, collection_id):
    """The WAL file of the pchannel a one-shard collection rides on: the one whose records
    carry its vchannel's name (`quiver-dml_<n>_<id>v0`)."""
    tag = f"_{collection_id}v0".encode()
    found = [f for f in glob.glob(f"{data_dir}/wal/quiver-dml_*/*.wal") if tag in open(f, "rb").read()]
    assert len(found) == 1, found
    return found[0]


def wal_damage(binary, workdir):
    srv, c, ids = fresh(binary, workdir, "wal")
    for n in NAMES:
        insert_batches(c, n, range(BATCHES))
    # Inspect refuses while the server holds the data directory.
    code, out = quiver(binary, "inspect", "--data-dir", srv.data_dir)
    assert code != 0 and "in use" in out, out
    srv.kill9()  # the rows live only in the WALs
    wal = wal_of(srv.data_dir, ids["damaged"])
    data = bytearray(open(wal, "rb").read())
    data[len(data) // 2] ^= 0x5A
    open(wal, "wb").write(bytes(data))

    c = restart(srv)
    for n in ("healthy_a", "healthy_c"):
        check_healthy(c, n)
    expect_damaged(c, "damaged", os.path.basename(wal), "record")
    srv.stop()

    code, out = quiver(binary, "inspect", "--data-dir", srv.data_dir)
    assert code == 1 and "WAL DAMAGED" in out and os.path.basename(wal) in out, out
    code, out = quiver(binary, "repair", "--data-dir", srv.data_dir, "--collection", "damaged")
    assert code == 1 and "nothing was changed" in out, out
    code, out = quiver(binary, "repair", "--data-dir", srv.data_dir, "--collection", "damaged",
                       "--truncate-wal")
    assert code == 0, out
    print(out)
    lost = re.search(r"LOST: WAL records (\d+)\.\.=(\d+)", out)
    assert lost, out
    code, out = quiver(binary, "inspect", "--data-dir", srv.data_dir)
    assert code == 0 and "no damage found" in out, out

    c = restart(srv)
    c.load_collection("damaged")
    got = ids_of(c, "damaged")
    # What survived is a prefix of whole batches: every record before the damage.
    assert 0 < len(got) < BATCH * BATCHES and len(got) % BATCH == 0, len(got)
    assert got == list(range(len(got))), got[:5]
    for n in ("healthy_a", "healthy_c"):
        check_healthy(c, n)
    srv.stop()
    return srv


def wal_file_deleted(binary, workdir):
    """A flushed collection whose only WAL file is deleted after a kill -9: the rows after
    the checkpoint are gone, and that is damage to report, not a smaller collection (it
    used to load with only the flushed rows and panic on the next write)."""
    srv, c, ids = fresh(binary, workdir, "walfile")
    for n in NAMES:
        insert_batches(c, n, range(BATCHES) if n != "damaged" else range(5), flush_after=(1,))
    srv.kill9()
    wal = wal_of(srv.data_dir, ids["damaged"])
    os.remove(wal)

    c = restart(srv)
    for n in ("healthy_a", "healthy_c"):
        check_healthy(c, n)
    # The checkpoint is the log's end at the flush (records and time ticks before it).
    expect_damaged(c, "damaged", "replay must start at record", "a WAL file is missing")
    try:
        c.insert("damaged", [{"id": 9999, "v": [0.0] * DIM}])
    except MilvusException as e:
        assert e.code == DAMAGED_CODE, (e.code, e.message)
    else:
        raise AssertionError("insert into a damaged collection succeeded")
    srv.stop()
    assert "panicked" not in open(srv.data_dir + ".log").read()

    code, out = quiver(binary, "inspect", "--data-dir", srv.data_dir)
    assert code == 1 and "WAL DAMAGED" in out and "a WAL file is missing" in out, out
    code, out = quiver(binary, "repair", "--data-dir", srv.data_dir, "--collection", "damaged")
    assert code == 1 and re.search(r"re-bases the log at the flush checkpoint \d+", out), out
    code, out = quiver(binary, "repair", "--data-dir", srv.data_dir, "--collection", "damaged",
                       "--truncate-wal")
    assert code == 0 and re.search(r"LOST: every WAL record from \d+ on", out), out
    print(out)
    code, out = quiver(binary, "inspect", "--data-dir", srv.data_dir)
    assert code == 0 and "no damage found" in out, out

    c = restart(srv)
    c.load_collection("damaged")
    assert ids_of(c, "damaged") == list(range(2 * BATCH))  # what the flush kept
    c.insert("damaged", [{"id": 9999, "v": [0.0] * DIM}])
    assert ids_of(c, "damaged")[-1] == 9999
    srv.stop()


def segment_damage(binary, workdir):
    srv, c, ids = fresh(binary, workdir, "segment")
    for n in NAMES:
        insert_batches(c, n, range(BATCHES), flush_after=(5, BATCHES - 1))
    srv.stop()
    segs = sorted(glob.glob(f"{srv.data_dir}/objects/insert_log/{ids['damaged']}/*/*"))
    assert len(segs) == 2, segs
    victim = sorted(glob.glob(f"{segs[0]}/**/*", recursive=True))
    victim = [p for p in victim if os.path.isfile(p)][0]
    os.remove(victim)

    c = restart(srv)
    for n in ("healthy_a", "healthy_c"):
        check_healthy(c, n)
    expect_damaged(c, "damaged", "not found")
    srv.stop()

    code, out = quiver(binary, "inspect", "--data-dir", srv.data_dir)
    assert code == 1 and "DAMAGED" in out and "segment" in out, out
    code, out = quiver(binary, "repair", "--data-dir", srv.data_dir, "--collection", "damaged",
                       "--drop-damaged-segments")
    assert code == 0, out
    print(out)
    lost = int(re.search(r"LOST: (\d+) rows", out).group(1))
    assert lost == 6 * BATCH, out  # the first flush sealed batches 0..=5

    c = restart(srv)
    c.load_collection("damaged")
    assert ids_of(c, "damaged") == list(range(6 * BATCH, BATCHES * BATCH))
    srv.stop()
    return srv


def meta_damage(binary, srv):
    meta = f"{srv.data_dir}/meta.redb"
    with open(meta, "r+b") as f:
        f.truncate(os.path.getsize(meta) // 2)
    srv.port = free_port()
    try:
        srv.start(timeout=20)
    except RuntimeError:
        pass
    else:
        raise AssertionError("started on a truncated meta store")
    log = open(srv.data_dir + ".log").read()
    assert "meta.redb is damaged" in log and "backup" in log, log[-2000:]
    assert "panicked" not in log, log[-2000:]
    code, out = quiver(binary, "inspect", "--data-dir", srv.data_dir)
    assert code != 0 and "meta.redb is damaged" in out, out


def main():
    # pymilvus logs every failed RPC with a traceback; this test makes some on purpose.
    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
    binary, workdir = binary_from_argv()
    workdir = workdir or tempfile.mkdtemp(prefix="quiver-damage-")
    srv = wal_damage(binary, workdir)
    wal_file_deleted(binary, workdir)
    segment_damage(binary, workdir)
    meta_damage(binary, srv)
    print("damaged_files: ok")


if __name__ == "__main__":
    main()
