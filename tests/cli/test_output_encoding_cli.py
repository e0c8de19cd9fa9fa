"""Through the real command, in a process whose stdout and stderr cannot carry every character
(PYTHONIOENCODING=ascii, as a locale that is not UTF-8 gives): text from a file in another
script neither stops the output half way nor ends in a traceback. JSON escapes what is not
ASCII (the same values to its reader); text shows it as its escape."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import Tieout, write

_RUN = "import sys; sys.argv = ['tieout'] + sys.argv[1:]; from cli.main import run; run()"


def _ascii_tieout(t: Tieout, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONIOENCODING": "ascii", "TIEOUT_ACTOR": "tester"}
    return subprocess.run(
        [sys.executable, "-c", _RUN, *args, "--db", t.db_url],
        capture_output=True,
        env=env,
        check=False,
        timeout=120,
    )


def test_an_order_file_with_text_in_other_scripts(tieout: Tieout, tmp_path: Path) -> None:
    tieout.ok("account", "open", "A1", "--currency", "USD")
    side = "s\u00e9ll\u20ac\U0001f600"  # a bad value: its reason quotes it
    f = write(tmp_path / "orders.csv", f"account,symbol,side,qty\nA1,COIN,{side},1\n")
    as_json = _ascii_tieout(tieout, "order", "submit", "--file", f, "--json")
    assert as_json.returncode == 3, as_json.stderr
    assert b"Traceback" not in as_json.stderr
    as_json.stdout.decode("ascii")  # nothing but ASCII
    doc = json.loads(as_json.stdout)
    assert side in doc["results"][0]["reason"]  # the same text to the JSON's reader
    as_text = _ascii_tieout(tieout, "order", "submit", "--file", f)
    assert as_text.returncode == 3, as_text.stderr
    assert b"Traceback" not in as_text.stderr
    assert b"s\\xe9ll\\u20ac\\U0001f600" in as_text.stdout, as_text.stdout
