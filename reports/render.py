"""Rendering report data: Jinja2 templates to self-contained HTML, WeasyPrint from that HTML to
PDF. Templates autoescape everything (a symbol, a name or a comment holding markup is shown as
text), show control characters as escapes (oms.values.printable), and fail on any undefined
name (StrictUndefined): a template never shows a blank where a figure is missing. The HTML
carries its CSS and charts inline (SVG) and loads nothing; the PDF renderer may read the
packaged fonts and nothing else (no network, no other files).
"""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import localcontext
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from oms.lots import CONTEXT
from oms.values import printable
from reports import fmt, fonts

TEMPLATES = Path(__file__).parent / "templates"


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
        keep_trailing_newline=True,
        finalize=_visible,
    )
    env.filters.update(
        money=fmt.money,
        exact_money=fmt.exact_money,
        price=fmt.price,
        qty=fmt.quantity,
        pct=fmt.pct,
        day=fmt.day,
        ts=fmt.timestamp,
        traded=fmt.traded,
        short=fmt.short_hash,
        text=_text,
    )
    return env


def _visible(value: Any) -> Any:
    """Every value a template shows: text with its control characters shown as escapes (a
    file's ESC or a venue's U+202E must not hide or reorder what a report says); our own markup
    (Markup) as it is."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return printable(value)
    return value


def _text(value: Any) -> str:
    """A JSON value of a break's differences or a quarantined row, as text."""
    if value is None:
        return fmt.DASH
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render_html(template: str, *, pdf: bool = False, **context: Any) -> str:
    """The document as HTML. `pdf` adds the packaged fonts for WeasyPrint (the HTML meant to be
    opened elsewhere uses the system's fonts and references no file)."""
    fonts_css = Markup(fonts.font_face_css()) if pdf else Markup("")  # noqa: S704 - our own CSS
    # a template's own sums and negations (a total row, -withdrawals) exactly, as the report's
    # data was computed, not in Python's default 28 digits
    with localcontext(CONTEXT):
        return environment().get_template(template).render(fonts_css=fonts_css, **context)


class _QuietSubsetter(logging.Filter):
    """Drops WeasyPrint's note that fontTools subsets the fonts (the optional HarfBuzz subsetter
    is not installed): true for every document, and no news."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "HarfBuzz-Subset" not in record.getMessage()


@lru_cache(maxsize=1)
def weasyprint() -> Any:
    """WeasyPrint, imported when first needed (it takes most of a second)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the same note, as a warning
        import weasyprint as wp
        import weasyprint.text.fonts
        import weasyprint.urls
    logging.getLogger("weasyprint").addFilter(_QuietSubsetter())
    return wp


def _fetcher() -> Any:
    URLFetcher = weasyprint().urls.URLFetcher  # noqa: N806

    root = TEMPLATES.resolve()

    class LocalFetcher(URLFetcher):  # type: ignore[misc,valid-type]
        """Serves the packaged fonts; refuses every other URL (nothing from the network)."""

        def fetch(self, url: str, headers: Any = None) -> Any:
            parsed = urlparse(url)
            path = Path(unquote(parsed.path)).resolve() if parsed.scheme == "file" else None
            if path is None or root not in path.parents:
                raise ValueError(f"tieout documents load no external resources ({url[:80]})")
            return super().fetch(url, headers)

    return LocalFetcher(allowed_protocols=("file",))


@dataclass(frozen=True, slots=True)
class Pdf:
    data: bytes
    pages: int


def _document(html: str, font_config: Any = None) -> Any:
    """WeasyPrint's laid-out document of HTML from render_html(..., pdf=True)."""
    wp = weasyprint()
    return wp.HTML(string=html, base_url=TEMPLATES.as_uri() + "/", url_fetcher=_fetcher()).render(
        font_config=font_config or wp.text.fonts.FontConfiguration()
    )


def render_pdf(html: str) -> Pdf:
    """The PDF of a document rendered with render_html(..., pdf=True)."""
    document = _document(html)
    return Pdf(bytes(document.write_pdf()), len(document.pages))


# pages of page numbers rendered at once when a document rendered in parts is numbered
_NUMBERED_AT_ONCE = 500
_PT = 0.75  # PDF points in a CSS pixel


def render_pdf_parts(parts: Iterable[str]) -> Pdf:
    """One PDF of documents rendered one after the other (each render_html(..., pdf=True) with
    its page numbers left out), as one document: its pages numbered "Page i of N" over the
    whole, as report.css numbers a document rendered at once, its bookmarks (the outline:
    headings by level, as WeasyPrint makes them) one tree over the parts, its language and
    metadata the first part's. WeasyPrint holds one part's layout at a time; what grows with
    the document is pypdf's copy of the pages written so far (about 15 KB a break)."""
    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import Fit, NameObject

    writer = PdfWriter()
    font_config = weasyprint().text.fonts.FontConfiguration()  # (the fonts loaded once)
    marks: list[tuple[int, int, str, float, float]] = []  # (page, level, label, left, top)
    for html in parts:
        document = _document(html, font_config)
        first = len(writer.pages)
        for k, page in enumerate(document.pages):
            for level, label, (x, y), _state in page.bookmarks:
                marks.append((first + k, level, label, x * _PT, (page.height - y) * _PT))
        reader = PdfReader(io.BytesIO(document.write_pdf()))
        del document
        if not first:
            writer.add_metadata(reader.metadata or {})
            lang = reader.root_object.get("/Lang")  # (WeasyPrint's from <html lang>)
            if lang is not None:
                writer.root_object[NameObject("/Lang")] = lang
        writer.append(reader, import_outline=False)
    total = len(writer.pages)
    for start in range(0, total, _NUMBERED_AT_ONCE):
        count = min(_NUMBERED_AT_ONCE, total - start)
        numbers = render_pdf(
            render_html("page_numbers.html", pdf=True, start=start + 1, count=count, total=total)
        )
        if numbers.pages != count:  # (each empty page is one page: never seen otherwise)
            raise RuntimeError(f"page numbers: {numbers.pages} pages rendered for {count}")
        for page, overlay in zip(
            writer.pages[start : start + count],
            PdfReader(io.BytesIO(numbers.data)).pages,
            strict=True,
        ):
            page.merge_page(overlay)
            page.compress_content_streams()
    open_items: list[tuple[int, Any]] = []  # the outline's items above the next, by level
    for index, level, label, left, top in marks:
        while open_items and open_items[-1][0] >= level:
            open_items.pop()
        item = writer.add_outline_item(
            title=label,
            page_number=index,
            parent=open_items[-1][1] if open_items else None,
            fit=Fit.xyz(left=left, top=top),
        )
        open_items.append((level, item))
    out = io.BytesIO()
    writer.write(out)
    return Pdf(out.getvalue(), total)
