"""The id scrubbers of the report room equal the regex they replace (an alternation of every id,
longest first, between non-word characters), on random texts and id sets. The regex is the
reference: it states the rule plainly; the scrubbers do the same work without compiling an
alternation of a million ids."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from controlarm.report._privacy import _id_finder

_ALPHABET = "ab1-_. x"
_ids = st.sets(st.text(alphabet=_ALPHABET, min_size=1, max_size=5), max_size=6)
_texts = st.text(alphabet=_ALPHABET, max_size=40)


def _reference(ids, word: str):
    keys = sorted(ids, key=lambda s: (-len(s), s))
    if not keys:
        return lambda t: t
    pattern = re.compile(rf"(?<!{word})(?:{'|'.join(map(re.escape, keys))})(?!{word})")
    return lambda t: pattern.sub("[id]", t)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(_ids, _texts)
def test_log_scrubber_equals_the_regex(ids, text):
    assert _id_finder(ids, r"[\w-]")(text) == _reference(ids, r"[\w-]")(text)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(_ids, _texts)
def test_listing_scrubber_equals_the_regex(ids, text):
    assert _id_finder(ids, "[A-Za-z0-9_]")(text) == _reference(ids, "[A-Za-z0-9_]")(text)


def test_examples():
    find = _id_finder({"T01", "P-0042", "H7"}, "[A-Za-z0-9_]")
    assert find("BM-MSC-2006-T01-1 lot for P-0042, not P-00421 or xH7") == "BM-MSC-2006-[id]-1 lot for [id], not P-00421 or xH7"
