"""Shared helpers: the real `weightseal` CLI signs copies of the reference fixtures (written
by the upstream `safetensors` writer, not by this project) in a temporary folder, and
`weightseal-server` runs as a separate process on 127.0.0.1 for the revocation cases."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import pytest

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "tests" / "fixtures"
ORIGIN = "py.weightseal.test"


def _bin_dir() -> Path:
    if os.environ.get("WEIGHTSEAL_BIN_DIR"):
        return Path(os.environ["WEIGHTSEAL_BIN_DIR"])
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    return target / "debug"


def _bin(name: str) -> Path:
    path = _bin_dir() / name
    if not path.exists():
        pytest.fail(
            f"{path} is missing: build it first (`cargo build --bins`) or set WEIGHTSEAL_BIN_DIR",
            pytrace=False,
        )
    return path


def run(program: str, *args: object, ok: bool = True) -> subprocess.CompletedProcess:
    """Runs a project binary; with ok=True asserts it exited 0."""
    cmd = [str(_bin(program))] + [str(a) for a in args]
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    if ok:
        assert p.returncode == 0, f"{cmd} exited {p.returncode}:\n{p.stdout}\n{p.stderr}"
    return p


@dataclass
class Key:
    private: Path
    public: Path
    id: str


def keygen(directory: Path, name: str) -> Key:
    private = directory / name
    p = run("weightseal", "keygen", "--out", private, "--json")
    return Key(private, Path(str(private) + ".pub"), json.loads(p.stdout)["key_id"])


def sign(model: Path, key: Key, *extra: object) -> None:
    run("weightseal", "sign", model, "--key", key.private, *extra)


def copy_fixture(rel: str, dest: Path) -> Path:
    src = FIXTURES / rel
    out = dest / src.name
    if src.is_dir():
        shutil.copytree(src, out)
    else:
        shutil.copy2(src, out)
    return out


def header_of(path: Path) -> Tuple[Dict[str, dict], int]:
    """The JSON header of a safetensors file and where its data starts."""
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    header.pop("__metadata__", None)
    return header, 8 + n


def flip_bit_in_tensor(path: Path, tensor: str, byte: int = 0, bit: int = 0) -> None:
    header, start = header_of(path)
    begin, end = header[tensor]["data_offsets"]
    assert end - begin > byte, f"{tensor} has no byte {byte}"
    with open(path, "r+b") as f:
        f.seek(start + begin + byte)
        b = f.read(1)[0]
        f.seek(start + begin + byte)
        f.write(bytes([b ^ (1 << bit)]))


@dataclass
class World:
    """A lab key, another key, and signed copies of the fixtures."""

    dir: Path
    lab: Key
    other: Key
    base: Path
    derived: Path
    edge: Path

    def shards(self, model: Path) -> List[Path]:
        return sorted(model.glob("*.safetensors"))


@pytest.fixture()
def world(tmp_path: Path) -> World:
    lab = keygen(tmp_path, "lab.key")
    other = keygen(tmp_path, "other.key")
    base = copy_fixture("safetensors/base-model", tmp_path)
    derived = copy_fixture("safetensors/derived-model", tmp_path)
    edge = copy_fixture("safetensors/edge-cases.safetensors", tmp_path)
    sign(base, lab, "--name", "lab/base")
    sign(derived, other, "--name", "someone/derived")
    sign(edge, lab)
    return World(tmp_path, lab, other, base, derived, edge)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RevocationLog:
    """A log (keys, issuers file, SQLite database) and its `weightseal-server serve`."""

    def __init__(self, directory: Path, lab_signing: List[Key]) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.dir = directory
        self.log_key = keygen(directory, "log.key")
        self.hub = keygen(directory, "hub-issuer.key")
        self.lab = keygen(directory, "lab-issuer.key")
        issuers = {
            "issuers": [
                {"name": "hub.example", "role": "hub", "public_key": self.hub.public.read_text()},
                {
                    "name": "lab.example",
                    "role": "lab",
                    "public_key": self.lab.public.read_text(),
                    "signing_keys": [k.id for k in lab_signing] + [self.lab.id],
                },
            ]
        }
        self.issuers = directory / "issuers.json"
        self.issuers.write_text(json.dumps(issuers, indent=2))
        self.database = directory / "log.db"
        self.note_key = run("weightseal-server", "pubkey", "--origin", ORIGIN, "--key", self.log_key.private).stdout.strip()
        self.proc: Optional[subprocess.Popen] = None
        self.url = ""

    def start(self) -> str:
        log = open(self.dir / "server.log", "wb")
        self.proc = subprocess.Popen(
            [
                str(_bin("weightseal-server")),
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--origin",
                ORIGIN,
                "--key",
                str(self.log_key.private),
                "--issuers",
                str(self.issuers),
                "--database",
                f"sqlite:{self.database}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode().strip()
        assert line.startswith("listening on "), f"unexpected first line {line!r}: {(self.dir / 'server.log').read_text()}"
        # Keep draining stdout so the server never blocks on it.
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()
        self.url = line[len("listening on ") :]
        host, port = self.url.removeprefix("http://").split(":")
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection((host, int(port)), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, f"nothing listens on {self.url}"
                time.sleep(0.05)
        return self.url

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def revoke(self, issuer: Key, *subject: object) -> None:
        # `revoke` proves its receipt: inclusion in a checkpoint signed by the pinned log key.
        run(
            "weightseal", "revoke", "--server", self.url, "--key", issuer.private,
            "--revocation-key", self.note_key, *subject,
        )


@pytest.fixture()
def revocation_log(world: World) -> Iterator[RevocationLog]:
    log = RevocationLog(world.dir / "log", [world.lab])
    log.start()
    try:
        yield log
    finally:
        log.stop()
