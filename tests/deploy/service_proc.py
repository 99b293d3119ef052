"""`python -m service` as a real subprocess on a loopback port, for shutdown tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]


class ServiceProcess:
    """Starts the service with a model and settings; `url` once /readyz answers 200."""

    def __init__(self, model: Path, log_path: Path, **settings: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        env = {k: v for k, v in os.environ.items() if not k.startswith("CODEREWARD_")}
        env.update({"CODEREWARD_HOST": "127.0.0.1", "CODEREWARD_PORT": str(self.port),
                    "CODEREWARD_MODELS": f"tiny={model}", "CODEREWARD_DEVICE": "cpu",
                    "CODEREWARD_BACKEND": "torch", "HF_HUB_OFFLINE": "1",
                    "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"})
        env.update({f"CODEREWARD_{k.upper()}": v for k, v in settings.items()})
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "service"], cwd=ROOT, env=env,
                                     stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"service exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"service not ready: {self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self._log.close()

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")
