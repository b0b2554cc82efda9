"""``docs/study-file.md``: the study file reference, generated from the schema itself.

The pydantic models of ``karyobench.study`` are the one place that defines which keys a
study may hold, their types, defaults and meaning; this module only renders them, so the
reference cannot drift from what ``load_study`` accepts (a test compares the committed
file with ``render()``). Regenerate with ``python -m karyobench.study_doc``.
"""

from __future__ import annotations

import sys
import types
import typing
from pathlib import Path

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from karyobench.study import Study

DOC_PATH = Path(__file__).resolve().parents[1] / "docs" / "study-file.md"

HEADER = """# Study file reference

<!-- Generated from the schema in karyobench/study.py by `python -m karyobench.study_doc`;
edit the models' Field descriptions, not this file (tests/test_study_doc.py checks it). -->

A study is one YAML file. Unknown keys and wrong types are errors naming the key (with a
"did you mean"). Paths are relative to the study file. A walk-through with an annotated
example is in [studies.md](studies.md).
"""


def _models(model: type[BaseModel], seen: dict[str, type[BaseModel]]) -> None:
    """Every model reachable from ``model`` through its fields, in first-use order."""
    seen.setdefault(model.__name__, model)
    for field in model.model_fields.values():
        for nested in _nested_models(field.annotation):
            if nested.__name__ not in seen:
                _models(nested, seen)


def _nested_models(annotation) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found = []
    for arg in typing.get_args(annotation):
        found += _nested_models(arg)
    return found


def _type_text(annotation) -> str:
    """A type as a reader of YAML thinks of it: choices, lists, mappings, sections."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_text(args[0])
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        parts = [_type_text(a) for a in args if a is not type(None)]
        text = " or ".join(parts)
        return text + " or null" if type(None) in args else text
    if origin is list:
        return f"list of {_type_text(args[0])}" if args else "list"
    if origin is dict:
        return f"mapping to {_type_text(args[1])}" if args else "mapping"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
    if annotation is typing.Any:
        return "any"
    if isinstance(annotation, type) and issubclass(annotation, Path):
        return "path"
    return getattr(annotation, "__name__", str(annotation))


def _default_text(field) -> str:
    if field.is_required():
        return "required"
    if field.default_factory is not None:
        value = field.default_factory()
        if isinstance(value, BaseModel):
            return "(its defaults)"
    else:
        value = field.default
    if value is PydanticUndefined:
        return ""
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`" if value not in ({}, []) else "empty"


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _section(model: type[BaseModel]) -> str:
    doc = " ".join((model.__doc__ or "").split()) if model.__doc__ and \
        model.__doc__ is not BaseModel.__doc__ else ""
    lines = [f"## {model.__name__}", ""]
    if doc:
        lines += [doc, ""]
    lines += ["| key | type | default | meaning |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        lines.append(f"| `{name}` | {_type_text(field.annotation)} | {_default_text(field)} "
                     f"| {_cell(field.description or '')} |")
    return "\n".join(lines) + "\n"


def render() -> str:
    """The reference page for the current schema."""
    models: dict[str, type[BaseModel]] = {}
    _models(Study, models)
    return "\n".join([HEADER, *(_section(m) for m in models.values())])


def main() -> None:
    DOC_PATH.write_text(render(), encoding="utf-8")
    print(f"wrote {DOC_PATH}", file=sys.stderr)


if __name__ == "__main__":
    main()
