"""The local S3 server script: serves a bucket on 127.0.0.1, reports failures with the server's
log, and stops what it started."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys

import pytest
from botocore.exceptions import EndpointConnectionError

from tests.conftest import REPO
from tools.s3_server import GRPC_OFFSET, S3Server, S3ServerError, free_ports

pytestmark = pytest.mark.e2e


def test_free_ports_are_distinct_pairs_below_the_ephemeral_range():
    ports = free_ports()
    pairs = [p for port in ports.values() for p in (port, port + GRPC_OFFSET)]
    assert len(set(pairs)) == 10 and max(pairs) < 32768


def test_first_start_moves_off_a_port_taken_in_the_meantime(tmp_path):
    server = S3Server(tmp_path)
    taken = server.ports["s3"]
    try:
        with socket.socket() as squatter:
            squatter.bind(("127.0.0.1", taken))
            squatter.listen()
            server.start()
        assert server.ports["s3"] != taken
        assert "Port allocation failed" in server.log_path.read_text()
        server.client().put_object(Bucket=server.bucket, Key="k", Body=b"v")
    finally:
        server.stop()
    assert not server.running()


def test_a_server_that_does_not_answer_in_time_fails_with_its_log_and_is_stopped(tmp_path):
    server = S3Server(tmp_path)
    with pytest.raises(S3ServerError, match=r"(?s)did not answer within.*last \d+ lines of .*weed\.log"):
        server.start(timeout=0.2)
    assert server.process is not None and not server.running()


def test_cli_prints_the_endpoint_and_stops_its_server_on_sigterm(tmp_path):
    cli = subprocess.Popen(
        [sys.executable, "tools/s3_server.py", "--dir", str(tmp_path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        head = [cli.stdout.readline() for _ in range(5)]
        assert all(head), f"the CLI stopped early: {head}\n{cli.stderr.read()}"
        lines = dict(line.strip().split("=", 1) for line in head)
        assert lines["endpoint"].startswith("http://127.0.0.1:"), lines
        server = S3Server(tmp_path, lines["bucket"], lines["access_key_id"], lines["secret_access_key"])
        server.ports["s3"] = int(lines["endpoint"].rsplit(":", 1)[1])
        client = server.client()
        client.put_object(Bucket=lines["bucket"], Key="hello", Body=b"world")
        assert client.get_object(Bucket=lines["bucket"], Key="hello")["Body"].read() == b"world"
        cli.send_signal(signal.SIGTERM)
        assert cli.wait(timeout=30) == 0, cli.stderr.read()
        with pytest.raises(EndpointConnectionError):
            client.head_bucket(Bucket=lines["bucket"])
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
        cli.stdout.close()
        cli.stderr.close()
