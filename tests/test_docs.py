"""The README is a front door and the docs hold together.

Every relative link and image in ``README.md`` and ``docs/*.md`` names a file (or folder) of the
repository, and an ``#anchor`` names a heading of the page it points to (GitHub's slugs); the
README stays small and shows the two commands, which the Makefile defines. Links are read from the
markdown outside code blocks and code spans; absolute URLs (``https:``, ``mailto:``) are not
checked (no network).
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
README_MAX_BYTES = 13_000
COMMANDS = ("make figures", "make test")

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.S | re.M)
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.S)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def _prose(text: str) -> str:
    """``text`` without fenced code blocks and inline code spans."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def links(text: str) -> list[str]:
    """Targets of the markdown links and images in ``text`` (code excluded), in order."""
    return LINK.findall(_prose(text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, inline markup and punctuation dropped, spaces
    to hyphens (``"SO(2): two actions"`` → ``"so2-two-actions"``)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)          # [text](url) → text
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading anchor of a markdown page, with GitHub's ``-1``, ``-2`` … for repeats."""
    seen: dict[str, int] = {}
    out = set()
    for heading in HEADING.findall(FENCE.sub("", text)):
        base = slug(heading)
        n = seen.get(base, 0)
        out.add(base if n == 0 else f"{base}-{n}")
        seen[base] = n + 1
    return out


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    """The links of ``page`` that do not resolve, each as ``'target (why)'``."""
    bad = []
    for target in links(page.read_text(encoding="utf-8")):
        if SCHEME.match(target):
            continue
        path_part, _, anchor = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page
        if root.resolve() not in (dest, *dest.parents):
            bad.append(f"{target} (outside the repository)")
        elif not dest.exists():
            bad.append(f"{target} (no such file: {dest.relative_to(root.resolve())})")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest.read_text("utf-8")):
            bad.append(f"{target} (no heading #{anchor} in {dest.name})")
    return bad


def _pages() -> list[Path]:
    return [README, *sorted((ROOT / "docs").glob("*.md"))]


# --- the checker itself, on pages with known answers ---------------------------------------------

def test_links_skip_code_and_read_images_titles_and_anchors():
    text = ("See [a](docs/a.md) and ![img](fig/x.png \"title\") and [web](https://x.org).\n"
            "`[not](code.md)`\n```\n[not](fenced.md)\n```\n[b](#top) [c](<sp.md>)\n")
    assert links(text) == ["docs/a.md", "fig/x.png", "https://x.org", "#top", "sp.md"]


def test_slugs_follow_github():
    assert slug("SO(2): two latent actions on glyphs") == "so2-two-latent-actions-on-glyphs"
    assert slug("Not reproducible; to be regenerated") == "not-reproducible-to-be-regenerated"
    assert slug("The `z_i` designs") == "the-z_i-designs"
    assert anchors("# A\n## A\n```\n# not a heading\n```\n") == {"a", "a-1"}


def test_broken_links_are_found_and_good_ones_pass(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "b.md").write_text("# Part one\n", encoding="utf-8")
    good = tmp_path / "good.md"
    good.write_text("[b](docs/b.md#part-one) [self](#top) [web](https://x.org)\n# Top\n",
                    encoding="utf-8")
    assert broken_links(good, tmp_path) == []
    bad = tmp_path / "bad.md"
    bad.write_text("[x](docs/missing.md) [y](docs/b.md#part-two) [z](../outside.md)\n",
                   encoding="utf-8")
    assert broken_links(bad, tmp_path) == [
        "docs/missing.md (no such file: docs/missing.md)",
        "docs/b.md#part-two (no heading #part-two in b.md)",
        "../outside.md (outside the repository)"]


# --- the real pages ---------------------------------------------------------------------------

@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    assert broken_links(page) == [], f"{page.relative_to(ROOT)}: broken links"


def test_docs_folder_has_pages():
    assert len(_pages()) > 1, "docs/*.md missing"


def test_readme_is_small():
    size = README.stat().st_size
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes; keep it under {README_MAX_BYTES}"


def test_readme_shows_the_two_commands_and_the_makefile_has_them():
    text = README.read_text(encoding="utf-8")
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for command in COMMANDS:
        assert command in text, f"README.md does not show {command!r}"
        target = command.split()[1]
        assert re.search(rf"^{target}:", makefile, re.M), f"Makefile has no target {target!r}"
