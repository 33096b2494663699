"""Compare `daoflow deploy --wait` with raw `ssh ... docker compose up -d --wait` on one small stack.

Prerequisites: run as root after `bash scripts/test.sh` or `bash scripts/testbed.sh`
has set up the test bed (dockerd, the sshd on 127.0.0.1:2222, the image
daoflow-test/web:1). Run it from the repository root:

    .venv/bin/python bench/deploy_overhead.py [--runs 5]

The product runs on its embedded defaults (SQLite, the file-system broker)
in a temporary data directory, with one Celery worker started and stopped
by this script. For each case (fresh deploy after `down`, unchanged
redeploy) raw Compose and the product run alternately, and the medians,
their ratio and where the product's extra time goes are printed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
WORKER_START_SECONDS = 60
COMMAND_TIMEOUT_SECONDS = 300
STACK = """\
services:
  web:
    image: daoflow-test/web:1
    ports:
      - "127.0.0.1:{port}:8080"
"""


def load_testbed() -> dict:
    path = Path(os.environ.get("DAOFLOW_TESTBED", REPO / "var" / "testbed" / "testbed.json"))
    if not path.exists():
        sys.exit(f"{path} not found: run `bash scripts/testbed.sh` (as root) first, or set DAOFLOW_TESTBED.")
    return json.loads(path.read_text())


def run(argv: list[str], env: dict | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
    completed = subprocess.run(argv, env=env, input=stdin, capture_output=True, text=True, cwd=REPO,
                               timeout=COMMAND_TIMEOUT_SECONDS)
    if completed.returncode != 0:
        sys.exit(f"command failed (exit code {completed.returncode}): {shlex.join(argv)}\n"
                 f"{completed.stdout}\n{completed.stderr}")
    return completed


def timed(argv: list[str], env: dict | None = None) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    completed = run(argv, env)
    return time.perf_counter() - started, completed


class RawCompose:
    """The same stack deployed by hand: one ssh connection per command, as an operator would."""

    def __init__(self, testbed: dict, workdir: str, port: int):
        self.ssh = ["ssh", "-p", str(testbed["ssh_port"]), "-i", testbed["ssh_key"], "-o", "BatchMode=yes",
                    "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                    f"{testbed['ssh_user']}@{testbed['ssh_host']}"]
        self.workdir = workdir
        self.compose = ["docker", "compose", "--project-name", "daoflowbenchraw", "--project-directory", workdir]
        run([*self.ssh, shlex.join(["mkdir", "-p", workdir])])
        run([*self.ssh, shlex.join(["sh", "-c", 'cat > "$1"', "sh", f"{workdir}/compose.yaml"])],
            stdin=STACK.format(port=port))

    def deploy(self) -> float:
        seconds, _ = timed([*self.ssh, shlex.join([*self.compose, "up", "-d", "--wait"])])
        return seconds

    def down(self) -> None:
        run([*self.ssh, shlex.join([*self.compose, "down", "--timeout", "1"])])


class Product:
    """A control plane on embedded defaults in a temporary directory, with one worker."""

    def __init__(self, testbed: dict, data_dir: Path, port: int):
        self.env = {key: value for key, value in os.environ.items()
                    if key not in ("DATABASE_URL", "CELERY_BROKER_URL", "DAOFLOW_ENCRYPTION_KEYS",
                                   "DJANGO_SETTINGS_MODULE", "DAOFLOW_TASK_QUEUE")}
        self.env.update(DAOFLOW_DATA_DIR=str(data_dir), DAOFLOW_REMOTE_WORKDIR_ROOT=str(data_dir / "remote"))
        self.daoflow = str(BIN / "daoflow")
        self.data_dir = data_dir
        run([self.daoflow, "migrate", "-v", "0"], self.env)
        self.worker = self.start_worker(data_dir / "worker.log")

        fingerprint = run(["ssh-keygen", "-lf", testbed["host_public_key"]]).stdout.split()[1]
        stack_file = data_dir / "compose.yaml"
        stack_file.write_text(STACK.format(port=port))
        for argv in (
            ["server", "add", "--name", "bench", "--host", testbed["ssh_host"], "--port", str(testbed["ssh_port"]),
             "--user", testbed["ssh_user"], "--ssh-key", testbed["ssh_key"]],
            ["server", "approve-host-key", "--name", "bench", "--fingerprint", fingerprint],
            ["project", "create", "--name", "daoflowbench", "--server", "bench"],
            ["service", "create", "--project", "daoflowbench", "--name", "web", "--source-type", "compose",
             "--compose-file", str(stack_file)],
        ):
            run([self.daoflow, *argv, "--yes", "--json"], self.env)
        self.compose_project = "daoflowbench_production_web"

    def start_worker(self, log_path: Path) -> subprocess.Popen:
        log = open(log_path, "ab")
        worker = subprocess.Popen(
            [str(BIN / "celery"), "-A", "daoflow", "worker", "--loglevel", "INFO", "--concurrency", "1",
             "--without-gossip", "--without-mingle", "--hostname", f"bench-{os.getpid()}@%h"],
            cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + WORKER_START_SECONDS
        while b" ready." not in log_path.read_bytes():
            if worker.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"the Celery worker did not start; see {log_path}")
            time.sleep(0.2)
        return worker

    def deploy(self) -> tuple[float, dict]:
        seconds, completed = timed([self.daoflow, "deploy", "--service", "web", "--yes", "--wait", "--json"], self.env)
        deployment = json.loads(completed.stdout)["data"]["deployment"]
        if deployment["conclusion"] != "succeeded":
            sys.exit(f"deployment {deployment['id']} did not succeed: {deployment['failure_reason']}")
        return seconds, deployment

    def down(self) -> None:
        # The target is this machine, so the product's stack is taken down with the local docker CLI.
        run(["docker", "compose", "--project-name", self.compose_project, "down", "--timeout", "1"])

    def stop(self) -> None:
        if self.worker.poll() is None:
            self.worker.terminate()
            self.worker.wait(timeout=60)
        # The worker's SSH master connection would otherwise linger for ControlPersist
        # seconds; its socket directory is named as deployments/transports/ssh.py names it.
        ssh_dir = str((self.data_dir / "ssh").resolve())
        control_dir = Path(tempfile.gettempdir()) / ("daoflow-ssh-" + hashlib.sha256(ssh_dir.encode()).hexdigest()[:10])
        for socket_path in control_dir.glob("*"):
            subprocess.run(["ssh", "-o", f"ControlPath={socket_path}", "-O", "exit", "daoflow-bench"],
                           capture_output=True, timeout=30, check=False)


def breakdown(wall: float, deployment: dict) -> dict:
    """Split the product's wall time into queue wait, steps and the rest (CLI start, polling, bookkeeping)."""
    def at(value: str) -> datetime:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))

    created, started, finished = (at(deployment[key]) for key in ("created_at", "started_at", "finished_at"))
    steps = {step["name"]: step["duration_seconds"] or 0.0 for step in deployment["steps"]}
    return {
        "queue wait": (started - created).total_seconds(),
        **{f"step {name}": seconds for name, seconds in steps.items()},
        "between steps": (finished - started).total_seconds() - sum(steps.values()),
        "outside the run (CLI start, enqueue, follow)": wall - (finished - created).total_seconds(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="Deploys per tool and case (default 5).")
    options = parser.parse_args()

    testbed = load_testbed()
    with tempfile.TemporaryDirectory(prefix="daoflow-bench-") as directory:
        data_dir = Path(directory)
        raw = RawCompose(testbed, f"{directory}/raw", port=18931)
        product = Product(testbed, data_dir, port=18932)
        try:
            results = measure(raw, product, options.runs)
        finally:
            product.stop()
            raw.down()
            product.down()
    report(results, options.runs)


def measure(raw: RawCompose, product: Product, runs: int) -> dict:
    results: dict = {"fresh": {"raw": [], "product": [], "parts": []},
                     "unchanged": {"raw": [], "product": [], "parts": []}}
    # One untimed deploy each, so the first timed run does not pay for cold caches.
    raw.deploy()
    product.deploy()
    for _ in range(runs):
        raw.down()
        results["fresh"]["raw"].append(raw.deploy())
        results["unchanged"]["raw"].append(raw.deploy())

        product.down()
        for case in ("fresh", "unchanged"):
            wall, deployment = product.deploy()
            results[case]["product"].append(wall)
            results[case]["parts"].append(breakdown(wall, deployment))
    return results


def report(results: dict, runs: int) -> None:
    print(f"deploy overhead: one-service stack over SSH to 127.0.0.1, {runs} runs per tool and case, medians")
    for case, data in results.items():
        raw, product = statistics.median(data["raw"]), statistics.median(data["product"])
        print(f"\n{case} deploy: raw compose {raw:.2f} s, daoflow {product:.2f} s, "
              f"ratio {product / raw:.2f} (+{(product / raw - 1) * 100:.0f}%)")
        for part in data["parts"][0]:
            print(f"  {part:<46} {statistics.median(p[part] for p in data['parts']):6.2f} s")


if __name__ == "__main__":
    main()
