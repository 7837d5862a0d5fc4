"""A private one-node Slurm cluster for the tests: munged, slurmctld and slurmd under a temp folder.

``PrivateCluster(folder).start()`` writes its own ``slurm.conf`` (its own state, spool and log
folders, free ports, a unique cluster name), its own munge key and socket, starts the three daemons
in the foreground as child processes and waits until ``sinfo`` shows the node idle; ``stop()`` ends
them by their pids. The system's ``/etc/slurm`` and ``/run/munge`` are never read or written:
every Slurm command of the tests finds the cluster through ``SLURM_CONF`` (``cluster.env``).

``ensure_installed()`` installs Debian's ``slurm-wlm`` and ``munge`` with apt-get when they are
missing; it needs root and a reachable package registry, and raises ``Unavailable`` saying why
otherwise (the tests then skip with that reason). By hand::

    python tests/slurm/private_cluster.py /tmp/mycluster   # start, print the SLURM_CONF line, stop on Ctrl-C
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

DAEMONS = {"munged": "/usr/sbin/munged", "slurmctld": "/usr/sbin/slurmctld", "slurmd": "/usr/sbin/slurmd"}
CLIENTS = ("sbatch", "squeue", "sinfo", "scancel", "scontrol", "srun")
PACKAGES = ("slurm-wlm", "munge")


class Unavailable(RuntimeError):
    """The cluster cannot run here; the message says why."""


def missing_programs() -> list[str]:
    return [name for name, path in DAEMONS.items() if not Path(path).is_file()] + \
           [name for name in CLIENTS if shutil.which(name) is None]


def ensure_installed(timeout: float = 600) -> None:
    """Install slurm-wlm and munge from the package registry when a program is missing."""
    missing = missing_programs()
    if not missing:
        return
    if os.geteuid() != 0:
        raise Unavailable(f"Slurm programs missing ({', '.join(missing)}) and not root: cannot apt-get install "
                          f"{' '.join(PACKAGES)}")
    if shutil.which("apt-get") is None:
        raise Unavailable(f"Slurm programs missing ({', '.join(missing)}) and no apt-get to install them")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *PACKAGES]):
        try:
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise Unavailable(f"`{' '.join(cmd)}` did not finish in {timeout:.0f} s (no package registry?)") from None
        if out.returncode != 0:
            raise Unavailable(f"`{' '.join(cmd)}` failed (no package registry?): {out.stderr.strip()[-500:]}")
    if missing_programs():
        raise Unavailable(f"still missing after installing {' '.join(PACKAGES)}: {', '.join(missing_programs())}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return 4096


class PrivateCluster:
    """One node, one partition (``debug``); ``cpus`` job slots (more than the cores is allowed)."""

    def __init__(self, folder: Path, cpus: int = 4):
        self.dir = Path(folder)
        self.cpus = cpus
        self.name = f"bench{uuid.uuid4().hex[:8]}"
        self.node = f"{self.name}n0"
        self.conf = self.dir / "slurm.conf"
        self.socket = self.dir / "munge" / "munge.socket"
        self.procs: dict[str, subprocess.Popen] = {}

    @property
    def env(self) -> dict[str, str]:
        """The environment that points Slurm's commands (and the jobs' own) at this cluster."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def write_config(self) -> None:
        for sub in ("state", "spool", "log", "munge"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir / "munge", 0o700)
        key = self.dir / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o400)
        host = socket.gethostname()
        lines = {
            "ClusterName": self.name, "SlurmctldHost": f"{host}(127.0.0.1)",
            "SlurmctldPort": free_port(), "SlurmdPort": free_port(), "SlurmUser": "root", "SlurmdUser": "root",
            "AuthType": "auth/munge", "CredType": "cred/munge", "AuthInfo": f"socket={self.socket},cred_expire=10",
            "StateSaveLocation": self.dir / "state", "SlurmdSpoolDir": self.dir / "spool",
            "SlurmctldPidFile": self.dir / "slurmctld.pid", "SlurmdPidFile": self.dir / "slurmd.pid",
            "SlurmctldLogFile": self.dir / "log/slurmctld.log", "SlurmdLogFile": self.dir / "log/slurmd.log",
            "ProctrackType": "proctrack/linuxproc", "TaskPlugin": "task/none", "SelectType": "select/cons_tres",
            "SelectTypeParameters": "CR_Core", "JobAcctGatherType": "jobacct_gather/none",
            "AccountingStorageType": "accounting_storage/none", "MpiDefault": "none", "ReturnToService": 2,
            "SlurmdParameters": "config_overrides", "PropagatePrioProcess": 1, "KillWait": 5, "MinJobAge": 600, "InactiveLimit": 0,
            "SchedulerParameters": "sched_interval=2",
        }
        text = "".join(f"{k}={v}\n" for k, v in lines.items())
        text += (f"NodeName={self.node} NodeAddr=127.0.0.1 NodeHostname={host} CPUs={self.cpus} "
                 f"RealMemory={min(memory_mb(), 16000)} State=UNKNOWN\n"
                 f"PartitionName=debug Nodes={self.node} Default=YES MaxTime=INFINITE State=UP\n")
        self.conf.write_text(text)

    def _spawn(self, name: str, args: list[str]) -> None:
        log = open(self.dir / "log" / f"{name}.out", "ab")
        self.procs[name] = subprocess.Popen([DAEMONS[name], *args], env=self.env, stdout=log, stderr=log,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()

    def start(self, timeout: float = 60) -> "PrivateCluster":
        if os.geteuid() != 0:
            raise Unavailable("the private Slurm cluster runs its daemons as root; not root here")
        self.write_config()
        m = self.dir / "munge"
        try:
            self._spawn("munged", ["--foreground", "--force", f"--socket={self.socket}", f"--key-file={m / 'munge.key'}",
                                   f"--log-file={m / 'munged.log'}", f"--pid-file={m / 'munged.pid'}",
                                   f"--seed-file={m / 'munged.seed'}"])
            self._wait(lambda: self.socket.exists(), timeout, "munged's socket")
            self._spawn("slurmctld", ["-D", "-i", "-f", str(self.conf)])
            self._spawn("slurmd", ["-D", "-N", self.node, "-f", str(self.conf)])
            self._wait(self.idle, timeout, f"node {self.node} idle in sinfo")
        except BaseException:
            self.stop()
            raise
        return self

    def idle(self) -> bool:
        out = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %t"], env=self.env, capture_output=True, text=True)
        return out.returncode == 0 and f"{self.node} idle" in out.stdout

    def _wait(self, ready, timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            dead = [n for n, p in self.procs.items() if p.poll() is not None]
            if dead:
                raise Unavailable(f"{', '.join(dead)} exited (code {self.procs[dead[0]].returncode}) while waiting "
                                  f"for {what}:\n{self.logs()}")
            if ready():
                return
            time.sleep(0.5)
        raise Unavailable(f"no {what} after {timeout:.0f} s:\n{self.logs()}")

    def logs(self, lines: int = 15) -> str:
        out = []
        for path in sorted((self.dir / "log").glob("*")) + [self.dir / "munge" / "munged.log"]:
            if path.is_file():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {path}\n" + "\n".join(tail))
        return "\n".join(out)

    def stop(self) -> None:
        """End the daemons by their pids (slurmd, slurmctld, then munged) and the jobs still running."""
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            subprocess.run(["scancel", "--full", "--partition=debug"], env=self.env, capture_output=True, timeout=30)
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)


def main(argv: list[str]) -> int:
    folder = Path(argv[0]) if argv else Path(f"/tmp/slurm-{os.getpid()}")
    try:
        ensure_installed()
        cluster = PrivateCluster(folder).start()
    except Unavailable as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"export SLURM_CONF={cluster.conf}   # Ctrl-C (or SIGTERM to pid {os.getpid()}) stops the cluster",
          flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    try:
        while True:
            signal.pause()
    finally:
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
