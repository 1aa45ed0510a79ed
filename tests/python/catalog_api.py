#!/usr/bin/env python3
"""Databases, aliases and partition-level loading as a pymilvus user meets them:
create / list / describe / alter / drop databases, collections of the same name in
two databases kept apart (and across a restart), `MilvusClient(db_name=...)` and
`use_database`, aliases (create / alter / describe / list / drop, used wherever a
collection name is, refused where Milvus refuses them), and LoadPartitions / ReleasePartitions deciding what reads see.

    python catalog_api.py target/debug/quiver [workdir]
"""
import os
import tempfile
import time

from pymilvus import DataType, MilvusClient, MilvusException

from harness import Server, binary_from_argv


def expect_error(fn, code=None, text=None):
    try:
        fn()
    except MilvusException as e:
        assert code is None or e.code == code, (e.code, e.message)
        assert text is None or text in e.message, e.message
        return
    raise AssertionError("expected a MilvusException")


def make_collection(c, name, rows):
    s = MilvusClient.create_schema(auto_id=False)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    ip = c.prepare_index_params()
    ip.add_index(field_name="v", index_type="FLAT", metric_type="L2")
    c.create_collection(name, schema=s, index_params=ip)
    c.insert(name, rows)


def ids(rows):
    return sorted(r["id"] for r in rows)


def databases(srv):
    c = MilvusClient(uri=srv.uri)
    assert c.list_databases() == ["default"], c.list_databases()
    c.create_database("shop", properties={"database.replica.number": "1"})
    expect_error(lambda: c.create_database("shop"), text="already exist")
    expect_error(lambda: c.create_database("9bad-name"), code=802)
    assert sorted(c.list_databases()) == ["default", "shop"]
    d = c.describe_database("shop")
    assert d["name"] == "shop" and d["database.replica.number"] == "1", d
    c.alter_database_properties("shop", {"owner": "ana"})
    c.drop_database_properties("shop", ["database.replica.number"])
    d = c.describe_database("shop")
    assert d.get("owner") == "ana" and "database.replica.number" not in d, d
    expect_error(lambda: c.describe_database("nowhere"), code=800)
    c.alter_database_properties("default", {"team": "search"})
    assert c.describe_database("default").get("team") == "search"

    # The same collection name in two databases: two collections.
    make_collection(c, "items", [{"id": i, "v": [float(i), 0.0]} for i in range(5)])
    shop = MilvusClient(uri=srv.uri, db_name="shop")
    make_collection(shop, "items", [{"id": 100 + i, "v": [float(i), 1.0]} for i in range(3)])
    assert shop.list_collections() == ["items"]
    assert ids(c.query("items", filter="id >= 0", consistency_level="Strong")) == list(range(5))
    assert ids(shop.query("items", filter="id >= 0", consistency_level="Strong")) == [100, 101, 102]
    c.using_database("shop")
    assert ids(c.query("items", filter="id >= 0", consistency_level="Strong")) == [100, 101, 102]
    c.using_database("default")

    # A database with collections cannot be dropped; an empty one can, twice.
    expect_error(lambda: c.drop_database("shop"), text="not empty")
    expect_error(lambda: c.drop_database("default"))
    c.create_database("scratch")
    c.drop_database("scratch")
    c.drop_database("scratch")
    assert sorted(c.list_databases()) == ["default", "shop"]

    # Unknown databases are named in the error.
    ghost = MilvusClient(uri=srv.uri)
    ghost.create_database("ghost")
    ghost.using_database("ghost")
    c.drop_database("ghost")
    expect_error(lambda: ghost.list_collections(), code=800)
    expect_error(lambda: make_collection(ghost, "x", []), code=800)


def after_restart(srv):
    c = MilvusClient(uri=srv.uri)
    assert sorted(c.list_databases()) == ["default", "shop"], c.list_databases()
    assert c.describe_database("shop").get("owner") == "ana"
    shop = MilvusClient(uri=srv.uri, db_name="shop")
    assert ids(shop.query("items", filter="id >= 0", consistency_level="Strong")) == [100, 101, 102]
    assert ids(c.query("items", filter="id >= 0", consistency_level="Strong")) == list(range(5))
    shop.drop_collection("items")
    c.drop_database("shop")
    assert c.describe_alias("stays")["collection_name"] == "green"
    assert c.describe_database("default").get("team") == "search"
    assert ids(c.query("stays", filter="id >= 0", consistency_level="Strong")) == [10, 11]
    assert c.list_databases() == ["default"]


def partitions(srv):
    c = MilvusClient(uri=srv.uri)
    s = MilvusClient.create_schema(auto_id=False)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    ip = c.prepare_index_params()
    ip.add_index(field_name="v", index_type="FLAT", metric_type="L2")
    c.create_collection("parts", schema=s, index_params=ip)
    c.create_partition("parts", "p1")
    c.create_partition("parts", "p2")
    c.insert("parts", [{"id": i, "v": [float(i), 0.0]} for i in range(0, 3)])
    c.insert("parts", [{"id": i, "v": [float(i), 0.0]} for i in range(10, 13)], partition_name="p1")
    c.insert("parts", [{"id": i, "v": [float(i), 0.0]} for i in range(20, 23)], partition_name="p2")
    c.release_collection("parts")

    c.load_partitions("parts", ["p1"])
    assert c.get_load_state("parts")["state"].name == "Loaded"
    assert c.get_load_state("parts", partition_name="p1")["state"].name == "Loaded"
    assert c.get_load_state("parts", partition_name="p2")["state"].name == "NotLoad"
    q = lambda **kw: ids(c.query("parts", filter="id >= 0", consistency_level="Strong", **kw))
    assert q() == [10, 11, 12], q()
    expect_error(lambda: q(partition_names=["p2"]), code=201)
    hits = c.search("parts", data=[[0.0, 0.0]], limit=10, consistency_level="Strong")[0]
    assert sorted(h["id"] for h in hits) == [10, 11, 12], hits

    # A loaded partition cannot be dropped; a released one can.
    expect_error(lambda: c.drop_partition("parts", "p1"), text="release it first")
    c.load_partitions("parts", ["p2"])
    assert q() == [10, 11, 12, 20, 21, 22]
    c.release_partitions("parts", ["p1"])
    assert q() == [20, 21, 22]
    c.drop_partition("parts", "p1")

    c.release_partitions("parts", ["p2"])
    assert c.get_load_state("parts")["state"].name == "NotLoad"
    expect_error(lambda: q(), code=101)

    # LoadCollection serves every partition, including ones created later.
    c.load_collection("parts")
    c.create_partition("parts", "p3")
    c.insert("parts", [{"id": 30, "v": [30.0, 0.0]}], partition_name="p3")
    assert q() == [0, 1, 2, 20, 21, 22, 30]
    assert q(partition_names=["p3"]) == [30]
    expect_error(lambda: c.load_partitions("parts", ["nope"]), code=200)
    stats = c.get_partition_stats("parts", "p2")
    assert stats["row_count"] == 3, stats


def dropped_collection_objects_are_removed(srv, data_dir):
    """Dropping a collection gives its object storage back (the GC sweep)."""
    c = MilvusClient(uri=srv.uri)
    make_collection(c, "scratch", [{"id": i, "v": [float(i), 0.0]} for i in range(200)])
    c.flush("scratch")
    cid = c.describe_collection("scratch")["collection_id"]
    dirs = [os.path.join(data_dir, "objects", kind, str(cid)) for kind in ("insert_log", "stats_log")]
    assert all(os.path.isdir(d) for d in dirs), dirs
    c.drop_collection("scratch")
    deadline = time.time() + 20
    while any(os.path.exists(d) for d in dirs) and time.time() < deadline:
        time.sleep(0.2)
    assert not any(os.path.exists(d) for d in dirs), f"objects of dropped collection {cid} remain"


def aliases(srv):
    c = MilvusClient(uri=srv.uri)
    make_collection(c, "blue", [{"id": i, "v": [float(i), 0.0]} for i in range(3)])
    make_collection(c, "green", [{"id": 10 + i, "v": [float(i), 0.0]} for i in range(2)])
    c.create_alias("blue", "live")
    c.create_alias("blue", "live")  # the same again is fine
    q = lambda name: ids(c.query(name, filter="id >= 0", consistency_level="Strong"))
    assert q("live") == [0, 1, 2]
    hits = c.search("live", data=[[0.0, 0.0]], limit=1, consistency_level="Strong")[0]
    assert hits[0]["id"] == 0, hits
    c.insert("live", [{"id": 3, "v": [3.0, 0.0]}])
    assert q("blue") == [0, 1, 2, 3]
    assert c.describe_alias("live")["collection_name"] == "blue"
    assert c.describe_collection("live")["collection_name"] == "blue"
    assert c.list_aliases("blue")["aliases"] == ["live"]
    expect_error(lambda: c.create_alias("green", "live"), code=1602)
    expect_error(lambda: c.create_alias("green", "blue"), code=1601)
    expect_error(lambda: make_collection(c, "live", []), code=1601)
    expect_error(lambda: c.drop_collection("blue"), text="has aliases")
    expect_error(lambda: c.drop_collection("live"), text="via alias")
    expect_error(lambda: c.alter_alias("green", "nope"), code=1600)
    # Blue/green switch: the alias moves, readers follow.
    c.alter_alias("green", "live")
    assert q("live") == [10, 11]
    assert c.list_aliases("blue")["aliases"] == []
    c.drop_collection("blue")
    c.drop_alias("live")
    c.drop_alias("live")
    expect_error(lambda: q("live"), code=100)
    expect_error(lambda: c.describe_alias("live"), code=1600)
    c.create_alias("green", "stays")


def main():
    binary, workdir = binary_from_argv()
    workdir = workdir or tempfile.mkdtemp(prefix="quiver-db-")
    srv = Server(binary, f"{workdir}/data").start()
    try:
        databases(srv)
        partitions(srv)
        aliases(srv)
        dropped_collection_objects_are_removed(srv, f"{workdir}/data")
        srv.stop()
        srv = Server(binary, f"{workdir}/data").start()
        after_restart(srv)
    finally:
        if srv.proc.poll() is None:
            srv.stop()
    print("catalog api: ok")


if __name__ == "__main__":
    main()
