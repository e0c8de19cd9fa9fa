"""An HTML document as a browser would build it, checked strictly: every element that is opened
is closed in order (no stray or missing end tags), and the text a reader sees, with markup in
names shown as the characters it is made of."""

from __future__ import annotations

from html.parser import HTMLParser

VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
                  "source", "track", "wbr"})  # fmt: skip


# elements a browser shows apart from their neighbours (cells, rows, blocks)
APART = frozenset({"td", "th", "tr", "div", "p", "li", "h1", "h2", "h3", "br", "header",
                   "footer", "table", "text"})  # fmt: skip


class _Strict(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.text: list[str] = []
        self.problems: list[str] = []
        self.doctype = False
        self._hidden = 0  # inside <style> or <title>: not body text

    def handle_decl(self, decl: str) -> None:
        self.doctype = self.doctype or decl.lower() == "doctype html"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in APART:
            self.text.append(" ")
        if tag in VOID:
            return
        self.open.append(tag)
        if tag in ("style", "title"):
            self._hidden += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        return  # <br/>, <line .../> in SVG: complete elements

    def handle_endtag(self, tag: str) -> None:
        if tag in APART:
            self.text.append(" ")
        if tag in VOID:
            return
        if not self.open or self.open[-1] != tag:
            where = "/".join(self.open[-3:]) or "the document"
            self.problems.append(f"</{tag}> at line {self.getpos()[0]} closes inside {where}")
            return
        self.open.pop()
        if tag in ("style", "title"):
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.text.append(data)


def parse_html(html: str) -> str:
    """The document's visible text, its white space runs made one space; fails on malformed
    HTML (unbalanced elements, no doctype)."""
    parser = _Strict()
    parser.feed(html)
    parser.close()
    assert parser.doctype, "no <!DOCTYPE html>"
    assert not parser.problems, parser.problems[:5]
    assert not parser.open, f"never closed: {parser.open}"
    return " ".join("".join(parser.text).split())
