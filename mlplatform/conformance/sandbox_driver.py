"""Runs inside the check's namespaces (``unshare``: user, mount, network, pid) as their first process, with a
fresh tmpfs on ``/opt``: lays out ``/opt/ml`` and the image's program folder, brings up loopback (the only
interface a network-isolated container has), runs one phase and writes what happened to the results folder.

Run as a file (``python3 sandbox_driver.py JOB.json``), standard library only: it must not import the product,
whose folders it shares the file system with but not its ``sys.path``. The job file is written by
``mlplatform.conformance.byoc_check``; the paths and limits in it are ``container_contract``'s.
"""

from __future__ import annotations

import fcntl
import http.client
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

PROGRAM_ROOT = Path("/opt/program")  # where the example Dockerfile copies the programs (WORKDIR, on PATH)
# Linux's SIOCGIFFLAGS / SIOCSIFFLAGS and IFF_UP (<linux/sockios.h>, <net/if.h>); struct ifreq is 40 bytes.
_GET_FLAGS, _SET_FLAGS, _UP = 0x8913, 0x8914, 0x1
_IFREQ = "16sH22x"
# A public address: with no route out of the namespace the connect fails at once, sending nothing.
NETWORK_PROBE = ("1.1.1.1", 443)


def loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        flags = struct.unpack(_IFREQ, fcntl.ioctl(sock, _GET_FLAGS, struct.pack(_IFREQ, b"lo", 0)))[1]
        if not flags & _UP:  # a new network namespace starts with loopback down
            fcntl.ioctl(sock, _SET_FLAGS, struct.pack(_IFREQ, b"lo", flags | _UP))


def network_facts() -> dict[str, Any]:
    """The interfaces this namespace has (``/proc/net/dev`` is per network namespace) and what a connection to a
    public address gets."""
    lines = Path("/proc/net/dev").read_text(encoding="utf-8").splitlines()[2:]
    interfaces = sorted(line.split(":")[0].strip() for line in lines if ":" in line)
    try:
        with socket.create_connection(NETWORK_PROBE, timeout=2):
            probe = "connected"
    except OSError as err:
        probe = f"refused: {err}"
    return {"interfaces": interfaces, "probe": f"{NETWORK_PROBE[0]}:{NETWORK_PROBE[1]} {probe}"}


def environment(job: dict[str, Any], extra: dict[str, str]) -> dict[str, str]:
    """Only what SageMaker gives the container (the image's PATH, with the program folder first), never the
    checker's own environment."""
    return {"PATH": f"{PROGRAM_ROOT}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:"
                    f"{job['python_dir']}",
            "LANG": "C.UTF-8", "HOME": "/root", **extra}


def command(program: str, env: dict[str, str]) -> list[str]:
    """The image's argument resolved on its PATH, as Docker runs ``docker run <image> <program>``."""
    found = shutil.which(program, path=env["PATH"])
    if found is None:
        raise FileNotFoundError(f"{program} is not an executable on the image's PATH ({env['PATH']})")
    return [found]


def prepare(job: dict[str, Any]) -> None:
    shutil.copytree(job["program_dir"], PROGRAM_ROOT, symlinks=True)
    shutil.copytree(job["stage_dir"], job["opt_ml"], symlinks=True, dirs_exist_ok=True)
    loopback_up()


def run_train(job: dict[str, Any], results: Path) -> dict[str, Any]:
    opt_ml = Path(job["opt_ml"])
    for folder in ("model", "output/data"):
        (opt_ml / folder).mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with (results / "train.log").open("wb") as log:
        env = environment(job, job["train_env"])
        try:
            code: int | None = subprocess.run(
                command("train", env), cwd=PROGRAM_ROOT, stdout=log, stderr=subprocess.STDOUT, check=False,
                env=env, timeout=job["train_timeout"]).returncode
        except subprocess.TimeoutExpired:
            code = None
        except OSError as err:
            log.write(f"cannot start train: {err}\n".encode())
            code = 127
    seconds = time.monotonic() - started
    shutil.copytree(opt_ml / "model", results / "model", symlinks=True)
    failure = opt_ml / "output/failure"
    return {"exit_code": code, "seconds": round(seconds, 3),
            "failure": failure.read_text(encoding="utf-8", errors="replace") if failure.is_file() else None}


def _request(port: int, method: str, path: str, *, body: bytes | None = None,
             headers: dict[str, str] | None = None, timeout: float) -> dict[str, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        data = response.read()
        return {"status": response.status, "content_type": response.getheader("Content-Type") or "",
                "body": data.decode("utf-8", errors="replace")}
    except (OSError, http.client.HTTPException) as err:
        return {"status": None, "error": f"{type(err).__name__}: {err}"}
    finally:
        connection.close()


def run_serve(job: dict[str, Any], results: Path) -> dict[str, Any]:
    model_dir = Path(job["opt_ml"]) / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    with tarfile.open(job["model_artifact"]) as tar:  # SageMaker extracts model.tar.gz into /opt/ml/model
        tar.extractall(model_dir, filter="data")
    port = job["port"]
    outcome: dict[str, Any] = {"ping": None, "invocations": [], "exit_code": None}
    log = (results / "serve.log").open("wb")
    env = environment(job, job["serve_env"])
    try:
        server = subprocess.Popen(command("serve", env), cwd=PROGRAM_ROOT, stdout=log, stderr=subprocess.STDOUT,
                                  env=env, start_new_session=True)
    except OSError as err:
        log.write(f"cannot start serve: {err}\n".encode())
        log.close()
        return {**outcome, "exit_code": 127}
    try:
        deadline, ping = time.monotonic() + job["ping_startup"], None
        while time.monotonic() < deadline and server.poll() is None:
            ping = _request(port, "GET", job["ping_path"], timeout=2.0)
            if ping["status"] == 200:
                break
            time.sleep(0.1)
        outcome["ping"] = ping
        if ping is not None and ping["status"] == 200:
            for case in job["requests"]:
                answer = _request(port, "POST", job["invocations_path"], body=case["body"].encode("utf-8"),
                                  headers={"Content-Type": case["content_type"], "Accept": case["accept"]},
                                  timeout=job["invocation_timeout"])
                outcome["invocations"].append({"name": case["name"], **answer})
            if job.get("relay_socket"):
                relay(job, port)
    finally:
        outcome["exit_code"] = server.poll()
        outcome["stopped_on_sigterm"] = _stop(server, job["stop_grace"])
        log.close()
    return outcome


def _receive(connection: socket.socket) -> bytes:
    chunks = []
    while chunk := connection.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def relay(job: dict[str, Any], port: int) -> None:
    """Keep serving (a long-lived endpoint's stand-in): each connection to the Unix socket ``relay_socket`` (a file
    outside /opt, which the caller outside the namespaces can reach; a network namespace does not separate
    pathname sockets) carries one JSON request {body, content_type, accept} until the caller closes its side; the
    answer of POST /invocations goes back as JSON. ``{"stop": true}`` ends the relay."""
    path = job["relay_socket"]
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen(8)
        Path(f"{path}.ready").write_text("ready", encoding="utf-8")
        while True:
            connection, _ = server.accept()
            with connection:
                request = json.loads(_receive(connection) or b"{}")
                if request.get("stop"):
                    return
                answer = _request(port, "POST", job["invocations_path"], body=request["body"].encode("utf-8"),
                                  headers={"Content-Type": request["content_type"],
                                           **({"Accept": request["accept"]} if request["accept"] else {})},
                                  timeout=job["invocation_timeout"])
                connection.sendall(json.dumps(answer).encode("utf-8"))


def _stop(server: subprocess.Popen[bytes], grace: float) -> bool | None:
    """SIGTERM, then SIGKILL after the grace period, to the server's whole process group."""
    if server.poll() is not None:
        return None
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=grace)
        return True
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
        return False


def main(job_file: str) -> int:
    job = json.loads(Path(job_file).read_text(encoding="utf-8"))
    results = Path(job["results_dir"])
    prepare(job)
    outcome = {"network": network_facts()}
    outcome.update(run_train(job, results) if job["phase"] == "train" else run_serve(job, results))
    (results / f"{job['phase']}.json").write_text(json.dumps(outcome, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
