"""One table, four formats: Markdown, CSV, LaTeX (booktabs) and HTML.

Tables are built once as strings plus a bold mask (best value per column), so every format
shows the same numbers and the same emphasis; CSV gets the unformatted numbers instead.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from karyobench import atomic

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


@dataclass
class Section:
    """One displayed table: string cells, optional bold mask of the same shape."""

    title: str
    frame: pd.DataFrame
    bold: pd.DataFrame | None = None
    caption: str = ""
    note: str = ""

    def is_bold(self, row: int, column: int) -> bool:
        return bool(self.bold is not None and self.bold.iat[row, column])


@dataclass
class Table:
    """A named table (several sections allowed) with its machine-readable numbers."""

    name: str
    title: str
    sections: list[Section]
    numbers: pd.DataFrame
    caption: str = ""
    notes: list[str] = field(default_factory=list)


def fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "—"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return f"{float(value):.{digits}f}"


def fmt_mean_std(mean: float, std: float, digits: int = 3) -> str:
    if np.isnan(mean):
        return "—"
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if not np.isnan(std) else f"{mean:.{digits}f}"


def fmt_ci(low: float, high: float, digits: int = 3) -> str:
    if np.isnan(low) or np.isnan(high):
        return "—"
    return f"[{low:.{digits}f}, {high:.{digits}f}]"


def best_mask(values: pd.DataFrame, higher_is_better: dict[str, bool]) -> pd.DataFrame:
    """True at the best finite value of each listed column (ties all bold)."""
    mask = pd.DataFrame(False, index=values.index, columns=values.columns)
    for column, higher in higher_is_better.items():
        if column not in values.columns:
            continue
        numbers = pd.to_numeric(values[column], errors="coerce").to_numpy(dtype=float)
        if len(numbers) < 2 or np.all(np.isnan(numbers)):
            continue
        best = np.nanmax(numbers) if higher else np.nanmin(numbers)
        mask[column] = np.isclose(numbers, best, rtol=0, atol=1e-12)
    return mask


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text)).replace("±", r"$\pm$").replace("—", "--")


def _markdown_cell(text: str) -> str:
    return str(text).replace("|", r"\|").replace("\n", " ")


def section_markdown(section: Section, level: int = 3) -> str:
    frame = section.frame
    header = [frame.index.name or ""] + [str(c) for c in frame.columns]
    lines = []
    if section.title:
        lines += [f"{'#' * level} {section.title}", ""]
    if section.caption:
        lines += [section.caption, ""]
    lines.append("| " + " | ".join(_markdown_cell(h) for h in header) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * len(frame.columns)) + "|")
    for i, (label, row) in enumerate(frame.iterrows()):
        cells = [_markdown_cell(label)]
        for j, value in enumerate(row):
            text = _markdown_cell(value)
            cells.append(f"**{text}**" if section.is_bold(i, j) and text != "—" else text)
        lines.append("| " + " | ".join(cells) + " |")
    if section.note:
        lines += ["", section.note]
    return "\n".join(lines) + "\n"


def table_markdown(table: Table) -> str:
    parts = [f"## {table.title}", ""]
    if table.caption:
        parts += [table.caption, ""]
    parts += [section_markdown(s) for s in table.sections]
    parts += [f"> {note}\n" for note in table.notes]
    return "\n".join(parts).rstrip("\n") + "\n\n"


def section_latex(section: Section, caption_prefix: str = "", fallback_caption: str = "") -> str:
    frame = section.frame
    columns = "l" + "r" * len(frame.columns)
    header = " & ".join(latex_escape(h) for h in [frame.index.name or ""] + list(map(str, frame.columns)))
    rows = []
    for i, (label, row) in enumerate(frame.iterrows()):
        cells = [latex_escape(label)]
        for j, value in enumerate(row):
            text = latex_escape(value)
            cells.append(rf"\textbf{{{text}}}" if section.is_bold(i, j) and value != "—" else text)
        rows.append(" & ".join(cells) + r" \\")
    caption = " ".join(
        p for p in [caption_prefix, section.title, section.caption or fallback_caption, section.note] if p
    )
    return "\n".join(
        [
            r"\begin{table}[htbp]",
            r"\centering",
            rf"\caption{{{latex_escape(caption)}}}",
            rf"\begin{{tabular}}{{{columns}}}",
            r"\toprule",
            header + r" \\",
            r"\midrule",
            *rows,
            r"\bottomrule",
            r"\end{tabular}",
            r"\end{table}",
            "",
        ]
    )


def table_latex(table: Table) -> str:
    header = "% requires \\usepackage{booktabs}\n"
    prefix = f"{table.title}." if table.title else ""
    body = "\n".join(section_latex(s, prefix, table.caption) for s in table.sections)
    notes = "".join(f"% {note}\n" for note in table.notes if note)
    return header + notes + body


def section_html(section: Section) -> str:
    frame = section.frame
    esc = html.escape
    head = "".join(f"<th>{esc(str(h))}</th>" for h in [frame.index.name or ""] + list(frame.columns))
    body = []
    for i, (label, row) in enumerate(frame.iterrows()):
        cells = [f"<th>{esc(str(label))}</th>"]
        for j, value in enumerate(row):
            text = esc(str(value))
            cells.append(f"<td><strong>{text}</strong></td>" if section.is_bold(i, j) else f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    parts = []
    if section.title:
        parts.append(f"<h4>{esc(section.title)}</h4>")
    if section.caption:
        parts.append(f'<p class="caption">{esc(section.caption)}</p>')
    parts.append(
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'
    )
    if section.note:
        parts.append(f'<p class="note">{esc(section.note)}</p>')
    return "\n".join(parts)


def table_html(table: Table) -> str:
    esc = html.escape
    parts = [f'<section id="{esc(table.name)}"><h3>{esc(table.title)}</h3>']
    if table.caption:
        parts.append(f'<p class="caption">{esc(table.caption)}</p>')
    parts += [section_html(s) for s in table.sections]
    parts += [f'<p class="note">{esc(n)}</p>' for n in table.notes]
    parts.append("</section>")
    return "\n".join(parts)


def write_table(table: Table, folder: Path, stem: str | None = None) -> list[Path]:
    """Write ``<stem>.md``, ``<stem>.csv`` and ``<stem>.tex`` into ``folder``."""
    stem = stem or table.name
    folder = Path(folder)
    return [
        atomic.write_text(folder / f"{stem}.md", table_markdown(table)),
        atomic.write_text(folder / f"{stem}.csv", table.numbers.to_csv(index=False)),
        atomic.write_text(folder / f"{stem}.tex", table_latex(table)),
    ]
