"""Sharing artifacts through a real S3 server (SeaweedFS on 127.0.0.1, from requirements.txt): a
push cut short by a server crash and completed after a restart, the keys kept out of git, then a
fresh clone that pulls every artifact byte for byte (one scenario: one project copy, one clone).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.conftest import REPO
from tests.dvc_project import dvc, env, git
from tools.s3_server import S3Server

pytestmark = pytest.mark.e2e
REMOTE = "storage"


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> Iterator[S3Server]:
    """One server for the session, always stopped at the end, whatever happened."""
    server = S3Server(tmp_path_factory.mktemp("s3"))
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def s3(s3_server: S3Server) -> S3Server:
    """The session's server, running (a test may have killed it)."""
    return s3_server.start()


@pytest.fixture
def project(built_project: Path, tmp_path: Path) -> Path:
    """A private copy of the built project (git history, workspace and DVC cache)."""
    return Path(shutil.copytree(built_project, tmp_path / "project", symlinks=True))


def add_remote(repo: Path, server: S3Server, prefix: str) -> None:
    """The remote as a user sets it up: URL and endpoint in .dvc/config, keys in config.local."""
    dvc(repo, "remote", "add", "-d", REMOTE, f"s3://{server.bucket}/{prefix}")
    dvc(repo, "remote", "modify", REMOTE, "endpointurl", server.endpoint)
    set_keys(repo, server)


def set_keys(repo: Path, server: S3Server) -> None:
    dvc(repo, "remote", "modify", "--local", REMOTE, "access_key_id", server.access_key)
    dvc(repo, "remote", "modify", "--local", REMOTE, "secret_access_key", server.secret_key)


def fresh_clone(origin: Path, dest: Path, server: S3Server) -> Path:
    """`git clone` of the origin: no DVC cache, no workspace artifacts, no keys until set."""
    subprocess.run(["git", "clone", "-q", str(origin), str(dest)], check=True, capture_output=True)
    assert not (dest / ".dvc" / "cache").exists() and not (dest / ".dvc" / "config.local").exists()
    set_keys(dest, server)
    return dest


def digests(repo: Path, folders: tuple[str, ...] = ("artifacts",)) -> dict[str, str]:
    """sha256 of every file under ``folders`` (DVC outputs and git-tracked metrics alike)."""
    found = {}
    for folder in folders:
        for path in sorted((repo / folder).rglob("*")):
            if path.is_file() and path.name != ".gitignore":
                found[str(path.relative_to(repo))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def pipeline_files() -> tuple[set[str], set[str]]:
    """(outputs DVC caches, hence pushes; outputs with `cache: false`, kept in git), per dvc.yaml."""
    stages = YAML(typ="safe").load((REPO / "dvc.yaml").read_text())["stages"].values()
    cached, in_git = set(), set()
    for stage in stages:
        for entry in stage.get("outs", []) + stage.get("metrics", []) + stage.get("plots", []):
            path, options = (entry, {}) if isinstance(entry, str) else next(iter(entry.items()))
            (cached if options.get("cache", True) else in_git).add(path)
    return cached, in_git


def cached_objects(repo: Path) -> int:
    """Objects the cached outputs take in DVC's cache and remote: one per distinct content (with
    nothing to quantize, model.int8.onnx is model.onnx byte for byte, so one object serves both)."""
    return len({hashlib.md5((repo / name).read_bytes()).hexdigest() for name in pipeline_files()[0]})


def in_sync(repo: Path) -> bool:
    return dvc(repo, "status", "-c").stdout.strip() == f"Cache and remote '{REMOTE}' are in sync."


def remote_objects(server: S3Server, prefix: str) -> int:
    pages = server.client().get_paginator("list_objects_v2").paginate(Bucket=server.bucket, Prefix=prefix)
    return sum(page.get("KeyCount", 0) for page in pages)


def pushed(output: str) -> int:
    match = re.search(r"(\d+) files? pushed", output)
    assert match, output
    return int(match.group(1))


def test_push_cut_short_by_a_crash_completes_after_restart_and_a_fresh_clone_pulls_every_artifact(
    project, s3, tmp_path
):
    # A few MB of extra tracked data: enough objects that the push is surely mid-way when the
    # first ones have landed, so the crash interrupts it.
    blobs = project / "blobs"
    blobs.mkdir()
    for i in range(48):
        (blobs / f"blob{i:02}.bin").write_bytes(os.urandom(128 * 1024))
    dvc(project, "add", "blobs")
    add_remote(project, s3, "crash")
    git(project, "add", "blobs.dvc", ".gitignore", ".dvc/config")
    git(project, "commit", "-qm", "blobs and S3 remote")
    # The keys stay out of git: in config.local, which .dvc/.gitignore lists.
    tracked = git(project, "ls-files", ".dvc").stdout.split()
    assert ".dvc/config" in tracked and ".dvc/config.local" not in tracked
    history = git(project, "log", "-p", "--all").stdout
    assert s3.secret_key not in history and s3.access_key not in history
    assert s3.secret_key in (project / ".dvc" / "config.local").read_text()
    total = cached_objects(project) + 48 + 1  # + the directory's manifest

    # One transfer at a time, and no botocore retries: with its default retries, each remaining
    # file would spend ~5 s backing off against the dead server before DVC reports the failure.
    push = subprocess.Popen(
        [sys.executable, "-m", "dvc", "push", "-j", "1"],
        cwd=project,
        env=env(AWS_MAX_ATTEMPTS="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while push.poll() is None and time.monotonic() < deadline:
            if remote_objects(s3, "crash/") > 0:
                break
            time.sleep(0.02)
        assert push.poll() is None, "the push finished before the crash: make it longer"
        s3.kill()
        output, _ = push.communicate(timeout=120)
    finally:
        if push.poll() is None:
            push.kill()
            push.wait()
    assert push.returncode != 0, output
    assert "failed to push data to the cloud" in output and "Could not connect to the endpoint" in output

    s3.start()  # same data directory and ports
    landed = remote_objects(s3, "crash/")
    assert 0 < landed < total
    missing = json.loads(dvc(project, "status", "-c", "--json").stdout)
    assert len(missing) == total - landed and set(missing.values()) == {"new"}
    result = dvc(project, "push")
    assert pushed(result.stdout) == total - landed
    # One object per distinct content, each once: what the cache holds is what the remote holds.
    assert remote_objects(s3, "crash/") == total
    assert in_sync(project)

    clone = fresh_clone(project, tmp_path / "clone", s3)
    dvc(clone, "pull")
    original = digests(project, ("artifacts", "blobs"))
    outs, metrics = pipeline_files()
    assert {name for name in original if name.startswith("artifacts/")} == outs | metrics
    assert len(original) == len(outs | metrics) + 48
    assert digests(clone, ("artifacts", "blobs")) == original
    assert in_sync(clone)
    assert "up to date" in dvc(clone, "status").stdout
