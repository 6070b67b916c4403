"""Shared fixtures: real subprocesses of the CLI, real state directories, a real mosquitto broker."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge.loopback import free_port, stop_process
from edge.loopback import wait_for_port as _wait_for_port

REPO = Path(__file__).resolve().parent.parent
PASSPHRASE = "correct horse battery staple"


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str, state: Path | None = None, config: Path | None = None, timeout: float = 120,
            input: str | None = None, env: dict[str, str] | None = None, prog: str = "consentcam",
            wrapper: tuple[str, ...] = ()) -> Result:
    """Run the real `consentcam` (or `consentcam-investigator`) entry point as a subprocess
    (`wrapper`: a command it runs under, e.g. ("unshare", "-n") for a network namespace of its own)."""
    cmd = [*wrapper, sys.executable, "-c", f"import sys; from {_entry(prog)} import main; sys.exit(main())"]
    if state is not None:
        cmd += ["--state-dir", str(state)]
    if config is not None:
        cmd += ["--config", str(config)]
    cmd += list(args)
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    full_env.pop("CONSENTCAM_CONFIG", None)
    full_env.pop("CONSENTCAM_STATE_DIR", None)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input, env=full_env)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def _entry(prog: str) -> str:
    return {"consentcam": "edge.cli.main", "consentcam-investigator": "edge.investigator.cli"}[prog]


# Runs main() once per argv in one fresh interpreter, then reports which of the named modules it imported.
_IMPORTS_SCRIPT = """
import contextlib, io, json, sys
from edge.cli.main import main
argvs, names = json.loads(sys.argv[1]), json.loads(sys.argv[2])
codes = []
for argv in argvs:
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            codes.append(main(argv))
        except SystemExit as exc:
            codes.append(exc.code)
loaded = [m for m in names if any(n == m or n.startswith(m + ".") for n in sys.modules)]
print(json.dumps({"codes": codes, "loaded": loaded}))
"""


def modules_imported_by(argvs: Sequence[Sequence[str]], names: Sequence[str]) -> tuple[list[int], list[str]]:
    """(exit codes, which of `names` were imported) after running `consentcam` with each argv in turn
    in one fresh interpreter. A name counts when it or any submodule of it was imported."""
    env = {k: v for k, v in os.environ.items() if k not in ("CONSENTCAM_CONFIG", "CONSENTCAM_STATE_DIR")}
    proc = subprocess.run([sys.executable, "-c", _IMPORTS_SCRIPT, json.dumps([list(a) for a in argvs]),
                           json.dumps(list(names))], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.splitlines()[-1])
    return out["codes"], out["loaded"]


@pytest.fixture(scope="session")
def passphrase_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("secrets") / "passphrase"
    path.write_text(PASSPHRASE + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture(scope="session")
def _state_template(tmp_path_factory: pytest.TempPathFactory, passphrase_file: Path) -> Path:
    # Key generation seals the owner key with scrypt (about a second): do it once, copy per test.
    state = tmp_path_factory.mktemp("template") / "state"
    res = run_cli("init", "--passphrase-file", str(passphrase_file), state=state)
    assert res.returncode == 0, res.stderr
    return state


@pytest.fixture
def state_dir(tmp_path: Path, _state_template: Path) -> Path:
    """A freshly initialised state directory (its own copy of one set of test keys)."""
    dest = tmp_path / "state"
    shutil.copytree(_state_template, dest)
    return dest


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    if not _wait_for_port(port, timeout):
        raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


@dataclass
class Broker:
    host: str
    port: int
    process: subprocess.Popen
    config_path: Path
    log_path: Path

    def stop(self) -> None:
        stop_process(self.process, 5.0)

    def start(self) -> None:
        """(Re)start on the same port, e.g. after stop() in an outage test."""
        self.process = _spawn_mosquitto(self.config_path, self.log_path)
        wait_for_port(self.port)


def _spawn_mosquitto(conf: Path, log: Path) -> subprocess.Popen:
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    return subprocess.Popen([exe, "-c", str(conf)], stdout=open(log, "ab"), stderr=subprocess.STDOUT)


def start_broker(directory: Path, extra_conf: str = "", port: int | None = None) -> Broker:
    """A private mosquitto on a free loopback port (plain TCP unless extra_conf says otherwise)."""
    port = port or free_port()
    directory.mkdir(parents=True, exist_ok=True)
    conf = directory / "mosquitto.conf"
    log = directory / "mosquitto.log"
    lines = [
        "per_listener_settings false",
        "persistence false",
        f"listener {port} 127.0.0.1",
        "max_packet_size 1048576",
    ]
    if "allow_anonymous" not in extra_conf:
        lines.append("allow_anonymous true")
    conf.write_text("\n".join(lines) + "\n" + extra_conf + "\n")
    proc = _spawn_mosquitto(conf, log)
    try:
        wait_for_port(port)
    except TimeoutError:
        proc.kill()
        raise RuntimeError(f"mosquitto did not start: {log.read_text()[-2000:]}") from None
    return Broker("127.0.0.1", port, proc, conf, log)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = start_broker(tmp_path / "broker")
    try:
        yield b
    finally:
        b.stop()
