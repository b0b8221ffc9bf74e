"""The `spec` room's door: read a study file, turn every mistake into a message with the key's path.

pydantic does the checking; this module only words its findings for a person editing a TOML file:
the file, the line where the key stands (best effort, found by scanning the text), the dotted path,
the rule and what was received.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import InputError
from ._models import Study

__all__ = ["load_study", "study_from_dict"]


def load_study(path: str | Path) -> Study:
    """Read and validate a study file.

    Parameters
    ----------
    path : str or Path
        The TOML study file. Relative paths inside it are resolved against its folder.

    Returns
    -------
    Study
        Frozen and validated.

    Raises
    ------
    InputError
        The file is missing, is not valid TOML, or breaks a rule; the message names every problem.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: study file not found. Fix: check the path, or write a template with `controlarm init {path}`.")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: is not UTF-8 encoded (byte {exc.start + 1}). Fix: save the study file as "
                         "UTF-8.") from None
    if not text.strip():
        raise InputError(f"{path}: the study file is empty. Fix: write one with `controlarm init {path}` and "
                         "edit it.")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML: {exc}. Fix: correct the syntax at that line.") from None
    study = study_from_dict(raw, source=path.name, text=text)
    study._base_dir = path.resolve().parent
    return study


def study_from_dict(raw: dict[str, Any], *, source: str = "study", text: str = "") -> Study:
    """Validate a parsed study (a dict). ``source`` and ``text`` only improve error messages."""
    try:
        return Study.model_validate(raw)
    except ValidationError as exc:
        lines = [_describe(err, source, text) for err in exc.errors(include_url=False)]
        head = f"{source}: {len(lines)} problem{'s' if len(lines) > 1 else ''} in the study file:"
        raise InputError("\n".join([head, *("  - " + line for line in lines)])) from None


def _describe(err: dict[str, Any], source: str, text: str) -> str:
    loc = [str(p) for p in err.get("loc", ())]
    # pydantic puts the literal/union branch names into loc; keep only keys and list indices.
    keys = [p for p in loc if not p.startswith(("literal[", "function-"))]
    dotted = _dotted(keys)
    kind = err.get("type", "")
    line = _line_of(keys, text)
    where = f"{source}, line {line}" if line else source
    received = err.get("input")
    if kind == "extra_forbidden":
        return f"{where}: unknown key `{dotted}`. Fix: remove it or correct the spelling (see `controlarm init` for every key)."
    if kind == "missing":
        return f"{where}: `{dotted}` is required but missing. Fix: add it (see `controlarm init` for an example)."
    msg = err.get("msg", "invalid value")
    msg = re.sub(r"^Value error, ", "", msg)
    got = "" if isinstance(received, dict) else f"; got {received!r}"
    target = f"`{dotted}`" if dotted else "the study"
    if "Fix:" in msg:
        return f"{where}: {target}: {msg}{got}."
    fix = f"change `{dotted}` to meet this rule" if dotted else "change the study file to meet this rule"
    return f"{where}: {target}: {msg}{got}. Fix: {fix} (see `controlarm init` for an example)."


def _dotted(keys: list[str]) -> str:
    out = ""
    for k in keys:
        out += f"[{k}]" if k.isdigit() else (("." if out else "") + k)
    return out


def _line_of(keys: list[str], text: str) -> int | None:
    """Best-effort line number of the last named key, searched after its section header."""
    if not text:
        return None
    names = [k for k in keys if not k.isdigit()]
    if not names:
        return None
    lines = text.splitlines()
    start = 0
    if len(names) > 1:
        header = re.compile(r"^\s*\[\[?\s*" + re.escape(".".join(names[:-1])) + r"\s*\]\]?\s*(#.*)?$")
        for i, line in enumerate(lines):
            if header.match(line):
                start = i
                break
    key = re.compile(r"^\s*" + re.escape(names[-1]) + r"\s*=")
    for i in range(start, len(lines)):
        if key.match(lines[i]):
            return i + 1
    return None
