"""A PDF as its reader sees it, through poppler's pdftotext and pdfinfo (Debian's
poppler-utils, installed by scripts/test when it is missing).

In CI a missing poppler fails the test, like a missing PostgreSQL: a skipped check would be
reported as passed. Outside CI the tests that need it are skipped with the reason."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        why = f"{name} (Debian package poppler-utils) is not installed; scripts/test installs it"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    return found


@dataclass(frozen=True, slots=True)
class PdfText:
    pages: list[str]  # the text of each page, laid out as printed (pdftotext -layout)

    @property
    def text(self) -> str:
        return "\n".join(self.pages)

    def words(self) -> str:
        """The text with every run of white space made one space (for phrases that wrap)."""
        return " ".join(self.text.split())

    def compact(self) -> str:
        """The text without any white space (for names and numbers that a narrow cell wraps)."""
        return "".join(self.text.split())


def read_pdf(source: bytes | Path, tmp_dir: Path) -> PdfText:
    path = source if isinstance(source, Path) else tmp_dir / "document.pdf"
    if not isinstance(source, Path):
        path.write_bytes(source)
    text = subprocess.run(
        [_tool("pdftotext"), "-layout", "-enc", "UTF-8", str(path), "-"],
        check=True, capture_output=True,
    ).stdout.decode("utf-8")  # fmt: skip
    info = subprocess.run(
        [_tool("pdfinfo"), str(path)], check=True, capture_output=True, text=True
    ).stdout
    found = re.search(r"^Pages:\s+(\d+)$", info, re.M)
    assert found, info
    pages = text.split("\f")
    if pages and pages[-1].strip() == "":
        pages = pages[:-1]  # pdftotext ends every page with a form feed
    assert len(pages) == int(found.group(1)), (len(pages), info)
    return PdfText(pages)
