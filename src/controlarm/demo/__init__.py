"""Synthetic demo data: a reconstruction of a published single-arm MSC trial and its ICU pool.

THE DATA ARE SYNTHETIC. ``generate_demo`` writes the tables and the demo study file;
``demo_design`` returns what was designed. See docs/demo.md.
"""

from ._generate import demo_design, generate_demo

__all__ = ["generate_demo", "demo_design"]
