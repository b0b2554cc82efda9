"""A single self-contained ``report.html``: inline CSS, tables and base64 PNG plots.

It must open from disk, offline, years later; so no scripts, fonts or external links.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence

from .plots import Figure
from .render import Table, table_html

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2rem auto;max-width:1150px;
color:#1d1d1f;padding:0 1rem;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{border-bottom:2px solid #ddd;padding-bottom:.2rem;margin-top:2.2rem}
h3{margin-top:1.6rem}h4{margin:1.2rem 0 .3rem}
table{border-collapse:collapse;margin:.4rem 0 1rem;font-size:.85rem}
th,td{padding:.25rem .5rem;border-bottom:1px solid #e3e3e3;text-align:right;white-space:nowrap}
thead th{border-bottom:2px solid #444;white-space:normal;vertical-align:bottom;min-width:3.5rem}
.scroll{overflow-x:auto;max-width:100%}tbody th{text-align:left;font-weight:600}
tbody tr:nth-child(even){background:#fafafa}
.caption,.note{font-size:.85rem;color:#444;max-width:70rem}.note{font-style:italic}
.figures{display:flex;flex-wrap:wrap;gap:1rem}figure{margin:0;max-width:100%}
figure img{max-width:100%;height:auto;border:1px solid #eee}figcaption{font-size:.8rem;color:#555}
dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem;font-size:.9rem}dt{font-weight:600}
dd{margin:0;word-break:break-all}details{margin:.5rem 0}summary{cursor:pointer;font-weight:600}
.warn{background:#fff4e5;border-left:4px solid #f0a020;padding:.5rem 1rem}
"""


def _definition_list(items: dict) -> str:
    rows = []
    for key, value in items.items():
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        rows.append(f"<dt>{html.escape(str(key))}</dt><dd>{html.escape(text)}</dd>")
    return "<dl>" + "".join(rows) + "</dl>"


def figure_html(figure: Figure) -> str:
    encoded = base64.b64encode(figure.png).decode("ascii")
    title = html.escape(figure.title)
    return f'<figure><img src="data:image/png;base64,{encoded}" alt="{title}"><figcaption>{title}</figcaption></figure>'


def build_html(
    title: str,
    protocol: dict,
    environment: dict,
    main_tables: Sequence[Table],
    detail_tables: Sequence[Table],
    figures: Sequence[Figure],
    warnings: Sequence[str] = (),
) -> str:
    """Assemble the page; ``detail_tables`` (per-class) go in collapsible blocks."""
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
    ]
    parts += [f'<p class="warn">{esc(w)}</p>' for w in warnings]
    parts += ["<h2>Protocol</h2>", _definition_list(protocol)]
    parts.append("<h2>Results</h2>")
    parts += [table_html(t) for t in main_tables]
    if detail_tables:
        parts.append("<h2>Per-class scores</h2>")
        for table in detail_tables:
            parts.append(f"<details><summary>{esc(table.title)}</summary>{table_html(table)}</details>")
    if figures:
        parts.append("<h2>Figures</h2>")
        for kind, heading in (
            ("folds", "Fold scores"),
            ("cost", "Accuracy vs training cost"),
            ("f1", "Per-class F1"),
            ("roc", "ROC curves"),
            ("confusion", "Confusion matrices"),
            ("errors", "Most confident errors"),
        ):
            chosen = [f for f in figures if f.kind == kind]
            if chosen:
                parts.append(f'<h3>{heading}</h3><div class="figures">')
                parts += [figure_html(f) for f in chosen]
                parts.append("</div>")
    parts += ["<h2>Environment</h2>", _definition_list(environment or {"(none)": "environment.json missing"})]
    parts.append("</body></html>")
    return "\n".join(parts)
