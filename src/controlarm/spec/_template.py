"""The commented study-file template written by `controlarm init`."""

from __future__ import annotations

from importlib.resources import files

__all__ = ["template_text"]


def template_text() -> str:
    """The template, every key shown with a comment; it parses as a valid study."""
    return files("controlarm.spec").joinpath("template.toml").read_text(encoding="utf-8")
