"""Reading the rendered report back as a person sees it: sections, table rows, cell text."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

SVG_NAMESPACE = "http://www.w3.org/2000/svg"


@dataclass
class TableRow:
    css: str
    cells: list[str] = field(default_factory=list)
    cell_css: list[str] = field(default_factory=list)
    titles: list[str | None] = field(default_factory=list)


class _Rows(HTMLParser):
    """Every <tr> of a fragment with its cells' text (entities decoded), classes and titles."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[TableRow] = []
        self._in_cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "tr":
            self.rows.append(TableRow(found.get("class") or ""))
        elif tag in ("td", "th") and self.rows:
            row = self.rows[-1]
            row.cells.append("")
            row.cell_css.append(found.get("class") or "")
            row.titles.append(found.get("title"))
            self._in_cell = True

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th"):
            self._in_cell = False

    def handle_data(self, data: str) -> None:
        if self._in_cell and self.rows:
            self.rows[-1].cells[-1] += data


def section(page: str, heading: str) -> str:
    """The markup of the <section> whose <h2> is `heading` (fails when there is none)."""
    start = page.index(f"<h2>{heading}</h2>")
    return page[start : page.index("</section>", start)]


def has_section(page: str, heading: str) -> bool:
    return f"<h2>{heading}</h2>" in page


def rows(fragment: str) -> list[TableRow]:
    parser = _Rows()
    parser.feed(fragment)
    return [r for r in parser.rows if r.cell_css and "group" not in r.css and r.cells]


def column(fragment: str, header: str, occurrence: int = 0) -> list[str]:
    """The cells under `header` (its n-th occurrence) in the first table of the fragment."""
    table = fragment[fragment.index("<table") : fragment.index("</table>")]
    head = table[: table.index("</thead>")]
    headers = rows(head)[-1].cells  # the column headers, below any spanning header row
    index = [i for i, text in enumerate(headers) if text == header][occurrence]
    body = table[table.index("<tbody>") :]
    return [r.cells[index] for r in rows(body)]


def data_rows(fragment: str) -> list[TableRow]:
    """The rows of every table body in the fragment, group headings left out."""
    out: list[TableRow] = []
    for body in re.findall(r"<tbody>.*?</tbody>", fragment, re.DOTALL):
        out += rows(body)
    return out


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)


FETCHING_TAGS = {"script", "link", "img", "iframe", "object", "embed", "video", "audio", "source"}
FETCHING_ATTRIBUTES = {"src", "srcset", "data", "poster", "action", "xlink:href", "background"}


def assert_self_contained(page: str, allowed_links: frozenset[str] = frozenset()) -> None:
    """Nothing the browser would fetch (script, stylesheet, font, image, frame), and the only
    links leaving the page are `allowed_links` as <a href> (knowledge-base articles).

    Checks the parsed tags, so data shown as escaped text (e.g. "&lt;img src=x&gt;") is text.
    """
    parser = _Tags()
    parser.feed(page)
    for tag, attrs in parser.tags:
        assert tag not in FETCHING_TAGS, tag
        assert not FETCHING_ATTRIBUTES & set(attrs), (tag, attrs)
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        assert "url(" not in (attrs.get("style") or ""), (tag, attrs)
        if "href" in attrs:
            href = attrs["href"] or ""
            assert tag == "a", (tag, attrs)
            assert href.startswith("#") or href in allowed_links, href
        if tag == "svg":
            assert attrs.get("xmlns") == SVG_NAMESPACE
    css = "".join(parser.styles)
    assert "url(" not in css and "@import" not in css and "@font-face" not in css
