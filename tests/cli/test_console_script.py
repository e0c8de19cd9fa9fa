"""The installed `tieout` program itself, in a subprocess: what cron and scripts run."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TIEOUT = Path(sys.executable).parent / "tieout"


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TIEOUT_ACTOR": "cron"}
    env.pop("TIEOUT_DB", None)
    return subprocess.run([str(TIEOUT), *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=120, check=False)


@pytest.mark.skipif(not TIEOUT.exists(), reason="the package is not installed in this venv")
def test_the_console_script_uses_the_default_database_and_exit_codes(tmp_path: Path) -> None:
    assert run("init", "--json", cwd=tmp_path).returncode == 0
    assert (tmp_path / "tieout.db").exists()  # sqlite:///tieout.db in the current directory
    opened = run("account", "open", "ACC1", "--currency", "USD", "--json", cwd=tmp_path)
    assert opened.returncode == 0
    assert json.loads(opened.stdout)["account"] == "ACC1"
    missing = run("cash", "balance", "NOPE", "--json", cwd=tmp_path)
    assert missing.returncode == 5
    assert missing.stdout == ""
    assert "not found" in missing.stderr
    usage = run("cash", "deposit", cwd=tmp_path)
    assert usage.returncode == 2
    verify = run("audit", "verify", "--json", cwd=tmp_path)
    assert json.loads(verify.stdout)["ok"] is True
