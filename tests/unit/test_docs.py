"""What the README tells an operator to paste is taken as written by the program that reads it."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_systemd_unit_has_no_comment_after_a_value() -> None:
    """systemd reads `EnvironmentFile=-/etc/tieout/secrets.env   # ...` as a path ending in the
    comment: the `-` then hid that the file was never read, and alerts went out without their
    secrets. Comments go on lines of their own."""
    blocks = re.findall(r"```ini\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    units = [b for b in blocks if "[Service]" in b]
    assert units, "the README's systemd unit"
    for unit in units:
        for line in unit.splitlines():
            if "=" in line and not line.lstrip().startswith(("#", ";")):
                assert "#" not in line.split("=", 1)[1], line
