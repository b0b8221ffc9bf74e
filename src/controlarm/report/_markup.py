"""Report room: the small HTML vocabulary every section uses (escaping, tables, figures).

Every string that did not originate in the report room passes through :func:`esc` here; sections
never format user text into markup themselves.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

__all__ = ["FigureCounter", "cell", "esc", "figure", "inline_svg", "table", "ul"]


def esc(value: Any) -> str:
    """Escape any value for HTML text or attribute context."""
    return html.escape("" if value is None else str(value), quote=True)


def cell(value: Any) -> str:
    """Escape, keeping line breaks of multi-entry cells; long identifiers may break after ``_``."""
    return esc(value).replace("\n", "<br>").replace("_", "_<wbr>")


def table(df: pd.DataFrame, columns: Sequence[tuple[str, str]], *, numeric: Iterable[str] = (),
          cls: str = "", caption: str = "") -> str:
    """A table of ``df``: ``columns`` is (key, header text) pairs; every cell escaped."""
    numeric = set(numeric)
    num = ' class="num"'
    head = "".join(f"<th{num if k in numeric else ''}>{esc(h)}</th>" for k, h in columns)
    body = []
    for row in df.to_dict("records"):
        tds = "".join(f"<td{num if k in numeric else ''}>{cell(row.get(k, ''))}</td>" for k, _ in columns)
        body.append(f"<tr>{tds}</tr>")
    cls_attr = f' class="{esc(cls)}"' if cls else ""
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return f"<table{cls_attr}>{cap}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def inline_svg(svg: str, prefix: str, label: str) -> str:
    """An SVG ready to inline: ids namespaced by ``prefix`` (several SVGs share one page), labelled."""
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}-{m.group(1)}"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}-{m.group(1)})", svg)
    svg = re.sub(r'((?:xlink:)?href)="#([^"]+)"', lambda m: f'{m.group(1)}="#{prefix}-{m.group(2)}"', svg)
    return svg.replace("<svg ", f'<svg role="img" aria-label="{esc(label)}" ', 1)


class FigureCounter:
    """Numbers the page's figures in order of appearance."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> int:
        self.n += 1
        return self.n


def figure(svg: str, prefix: str, label: str, caption: str, number: int) -> str:
    """A numbered ``<figure>`` with the inlined SVG and an escaped caption."""
    return (f'<figure id="fig-{esc(prefix)}">{inline_svg(svg, prefix, label)}'
            f"<figcaption>Figure {number}. {esc(caption)}</figcaption></figure>")


def ul(items: Iterable[str]) -> str:
    lis = "".join(f"<li>{esc(i)}</li>" for i in items)
    return f"<ul>{lis}</ul>" if lis else '<p class="note">None.</p>'
