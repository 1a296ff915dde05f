"""Ranked knowledge-base search on word stems: "bearings", "bearing" and "bear" find the same entries.

Every entry's title, tags, issue keys and body are split into words, lower-cased and reduced to
their English stem (Snowball's English stemmer: "vibrations" and "vibrating" -> "vibrat"). A query
is treated the same way; an entry matches when it holds any of the query's stems, and entries are
ranked by BM25F: a stem counts more in the title (x4), the tags and issue keys (x3) than in the
body (x1), more when it is rare among the entries, and less in a longer field than the mean (in
the body most).
Ties go by slug. The same code on SQLite and PostgreSQL, so both answer alike.

The index is built in memory from the stored entries and rebuilt whenever one of them changes
(`KnowledgeBase.search` compares each entry's content hash): a knowledge base is tens to hundreds
of entries, built in milliseconds.
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

import snowballstemmer  # type: ignore[import-untyped]  # no type hints shipped

WORD = re.compile(r"[^\W_]+", re.UNICODE)  # "sensor.frozen" and "rul_low" are two words each
# Words that say nothing about a fault; they neither match nor count.
_STOP_WORDS = """a an and are as at be by for from how in into is it its of on or so that the then this to was
what when where which why with"""
STOP = frozenset(_STOP_WORDS.split())
WEIGHTS = {"title": 4.0, "tags": 3.0, "issue_keys": 3.0, "body": 1.0}
# How much a longer field than the mean dilutes a word: fully in the body, little in a list of tags.
DILUTION = {"title": 0.5, "tags": 0.3, "issue_keys": 0.3, "body": 0.75}
K1 = 1.2  # how fast more occurrences stop adding
MAX_TERMS = 20

_stemmer = snowballstemmer.stemmer("english")
_lock = threading.Lock()  # a Snowball stemmer keeps its state in the object: one word at a time


@lru_cache(maxsize=65_536)
def stem(word: str) -> str:
    """The English stem of one lower-case word ("bearings" -> "bear")."""
    with _lock:
        return str(_stemmer.stemWord(word))


def stems(text: str) -> list[str]:
    """The stems of a text's words, stop words left out, in order."""
    return [stem(w) for w in (m.lower() for m in WORD.findall(text)) if w not in STOP and len(w) < 64]


class Searchable(Protocol):
    """What the index reads of an entry (`pitstop.maintenance.kb.Entry`)."""

    @property
    def slug(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def body(self) -> str: ...
    @property
    def tags(self) -> list[str]: ...
    @property
    def issue_keys(self) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class _Doc:
    slug: str
    fields: dict[str, Counter[str]]
    lengths: dict[str, int]


class SearchIndex:
    """Entries' stems per field, and what BM25F needs across them (document frequency, mean lengths)."""

    def __init__(self, entries: Iterable[Searchable]) -> None:
        self.docs: list[_Doc] = []
        for e in entries:
            texts = {"title": e.title, "tags": " ".join(e.tags), "issue_keys": " ".join(e.issue_keys), "body": e.body}
            fields = {name: Counter(stems(text)) for name, text in texts.items()}
            self.docs.append(_Doc(e.slug, fields, {n: sum(c.values()) for n, c in fields.items()}))
        n = max(len(self.docs), 1)
        self.mean_length = {f: max(sum(d.lengths[f] for d in self.docs) / n, 1.0) for f in WEIGHTS}
        self.df: Counter[str] = Counter()
        for d in self.docs:
            self.df.update({s for c in d.fields.values() for s in c})

    def search(self, query: str, limit: int = 10) -> list[tuple[str, float]]:
        """(slug, score) of the entries holding any stem of `query`, best first."""
        terms = list(dict.fromkeys(stems(query)))[:MAX_TERMS]
        if not terms:
            return []
        scored = [(d.slug, s) for d in self.docs if (s := self._score(d, terms)) > 0]
        scored.sort(key=lambda pair: (-pair[1], pair[0]))
        return scored[: max(1, limit)]

    def _score(self, doc: _Doc, terms: Sequence[str]) -> float:
        total = 0.0
        n = len(self.docs)
        for term in terms:
            weighted = 0.0
            for name, weight in WEIGHTS.items():
                count = doc.fields[name].get(term, 0)
                if count:
                    b = DILUTION[name]
                    norm = 1 - b + b * doc.lengths[name] / self.mean_length[name]
                    weighted += weight * count / norm
            if weighted:
                df = self.df[term]
                idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
                total += idf * weighted / (K1 + weighted)
        return total
