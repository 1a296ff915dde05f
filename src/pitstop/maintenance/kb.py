"""The knowledge base: troubleshooting entries, procedures and best practices as Markdown with front matter.

    ---
    title: Storage space running out
    issue_keys: [disk.low]
    asset_types: [vms]
    tags: [storage, retention]
    ---
    Markdown body...

Shipped entries live in `pitstop/kb/` (package data), a site's own in `<data_dir>/kb/` (they
replace shipped ones with the same file name). Lessons learned on resolving an incident are
stored and can become an entry. Search ranks entries by the English stems of their title, tags,
issue keys and body (`pitstop.maintenance.kb_search`), the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Row, insert, select, update

from pitstop.core.clock import Clock
from pitstop.errors import InvalidInput, NotFound
from pitstop.maintenance.common import text as checked
from pitstop.maintenance.kb_search import SearchIndex
from pitstop.maintenance.log import MaintenanceLog
from pitstop.storage.engine import Database
from pitstop.storage.schema import kb_entries, lessons

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}$")


@dataclass(frozen=True, slots=True)
class Entry:
    slug: str
    title: str
    body: str
    issue_keys: list[str]
    asset_types: list[str]
    tags: list[str]
    origin: str  # package, user, lesson

    def as_dict(self, *, body: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "slug": self.slug,
            "title": self.title,
            "issue_keys": self.issue_keys,
            "asset_types": self.asset_types,
            "tags": self.tags,
            "origin": self.origin,
        }
        if body:
            data["body"] = self.body
        return data


@dataclass(frozen=True, slots=True)
class Lesson:
    id: int
    incident_key: str
    incident_id: int | None
    kind: str  # lesson, review
    text: str
    author: str
    at: datetime
    kb_slug: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "incident_key": self.incident_key,
            "incident_id": self.incident_id,
            "kind": self.kind,
            "text": self.text,
            "author": self.author,
            "at": self.at.isoformat(),
            "kb_slug": self.kb_slug,
        }


def parse_entry(source: str, slug: str, origin: str = "user") -> Entry:
    """An Entry from Markdown with YAML front matter; InvalidInput naming the problem otherwise."""
    if not SLUG.match(slug):
        raise InvalidInput(f"entry name {slug[:60]!r} must be lowercase letters, digits and '-'")
    if not source.startswith("---\n"):
        raise InvalidInput(f"{slug}: starts with a front matter block between '---' lines")
    head, sep, body = source[4:].partition("\n---\n")
    if not sep:
        raise InvalidInput(f"{slug}: the front matter block has no closing '---' line")
    try:
        meta = yaml.safe_load(head) or {}
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{slug}: front matter is not valid YAML: {str(exc).splitlines()[0][:200]}") from None
    if not isinstance(meta, dict):
        raise InvalidInput(f"{slug}: front matter must be a mapping")
    unknown = set(meta) - {"title", "issue_keys", "asset_types", "tags"}
    if unknown:
        raise InvalidInput(f"{slug}: unknown front matter field(s) {', '.join(sorted(map(str, unknown)))[:200]}")

    def words(field: str) -> list[str]:
        value = meta.get(field) or []
        if not isinstance(value, list) or not all(isinstance(v, str) and 0 < len(v) <= 100 for v in value):
            raise InvalidInput(f"{slug}: {field} must be a list of short strings")
        return [v.strip() for v in value]

    title = meta.get("title")
    if not isinstance(title, str):
        raise InvalidInput(f"{slug}: front matter needs a title")
    return Entry(
        slug,
        checked("title", title, 500),
        checked("body", body, 100_000),
        words("issue_keys"),
        words("asset_types"),
        words("tags"),
        origin,
    )


class KnowledgeBase:
    def __init__(self, db: Database, clock: Clock, user_dir: Path | None = None) -> None:
        self.db = db
        self.clock = clock
        self.user_dir = user_dir
        self._synced = False
        # The search index and the entries it was built from ((slug, content hash) of each).
        self._index: tuple[tuple[tuple[str, str], ...], SearchIndex, dict[str, Entry]] | None = None

    # -- loading --------------------------------------------------------------------------------

    def files(self) -> dict[str, Entry]:
        found: dict[str, Entry] = {}
        shipped = resources.files("pitstop") / "kb"
        for item in sorted(shipped.iterdir(), key=lambda e: e.name):
            if item.name.endswith(".md"):
                slug = item.name[:-3]
                found[slug] = parse_entry(item.read_text(encoding="utf-8"), slug, "package")
        if self.user_dir is not None and self.user_dir.is_dir():
            for path in sorted(self.user_dir.glob("*.md")):
                found[path.stem] = parse_entry(path.read_text(encoding="utf-8"), path.stem, "user")
        return found

    def sync(self) -> int:
        """Bring the index up to date with the files; returns how many entries changed."""
        changed = 0
        now = self.clock.now()
        with self.db.begin() as conn:
            have = {r.slug: (r.content_hash, r.origin) for r in conn.execute(select(kb_entries))}
            for slug, entry in self.files().items():
                digest = _hash(entry)
                if slug in have and (have[slug][0] == digest or have[slug][1] == "lesson"):
                    continue
                values = _values(entry) | {"content_hash": digest, "updated_at": now}
                if slug in have:
                    conn.execute(update(kb_entries).where(kb_entries.c.slug == slug).values(**values))
                else:
                    conn.execute(insert(kb_entries).values(slug=slug, **values))
                changed += 1
        self._synced = True
        return changed

    def _ensure(self) -> None:
        if not self._synced:
            self.sync()

    # -- reads ----------------------------------------------------------------------------------

    def get(self, slug: str) -> Entry:
        if not SLUG.match(slug):
            raise NotFound(f"no knowledge base entry {slug[:100]!r}")
        self._ensure()
        with self.db.connect() as conn:
            row = conn.execute(select(kb_entries).where(kb_entries.c.slug == slug)).first()
        if row is None:
            raise NotFound(f"no knowledge base entry {slug[:100]!r}")
        return _entry(row)

    def entries(self) -> list[Entry]:
        self._ensure()
        with self.db.connect() as conn:
            return [_entry(r) for r in conn.execute(select(kb_entries).order_by(kb_entries.c.slug))]

    def search(self, query: str, *, limit: int = 10) -> list[Entry]:
        """Entries holding any word of `query` (or another form of it: "bearings", "bearing"), those
        holding more, rarer words, and in the title or tags rather than the body, first."""
        self._ensure()
        limit = max(1, min(limit, 100))
        index, entries = self._search_index()
        return [entries[slug] for slug, _ in index.search(query.replace("\x00", " ")[:2000], limit)]

    def _search_index(self) -> tuple[SearchIndex, dict[str, Entry]]:
        """The index of the stored entries, rebuilt when one was added, removed or changed (by a sync,
        a lesson, or another process sharing the database)."""
        with self.db.connect() as conn:
            stamp = tuple(
                (r.slug, r.content_hash)
                for r in conn.execute(select(kb_entries.c.slug, kb_entries.c.content_hash).order_by(kb_entries.c.slug))
            )
        cached = self._index
        if cached is not None and cached[0] == stamp:
            return cached[1], cached[2]
        entries = {e.slug: e for e in self.entries()}
        index = SearchIndex(entries.values())
        self._index = (stamp, index, entries)
        return index, entries

    def recommendations_for(self, issue_key: str) -> list[Entry]:
        """Entries linked to an issue ("disk.low") or an incident key ("disk.low:/var/lib/vms")."""
        issue = issue_key.partition(":")[0]
        return [e for e in self.entries() if any(fnmatch.fnmatchcase(issue, k) or k == issue_key for k in e.issue_keys)]

    # -- lessons learned ------------------------------------------------------------------------

    def add_lesson(
        self, incident_key: str, lesson: str, *, author: str, incident_id: int | None = None, kind: str = "lesson"
    ) -> Lesson:
        if kind not in ("lesson", "review"):
            raise InvalidInput("kind is lesson or review")
        incident_key = checked("incident key", incident_key, 500)
        body = checked("lesson", lesson, 20_000)
        author = checked("author", author, 200)
        now = self.clock.now()
        with self.db.begin() as conn:
            new = conn.execute(
                insert(lessons).values(
                    incident_key=incident_key, incident_id=incident_id, kind=kind, text=body, author=author, at=now
                )
            ).inserted_primary_key
            assert new is not None
            MaintenanceLog.append_in(
                conn,
                "review" if kind == "review" else "note",
                f"{'post-incident review' if kind == 'review' else 'lesson learned'} on {incident_key}"[:500],
                actor=author,
                at=now,
                actions=body,
                ref=f"lesson:{new[0]}",
            )
            return _lesson(conn.execute(select(lessons).where(lessons.c.id == int(new[0]))).one())

    def lessons(self, incident_key: str | None = None) -> list[Lesson]:
        query = select(lessons).order_by(lessons.c.id)
        if incident_key is not None:
            checked("incident key", incident_key, 500)
            query = query.where(lessons.c.incident_key == incident_key)
        with self.db.connect() as conn:
            return [_lesson(r) for r in conn.execute(query)]

    def lesson_to_entry(self, lesson_id: int, *, slug: str | None = None, title: str | None = None) -> Entry:
        """Turn a lesson into a new entry, or add it to an existing entry's 'Lessons learned'."""
        with self.db.connect() as conn:
            row = conn.execute(select(lessons).where(lessons.c.id == lesson_id)).first()
        if row is None:
            raise NotFound(f"no lesson with id {lesson_id}")
        lesson = _lesson(row)
        issue = lesson.incident_key.partition(":")[0]
        slug = slug or re.sub(r"[^a-z0-9]+", "-", f"lesson-{lesson.id}-{issue}".lower()).strip("-")[:100]
        if not SLUG.match(slug):
            raise InvalidInput(f"entry name {slug[:60]!r} must be lowercase letters, digits and '-'")
        note = f"- {lesson.at:%Y-%m-%d} ({lesson.author}, {lesson.incident_key}): {lesson.text}"
        now = self.clock.now()
        self._ensure()
        with self.db.begin() as conn:
            existing = conn.execute(select(kb_entries).where(kb_entries.c.slug == slug)).first()
            if existing is None:
                entry = Entry(
                    slug,
                    checked("title", title or f"Lesson learned: {lesson.incident_key}", 500),
                    f"## Lessons learned\n\n{note}\n",
                    [issue],
                    [],
                    ["lesson"],
                    "lesson",
                )
                conn.execute(
                    insert(kb_entries).values(slug=slug, **_values(entry), content_hash=_hash(entry), updated_at=now)
                )
            else:
                old = _entry(existing)
                body = old.body if "## Lessons learned" in old.body else f"{old.body.rstrip()}\n\n## Lessons learned\n"
                entry = Entry(
                    slug,
                    old.title,
                    f"{body.rstrip()}\n{note}\n",
                    sorted({*old.issue_keys, issue}),
                    old.asset_types,
                    old.tags,
                    "lesson",
                )
                conn.execute(
                    update(kb_entries)
                    .where(kb_entries.c.slug == slug)
                    .values(**_values(entry), content_hash=_hash(entry), updated_at=now)
                )
            conn.execute(update(lessons).where(lessons.c.id == lesson_id).values(kb_slug=slug))
        return self.get(slug)


def _values(entry: Entry) -> dict[str, Any]:
    return {
        "title": entry.title,
        "body": entry.body,
        "issue_keys": " ".join(entry.issue_keys),
        "asset_types": " ".join(entry.asset_types),
        "tags": " ".join(entry.tags),
        "origin": entry.origin,
    }


def _hash(entry: Entry) -> str:
    return hashlib.sha256(repr(sorted(_values(entry).items())).encode()).hexdigest()


def _entry(row: Row[Any]) -> Entry:
    m = row._mapping
    return Entry(
        m["slug"],
        m["title"],
        m["body"],
        m["issue_keys"].split(),
        m["asset_types"].split(),
        m["tags"].split(),
        m["origin"],
    )


def _lesson(row: Row[Any]) -> Lesson:
    m = row._mapping
    return Lesson(
        m["id"], m["incident_key"], m["incident_id"], m["kind"], m["text"], m["author"], m["at"], m["kb_slug"]
    )
