"""The installed `tieout` program itself, in a subprocess: what cron and scripts run."""

import json
import os
import signal
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


_AS_AT_A_TERMINAL = (  # a background process may start with SIGINT ignored; a terminal's has it
    "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from cli.main import run; sys.argv[0] = 'tieout'; run()"
)


@pytest.mark.parametrize(
    ("sig", "code", "said"),
    [
        (signal.SIGINT, 130, "tieout: interrupted: "),
        (signal.SIGTERM, 143, "tieout: terminated (SIGTERM): "),
    ],
    ids=["ctrl-c", "sigterm"],
)
def test_a_signal_exits_with_its_code_and_says_what_it_means(
    tmp_path: Path, sig: signal.Signals, code: int, said: str
) -> None:
    """Ctrl-C in the middle of a command: exit 130 and a line saying that what was committed
    stays and nothing is half-written (it used to exit 130 with no word, or with a traceback
    when it came while the command's modules were loading). SIGTERM (`timeout`, systemd,
    kill) takes the same way out with exit 143 (128 + 15): it used to end the process where it
    stood, the transaction rolled back but temporary files left behind."""
    env = {**os.environ, "TIEOUT_ACTOR": "ops", "PYTHONUNBUFFERED": "1"}
    env.pop("TIEOUT_DB", None)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    proc = subprocess.Popen(
        [sys.executable, "-c", _AS_AT_A_TERMINAL, "demo"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # the demo has begun its day
        assert first.startswith("tieout demo"), first
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    assert said + "what the command committed before stays" in err
    assert "Traceback" not in err


_TERMINATED_WHILE_PACKING = (  # SIGTERM as the backup's partial file is complete, before its
    # audit event: the partial file must not be left behind
    "import os, signal, sys; from oms import backup; real = backup.fsync_path\n"
    "def fsync(path):\n"
    "    real(path)\n"
    "    if path.name.endswith('.partial'): os.kill(os.getpid(), signal.SIGTERM)\n"
    "backup.fsync_path = fsync; from cli.main import run; sys.argv[0] = 'tieout'; run()"
)


@pytest.mark.skipif(not TIEOUT.exists(), reason="the package is not installed in this venv")
def test_sigterm_during_backup_create_leaves_no_partial_file(tmp_path: Path) -> None:
    env = {**os.environ, "TIEOUT_ACTOR": "ops"}
    env.pop("TIEOUT_DB", None)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    db = f"sqlite:///{tmp_path / 'book.db'}"
    assert run("init", "--db", db, cwd=tmp_path).returncode == 0
    out = tmp_path / "backups"
    out.mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", _TERMINATED_WHILE_PACKING, "backup", "create", "--out",
         str(out / "book.tar"), "--db", db],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 143, proc.stderr
    assert "terminated (SIGTERM)" in proc.stderr
    assert list(out.iterdir()) == []  # neither the backup nor its partial file
    verify = run("audit", "verify", "--json", "--db", db, cwd=tmp_path)
    assert json.loads(verify.stdout)["ok"] is True
    again = run("backup", "create", "--out", str(out / "book.tar"), "--db", db, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert [p.name for p in out.iterdir()] == ["book.tar"]


_FILE_INTERRUPTED_ON_THIRD_GROUP = (  # `sig` as the third group of an order file is decided
    "import os, signal, sys\n"
    "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
    "from oms import submission\n"
    "real, n, sig = submission.Group.decide_all, [0], int(sys.argv.pop(1))\n"
    "def decide_all(self, part):\n"
    "    n[0] += 1\n"
    "    if n[0] == 3: os.kill(os.getpid(), sig)\n"
    "    return real(self, part)\n"
    "submission.Group.decide_all = decide_all\n"
    "from cli.main import run; sys.argv[0] = 'tieout'; run()\n"
)


@pytest.mark.parametrize(
    ("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["ctrl-c", "sigterm"]
)
def test_an_order_file_interrupted_part_way_says_which_lines_committed(
    tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    """Ctrl-C or SIGTERM after two groups of an order file committed: the command printed
    nothing of them, though 2,000 orders were in the book and rows without a client order id
    would be submitted again by a second run. It now prints what committed (the JSON with
    `complete` false and `next_line`) and says where to go on from, then exits 130 or 143."""
    db = f"sqlite:///{tmp_path / 'book.db'}"
    env = {**os.environ, "TIEOUT_ACTOR": "ops", "PYTHONPATH": str(Path(__file__).parents[2])}
    env.pop("TIEOUT_DB", None)

    def tieout(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(TIEOUT), *args, "--db", db], env=env, capture_output=True,
                              text=True, timeout=120, check=False)  # fmt: skip

    for args in (
        ("init",),
        ("instrument", "add", "COIN", "--exchange", "24/7", "--currency", "USD"),
        ("account", "open", "A1", "--currency", "USD", "--type", "margin"),
        ("risk", "set", "max-orders-per-window", "100000"),
    ):
        assert tieout(*args).returncode == 0
    rows = "".join(f"A1,COIN,sell,1,limit,{100 + i % 7},gtc\n" for i in range(3500))
    orders = tmp_path / "orders.csv"
    orders.write_text("account,symbol,side,qty,type,limit,tif\n" + rows)
    proc = subprocess.run(
        [sys.executable, "-c", _FILE_INTERRUPTED_ON_THIRD_GROUP, str(int(sig)), "order",
         "submit", "--file", str(orders), "--json", "--db", db],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == code, proc.stderr
    doc = json.loads(proc.stdout)
    assert (doc["complete"], doc["next_line"], len(doc["results"])) == (False, 2002, 2000)
    assert "the first 2000 of 3500 orders (lines 2 to 2001) committed" in proc.stderr
    assert "Submit only the rows from line 2002 on" in proc.stderr
    assert "Traceback" not in proc.stderr
    listed = json.loads(tieout("order", "list", "--json").stdout)
    assert len(listed) == 2000


_SIGNAL_WHILE_PRINTING = (  # `sig` at the 20th write to stdout (the acknowledgements' JSON)
    "import os, signal, sys\n"
    "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
    "sig, out, n = int(sys.argv.pop(1)), sys.stdout, [0]\n"
    "again = os.environ.get('AGAIN_AT')\n"
    "class Out:\n"
    "    def write(self, text):\n"
    "        n[0] += 1\n"
    "        if n[0] == 20 or str(n[0]) == again: os.kill(os.getpid(), sig)\n"
    "        return out.write(text)\n"
    "    def __getattr__(self, name): return getattr(out, name)\n"
    "sys.stdout = Out()\n"
    "from cli.main import run; sys.argv[0] = 'tieout'; run()\n"
)


@pytest.mark.parametrize(
    ("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["ctrl-c", "sigterm"]
)
def test_an_order_file_interrupted_while_printing_prints_every_line(
    tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    """SIGTERM or Ctrl-C once every order of a file committed, while the command printed their
    acknowledgements: the JSON was cut part way (the reader lost which order id each row got),
    and the command said that what it was in the middle of was rolled back. The output is now
    written whole, and the command says that all of it committed, then exits 130 or 143."""
    db = f"sqlite:///{tmp_path / 'book.db'}"
    env = {**os.environ, "TIEOUT_ACTOR": "ops", "PYTHONPATH": str(Path(__file__).parents[2])}
    env.pop("TIEOUT_DB", None)
    for args in (
        ("init",),
        ("instrument", "add", "COIN", "--exchange", "24/7", "--currency", "USD"),
        ("account", "open", "A1", "--currency", "USD", "--type", "margin"),
    ):
        done = subprocess.run([str(TIEOUT), *args, "--db", db], env=env, capture_output=True,
                              text=True, timeout=120, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr
    orders = tmp_path / "orders.csv"
    rows = "".join(f"A1,COIN,sell,1,limit,{100 + i},gtc\n" for i in range(30))
    orders.write_text("account,symbol,side,qty,type,limit,tif\n" + rows)
    proc = subprocess.run(
        [sys.executable, "-c", _SIGNAL_WHILE_PRINTING, str(int(sig)), "order", "submit",
         "--file", str(orders), "--json", "--db", db],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == code, proc.stderr
    doc = json.loads(proc.stdout)
    assert (doc["accepted"], len(doc["results"])) == (30, 30)
    assert "after the command had done its work: all of it committed" in proc.stderr
    assert "rolled back" not in proc.stderr
    assert "Traceback" not in proc.stderr
    # a second signal while it prints ends it at once (a reader that stopped reading would
    # hold it until SIGKILL): the output is cut, and the command does not say it is whole
    orders.write_text(orders.read_text().replace(",gtc", ",day"))  # other orders, same rows
    cut = subprocess.run(
        [sys.executable, "-c", _SIGNAL_WHILE_PRINTING, str(int(sig)), "order", "submit",
         "--file", str(orders), "--json", "--db", db],
        env={**env, "AGAIN_AT": "40"}, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert cut.returncode == code, cut.stderr
    assert "all of it committed" not in cut.stderr and "Traceback" not in cut.stderr
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut.stdout)
