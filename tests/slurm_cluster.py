"""A one-node SLURM cluster on this machine, for the cluster tests.

Needs Debian's ``slurmctld slurmd slurm-client munge`` (``make cluster-test-deps``) and root.
Daemons listen on 127.0.0.1 only and are stopped by pid. The SLURM executor plugin strips
``SLURM_*`` variables inside jobs, so the config must sit at the default path
``/etc/slurm/slurm.conf``: it is written there only if absent (or written by an earlier
run of this test), and removed again afterwards.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

CONF = Path("/etc/slurm/slurm.conf")
MARKER = "# written by alcg tests/slurm_cluster.py"
DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue")


def missing_reason() -> str | None:
    """Why the cluster cannot be started here, or None."""
    absent = [d for d in DAEMONS if shutil.which(d) is None and not Path(f"/usr/sbin/{d}").exists()]
    if absent:
        return f"SLURM not installed ({', '.join(absent)} missing): run `make cluster-test-deps` as root"
    if os.geteuid() != 0:
        return "starting slurmctld/slurmd needs root"
    if CONF.exists() and MARKER not in CONF.read_text():
        return f"{CONF} belongs to a real SLURM installation; not touching it"
    return None


def _conf(state: Path, cpus: int, mem_mb: int) -> str:
    return f"""{MARKER}
ClusterName=alcgtest
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={state}/munge.sock
StateSaveLocation={state}/ctld
SlurmdSpoolDir={state}/spool
SlurmctldPidFile={state}/slurmctld.pid
SlurmdPidFile={state}/slurmd.pid
SlurmctldLogFile={state}/slurmctld.log
SlurmdLogFile={state}/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MinJobAge=600
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SlurmdParameters=config_overrides
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem_mb} State=UNKNOWN
PartitionName=cpu Nodes=localhost Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=localhost MaxTime=INFINITE State=UP
"""


class LocalCluster:
    """Start munged, slurmctld and slurmd (one node, this machine's CPUs); stop them by pid."""

    def __init__(self, state: Path, cpus: int | None = None, mem_mb: int = 16000):
        self.state = state
        self.cpus = cpus or os.cpu_count() or 1
        self.mem_mb = mem_mb

    def start(self) -> "LocalCluster":
        for sub in ("ctld", "spool"):
            (self.state / sub).mkdir(parents=True, exist_ok=True)
        CONF.parent.mkdir(parents=True, exist_ok=True)
        CONF.write_text(_conf(self.state, self.cpus, self.mem_mb))
        s = self.state
        subprocess.run(["munged", "--force", "-S", str(s / "munge.sock"), f"--pid-file={s / 'munged.pid'}",
                        f"--log-file={s / 'munged.log'}", f"--seed-file={s / 'munged.seed'}"],
                       check=True, capture_output=True)
        subprocess.run(["slurmctld", "-c"], check=True, capture_output=True)
        subprocess.run(["slurmd", "-N", "localhost"], check=True, capture_output=True)
        deadline = time.time() + 60
        while time.time() < deadline:
            out = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True).stdout
            if out.strip() in ("idle", "mix", "alloc"):
                return self
            time.sleep(1)
        raise RuntimeError("the local SLURM node did not come up:\n" + self.log_tail())

    def log_tail(self) -> str:
        return "\n".join((self.state / f).read_text()[-2000:] for f in ("slurmctld.log", "slurmd.log")
                         if (self.state / f).exists())

    def stop(self) -> None:
        subprocess.run(["scancel", "--user=root"], capture_output=True)
        for name in ("slurmd", "slurmctld", "munged"):
            pid_file = self.state / f"{name}.pid"
            if pid_file.exists():
                try:
                    pid = int(pid_file.read_text().split()[0])
                    os.kill(pid, signal.SIGTERM)
                    for _ in range(50):
                        os.kill(pid, 0)
                        time.sleep(0.1)
                except (ProcessLookupError, ValueError):
                    pass
        if CONF.exists() and MARKER in CONF.read_text():
            CONF.unlink()
