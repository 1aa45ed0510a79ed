#!/usr/bin/env python3
"""Runs ../shared/conformance/quickstart.py against a fresh `quiver standalone`, then
restarts the server with SIGTERM and checks a clean exit.

    python run_conformance.py target/debug/quiver QUICKSTART.py [workdir]
"""
import subprocess
import sys
import tempfile

from harness import Server


def main():
    binary, quickstart = sys.argv[1], sys.argv[2]
    workdir = sys.argv[3] if len(sys.argv) > 3 else tempfile.mkdtemp(prefix="quiver-conf-")
    srv = Server(binary, f"{workdir}/data").start()
    try:
        out = subprocess.run([sys.executable, quickstart, "--uri", srv.uri], capture_output=True, text=True, timeout=600)
    finally:
        srv.stop()
    print(out.stdout)
    print(out.stderr, file=sys.stderr)
    last = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    if out.returncode != 0 or not last.endswith(" 0 failed"):
        sys.exit(f"conformance failed: {last!r}")


if __name__ == "__main__":
    main()
