"""Start a job in a subprocess and SIGKILL it once its checkpoint file exists."""
import signal
import subprocess
import time
from pathlib import Path


def kill_after_checkpoint(args: list[str], checkpoint: Path, timeout_s: float, grace_s: float) -> None:
    """Run ``args``; when ``checkpoint`` appears, wait ``grace_s`` more and SIGKILL the process."""
    proc = subprocess.Popen(args)
    deadline = time.time() + timeout_s
    while not checkpoint.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert checkpoint.exists(), f"{checkpoint} was never written"
    time.sleep(grace_s)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
