"""The fonts PDFs embed: subsets of DejaVu Sans (regular and bold) kept with the templates.

WeasyPrint subsets every font it embeds, for every document; with a full DejaVu Sans (its large
layout tables) that is most of the time a statement takes to render. The packaged subsets hold
Latin, punctuation, currency and a few symbols only, without layout tables or hinting, which
makes PDFs about twice as fast and the same on every machine. Characters outside them fall back
to the system's fonts. The HTML documents use the system's fonts and embed nothing.

Regenerate with `python -m reports.fonts [DIR_OF_DEJAVU_TTFS]` (needs fontTools, which
WeasyPrint depends on). DejaVu's licence (Bitstream Vera, DejaVu changes public domain) is in
templates/dejavu-LICENSE.txt; the names of the fonts are unchanged.
"""

from __future__ import annotations

import sys
from pathlib import Path

TEMPLATES = Path(__file__).parent / "templates"
FAMILY = "Tieout Sans"
FACES = (("normal", "dejavu-sans-subset.ttf"), ("bold", "dejavu-sans-bold-subset.ttf"))
SOURCES = {
    "dejavu-sans-subset.ttf": "DejaVuSans.ttf",
    "dejavu-sans-bold-subset.ttf": "DejaVuSans-Bold.ttf",
}
_RANGES = (
    (0x20, 0x7E),
    (0xA0, 0x17F),  # Latin-1 and Latin Extended-A
    (0x2000, 0x206F),  # general punctuation
    (0x20A0, 0x20CF),  # currency symbols
    (0x2190, 0x2199),  # arrows
    (0x2212, 0x2212),  # minus
    (0x2248, 0x2248),
    (0x2260, 0x2265),
    (0x25A0, 0x25CF),  # geometric shapes
)


def font_files() -> list[tuple[str, Path]]:
    """(weight, path) of the packaged faces that exist."""
    return [(weight, TEMPLATES / name) for weight, name in FACES if (TEMPLATES / name).is_file()]


def font_face_css() -> str:
    """@font-face rules for the PDF rendering (file URLs of the packaged faces)."""
    return "\n".join(
        f'@font-face {{ font-family: "{FAMILY}"; font-weight: {weight}; '
        f'src: url("{path.as_uri()}"); }}'
        for weight, path in font_files()
    )


def regenerate(source_dir: Path) -> None:  # pragma: no cover - a maintenance tool
    from fontTools import subset  # type: ignore[import-untyped]
    from fontTools.ttLib import TTFont  # type: ignore[import-untyped]

    unicodes = [c for lo, hi in _RANGES for c in range(lo, hi + 1)]
    for target, source in SOURCES.items():
        options = subset.Options()
        options.layout_features = []
        options.drop_tables += ["GSUB", "GPOS", "GDEF", "FFTM"]
        options.hinting = False
        options.name_IDs = ["*"]
        font = TTFont(str(source_dir / source))
        subsetter = subset.Subsetter(options)
        subsetter.populate(unicodes=unicodes)
        subsetter.subset(font)
        font.save(str(TEMPLATES / target))


if __name__ == "__main__":  # pragma: no cover
    regenerate(Path(sys.argv[1] if len(sys.argv) > 1 else "/usr/share/fonts/truetype/dejavu"))
