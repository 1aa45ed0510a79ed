#!/usr/bin/env python3
"""What a pymilvus user sees beyond the quickstart: VarChar primary keys, nullable
fields (null rows come back as None), `*` output fields (dynamic keys included),
auto-id, IP ordering, upsert, and clear errors for bad input.

    python api_behaviour.py target/debug/quiver [workdir]
"""
import tempfile

import math

from pymilvus import AnnSearchRequest, DataType, MilvusClient, MilvusException, RRFRanker, WeightedRanker

from harness import Server, binary_from_argv


def expect_error(fn, code=None):
    try:
        fn()
    except MilvusException as e:
        assert code is None or e.code == code, (e.code, e.message)
        return
    raise AssertionError("expected a MilvusException")


def grouping_search(c):
    """group_by_field: `limit` groups of up to `group_size` hits, best group first,
    each group's hits together; compared with the same grouping done by hand."""
    s = MilvusClient.create_schema(auto_id=False)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("vector", DataType.FLOAT_VECTOR, dim=2)
    s.add_field("doc", DataType.INT64)
    s.add_field("tag", DataType.VARCHAR, max_length=8)
    ip = c.prepare_index_params()
    ip.add_index(field_name="vector", index_type="FLAT", metric_type="L2")
    c.create_collection("chunks", schema=s, index_params=ip)
    # 40 documents of 1-5 chunks; the chunk vectors lie on a line, so every distance
    # to the query is distinct and the expected answer is exact.
    rows, n = [], 0
    for doc in range(40):
        for _ in range(1 + doc % 5):
            rows.append({"id": n, "vector": [float(n), 0.0], "doc": doc, "tag": f"t{doc % 3}"})
            n += 1
    c.insert("chunks", rows)
    q = [37.2, 0.0]
    by_dist = sorted(rows, key=lambda r: (r["vector"][0] - q[0]) ** 2)

    def expected(limit, size, offset=0, key="doc"):
        order, groups = [], {}
        for r in by_dist:
            g = groups.setdefault(r[key], [])
            if not g:
                order.append(r[key])
            if len(g) < size:
                g.append(r["id"])
        return [i for k in order[offset:offset + limit] for i in groups[k]]

    def got(**kw):
        res = c.search("chunks", data=[q], output_fields=["doc"], consistency_level="Strong", **kw)
        return [h["id"] for h in res[0]], res[0]

    ids, hits = got(limit=5, group_by_field="doc")
    assert ids == expected(5, 1), (ids, expected(5, 1))
    assert len({h["entity"]["doc"] for h in hits}) == 5
    ids, _ = got(limit=4, group_by_field="doc", group_size=3, strict_group_size=True)
    assert ids == expected(4, 3), (ids, expected(4, 3))
    ids, _ = got(limit=3, offset=2, group_by_field="doc", group_size=2)
    assert ids == expected(3, 2, offset=2), (ids, expected(3, 2, offset=2))
    ids, _ = got(limit=10, group_by_field="tag", group_size=2)
    assert ids == expected(10, 2, key="tag") and len(ids) == 6, ids
    # Search by primary key: the rows' own vectors are the queries.
    res = c.search("chunks", ids=[5, 20], limit=3, consistency_level="Strong")
    assert [h["id"] for h in res[0]] == [5, 4, 6] and res[0][0]["distance"] == 0.0, res
    assert [h["id"] for h in res[1]][0] == 20, res
    expect_error(lambda: c.search("chunks", ids=[10_000], limit=3), 1100)
    expect_error(lambda: got(limit=3, group_by_field="vector"), 1100)
    expect_error(lambda: got(limit=3, group_by_field="nope"), 1700)
    expect_error(lambda: got(limit=3, group_by_field="doc", group_size=0), 1100)


def hybrid(c):
    """hybrid_search over two vector fields, checked against the same fusion done by
    hand from two plain searches."""
    s = MilvusClient.create_schema(auto_id=False)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("a", DataType.FLOAT_VECTOR, dim=2)
    s.add_field("b", DataType.FLOAT_VECTOR, dim=3)
    s.add_field("label", DataType.VARCHAR, max_length=8)
    ip = c.prepare_index_params()
    ip.add_index(field_name="a", index_type="FLAT", metric_type="L2")
    ip.add_index(field_name="b", index_type="FLAT", metric_type="IP")
    c.create_collection("multi", schema=s, index_params=ip)
    rows = [{"id": i, "a": [float(i), 0.0], "b": [math.sin(i), math.cos(i), 0.1 * i],
             "label": f"r{i}"} for i in range(30)]
    c.insert("multi", rows)
    qa, qb = [[7.3, 0.0]], [[0.2, 0.9, 1.0]]
    ra = AnnSearchRequest(data=qa, anns_field="a", param={}, limit=10)
    rb = AnnSearchRequest(data=qb, anns_field="b", param={}, limit=10, expr="id > 3")
    plain_a = c.search("multi", data=qa, anns_field="a", limit=10, consistency_level="Strong")[0]
    plain_b = c.search("multi", data=qb, anns_field="b", limit=10, filter="id > 3", consistency_level="Strong")[0]

    def fused(score_of):
        total = {}
        for i, hits in enumerate((plain_a, plain_b)):
            for rank, h in enumerate(hits):
                total[h["id"]] = total.get(h["id"], 0.0) + score_of(i, rank, h["distance"])
        return sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))

    got = c.hybrid_search("multi", [ra, rb], RRFRanker(20), limit=5, output_fields=["label"],
                          consistency_level="Strong")[0]
    want = fused(lambda i, rank, d: 1.0 / (20 + rank + 1))[:5]
    assert [h["id"] for h in got] == [k for k, _ in want], (got, want)
    assert all(abs(h["distance"] - w) < 1e-5 for h, (_, w) in zip(got, want))
    assert [h["entity"]["label"] for h in got] == [f"r{k}" for k, _ in want]

    norm = [lambda d: 1 - 2 * math.atan(d) / math.pi, lambda d: 0.5 + math.atan(d) / math.pi]
    got = c.hybrid_search("multi", [ra, rb], WeightedRanker(0.3, 0.7), limit=4, offset=1,
                          consistency_level="Strong")[0]
    want = fused(lambda i, rank, d: (0.3, 0.7)[i] * norm[i](d))[1:5]
    assert [h["id"] for h in got] == [k for k, _ in want], (got, want)
    expect_error(lambda: c.hybrid_search("multi", [ra, rb], WeightedRanker(0.5), limit=3), 1100)


def main():
    binary, workdir = binary_from_argv()
    workdir = workdir or tempfile.mkdtemp(prefix="quiver-api-")
    srv = Server(binary, f"{workdir}/data").start()
    try:
        c = MilvusClient(uri=srv.uri)
        s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
        s.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=16)
        s.add_field("v", DataType.FLOAT_VECTOR, dim=4)
        s.add_field("age", DataType.INT32, nullable=True)
        s.add_field("score", DataType.DOUBLE)
        ip = c.prepare_index_params()
        ip.add_index(field_name="v", index_type="AUTOINDEX", metric_type="COSINE")
        c.create_collection("vc", schema=s, index_params=ip)
        rows = [{"pk": f"k{i}", "v": [float(i), 1.0, 0.5, -1.0], "age": (i if i % 3 else None),
                 "score": i * 0.5, "extra": {"a": i}} for i in range(20)]
        assert c.insert("vc", rows)["insert_count"] == 20

        got = c.get("vc", ids=["k1", "k3"], output_fields=["pk", "age", "extra"])
        by = {r["pk"]: r for r in got}
        assert by["k1"]["age"] == 1 and by["k3"]["age"] is None and by["k1"]["extra"] == {"a": 1}, got

        nulls = c.query("vc", filter="age is null", output_fields=["pk", "age"], consistency_level="Strong")
        assert sorted(r["pk"] for r in nulls) == sorted(f"k{i}" for i in range(0, 20, 3)), nulls
        assert all(r["age"] is None for r in nulls)

        star = c.query("vc", filter="pk == 'k4'", output_fields=["*"], consistency_level="Strong")
        assert star[0]["extra"] == {"a": 4} and star[0]["v"] == [4.0, 1.0, 0.5, -1.0], star

        page = c.query("vc", filter="score >= 0", output_fields=["pk"], limit=3, offset=2, consistency_level="Strong")
        assert [r["pk"] for r in page] == ["k10", "k11", "k12"], page

        c.delete("vc", ids=["k1"])
        c.upsert("vc", [{"pk": "k2", "v": [9, 9, 9, 9], "age": 99, "score": 1.0}])
        assert c.get("vc", ids=["k2"], output_fields=["age"])[0]["age"] == 99
        assert c.get("vc", ids=["k1"]) == []
        assert c.get_collection_stats("vc")["row_count"] == 19

        expect_error(lambda: c.search("vc", data=[[1.0, 1.0, 0.5, -1.0]], limit=20000), 1100)
        expect_error(lambda: c.insert("vc", [{"pk": "x" * 40, "v": [1, 1, 1, 1], "score": 1.0}]), 1100)
        expect_error(lambda: c.drop_index("vc", "v"))
        expect_error(lambda: c.create_collection("vc", dimension=8))
        expect_error(lambda: c.query("vc", filter="score > 'abc'"), 1100)

        # search_iterator pages with range search (radius / range_filter).
        it = c.search_iterator("vc", data=[[3.0, 1.0, 0.5, -1.0]], batch_size=4, limit=12, output_fields=["pk"])
        seen = []
        while True:
            page = it.next()
            if not page:
                break
            seen.extend(h["pk"] for h in page)
        it.close()
        assert len(seen) == 12 and len(set(seen)) == 12, seen

        c.create_collection("ai", dimension=3, auto_id=True, metric_type="IP")
        ids = c.insert("ai", [{"vector": [1, 2, 3]}, {"vector": [3, 2, 1]}])["ids"]
        assert len(set(ids)) == 2
        hits = c.search("ai", data=[[1, 0, 0]], limit=2, consistency_level="Strong")[0]
        assert [h["id"] for h in hits] == [ids[1], ids[0]] and hits[0]["distance"] == 3.0, hits
        c.release_collection("ai")
        expect_error(lambda: c.search("ai", data=[[1, 0, 0]], limit=2), 101)
        hits = c.search("vc", ids=["k4"], limit=2, consistency_level="Strong")[0]
        assert hits[0].get("pk", hits[0].get("id")) == "k4", hits
        grouping_search(c)
        hybrid(c)
        print("api behaviour: ok")
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
