#!/usr/bin/env python3
"""Token authentication: with `--auth-token root:Milvus` a client with that token works
and a client with another token is refused.

    python auth_token.py target/debug/quiver [workdir]
"""
import tempfile

from pymilvus import MilvusClient

from harness import Server, binary_from_argv


def main():
    binary, workdir = binary_from_argv()
    workdir = workdir or tempfile.mkdtemp(prefix="quiver-auth-")
    srv = Server(binary, f"{workdir}/data", extra=["--auth-token", "root:Milvus"]).start()
    try:
        c = MilvusClient(uri=srv.uri, token="root:Milvus")
        c.create_collection("a", dimension=4)
        assert c.list_collections() == ["a"]
        try:
            MilvusClient(uri=srv.uri, token="root:wrong", timeout=5).list_collections()
        except Exception:
            pass
        else:
            raise AssertionError("a wrong token was accepted")
        print("auth token: ok")
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
