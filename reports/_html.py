"""Self-contained HTML renderer: inline CSS, figures embedded as base64 PNG."""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path

from ._content import Figure, Report
from ._content import Paragraph as TextBlock

__all__ = ["render_html_text"]

CSS = """
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,'Noto Sans CJK SC','Microsoft YaHei',sans-serif;
max-width:1000px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em} h2{font-size:1.2em;border-bottom:1px solid #ccd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:.85em} th,td{border:1px solid #bbb;padding:3px 6px;
vertical-align:top;text-align:left} th{background:#e8edf5}
.caption{font-size:.85em;color:#444;margin-bottom:1em} .note{color:#444;font-size:.9em}
.finding{margin:.3em 0 .3em 1em} .warning{color:#b00020;font-weight:bold;border:2px solid #b00020;
padding:.6em;margin:1em 0} img{max-width:100%} pre{font-size:.75em;background:#f6f6f6;padding:.6em;
overflow-x:auto}
"""


def render_html_text(report: Report) -> str:
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{escape(report.title)}</title><style>{CSS}</style></head><body>",
             f"<h1>{escape(report.title)}</h1>"]
    if report.violation:
        parts.append(f'<div class="warning" id="dp-violation">{escape(report.violation)}</div>')
    for section in report.sections:
        parts.append(f"<section><h2>{escape(section.title)}</h2>")
        for block in section.blocks:
            if isinstance(block, TextBlock):
                if block.style == "code":
                    parts.append(f"<pre>{escape(block.text)}</pre>")
                else:
                    parts.append(f'<p class="{block.style}">{escape(block.text)}</p>')
            elif isinstance(block, Figure):
                data = base64.b64encode(block.png).decode("ascii")
                parts.append(f'<figure><img alt="{escape(block.caption)}" src="data:image/png;base64,'
                             f'{data}"><figcaption class="caption">{escape(block.caption)}</figcaption>'
                             "</figure>")
            else:
                head = "".join(f"<th>{escape(h)}</th>" for h in block.header) if any(block.header) else ""
                rows = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>"
                               for r in block.rows)
                parts.append(f"<table>{'<thead><tr>' + head + '</tr></thead>' if head else ''}"
                             f"<tbody>{rows}</tbody></table>")
                if block.caption:
                    parts.append(f'<div class="caption">{escape(block.caption)}</div>')
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html(report: Report, path: str | Path) -> None:
    Path(path).write_text(render_html_text(report), encoding="utf-8")
