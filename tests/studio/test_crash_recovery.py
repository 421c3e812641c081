"""A process killed mid-generation leaves an autosave; the next start restores it, pose keypoints too."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from engine.models.families import Family

ROOT = Path(__file__).resolve().parents[2]


def test_killed_mid_job_then_restored(tmp_path: Path, tiny_models) -> None:  # type: ignore[no-untyped-def]
    env = {**os.environ, "ATELIER_HOME": str(tmp_path / "home"), "QT_QPA_PLATFORM": "offscreen",
           "HF_HUB_OFFLINE": "1"}
    model = str(tiny_models[Family.SD1].folder)
    proc = subprocess.Popen([sys.executable, "-m", "tests.studio.crash_driver", "crash", model], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(180, proc.kill)  # never hang the suite if the app stalls
    watchdog.start()
    try:
        line = proc.stdout.readline()  # blocks until the first generation step
        assert line.startswith("READY"), line + proc.stderr.read()
        digest_before = line.split()[1]
    finally:
        watchdog.cancel()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert (tmp_path / "home" / "recovery" / "session.atelier").exists()
    out = subprocess.run([sys.executable, "-m", "tests.studio.crash_driver", "recover"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"restored": True, "prompt": "survive the crash", "digest": digest_before, "pose_kept": True}
