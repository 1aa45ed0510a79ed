"""Start and stop a real `quiver standalone` process for integration tests."""
import os
import signal
import socket
import subprocess
import sys
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    def __init__(self, binary, data_dir, port=None, extra=()):
        self.binary, self.data_dir = binary, data_dir
        self.port = port or free_port()
        self.extra = list(extra)
        self.proc = None

    @property
    def uri(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout=60):
        os.makedirs(os.path.dirname(os.path.abspath(self.data_dir)), exist_ok=True)
        log = open(self.data_dir + ".log", "ab")
        self.proc = subprocess.Popen(
            [self.binary, "standalone", "--data-dir", self.data_dir, "--host", "127.0.0.1",
             "--port", str(self.port), *self.extra],
            stdout=log, stderr=log)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"quiver exited with {self.proc.returncode}; see {self.data_dir}.log")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("quiver did not start listening")

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self, timeout=30):
        """SIGTERM and wait for a clean exit."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise RuntimeError("quiver did not exit within %ss of SIGTERM" % timeout)
        if code != 0:
            raise RuntimeError(f"quiver exited with {code} after SIGTERM")


def binary_from_argv():
    if len(sys.argv) < 2:
        sys.exit(f"usage: {sys.argv[0]} PATH/TO/quiver [WORKDIR]")
    return sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else None)
