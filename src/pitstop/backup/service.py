"""BackupService: run, list, verify, drill, restore, restore one file, prune. Every step is recorded."""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
import shutil
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, overload

from pitstop import __version__
from pitstop.backup.codec import sha256_file
from pitstop.backup.offsite import OffsiteSet, OffsiteStore, open_store
from pitstop.backup.records import SAFETY, BackupRecords, GoodCopy, good_copies
from pitstop.backup.retention import Decision, Policy, decide, decide_components
from pitstop.backup.sets import (
    MANIFEST,
    PARTIAL,
    BackupSet,
    SetWriter,
    contained,
    list_sets,
    partial_dirs,
    read_set,
)
from pitstop.backup.targets import BackupTarget, FilesTarget, targets
from pitstop.config.models import BackupSettings, RetentionSettings
from pitstop.core.clock import Clock
from pitstop.core.registry import UnknownComponentError
from pitstop.errors import BackupError, InvalidInput, NotFound
from pitstop.scheduler import Scheduler
from pitstop.storage.engine import Database

log = logging.getLogger("pitstop.backup")
PITSTOP_DB = "pitstop-db"
# Scheduled backups and drills wait this long after start: a starting service settles first, and a
# long job in the scheduler's first tick would outlast a short leadership lease.
STARTUP_GRACE = timedelta(minutes=5)
DUE_SLACK = timedelta(minutes=1)
LATEST = "latest"
# What a set id can look like (`20260101T000000Z-a1b2c3`); anything else, e.g. a path, is refused.
_SET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def set_name(ref: str | None) -> str | None:
    """A set reference as the CLI and the API take it: None for the newest set ('latest' or none
    given), else the set id. InvalidInput for anything that is not a set id (paths, `..`, ...)."""
    if ref is None or ref == LATEST:
        return None
    if not _SET_NAME.fullmatch(ref):
        shown = ref if len(ref) <= 60 else ref[:60] + "..."
        raise InvalidInput(f"{shown!r} is not a backup set name: give a set id (`pitstop backup list`) or 'latest'")
    return ref


def _policy(r: RetentionSettings) -> Policy:
    return Policy(r.keep_last, r.daily, r.weekly, r.monthly, r.quarterly, r.yearly, r.keep_days)


def _target(kind: str, location: str) -> BackupTarget:
    """The target for a kind read from a manifest, which may name no known kind."""
    try:
        return targets.create(kind, location=location)
    except UnknownComponentError:
        raise BackupError(f"the set names an unknown source kind {kind[:40]!r}") from None


@dataclass(frozen=True, slots=True)
class SourceDrill:
    source: str
    kind: str
    restore_seconds: float
    verify_seconds: float
    problems: list[str]
    scratch: str = ""  # where it was restored (removed after the drill)


@dataclass(frozen=True, slots=True)
class DrillResult:
    set_id: str
    sources: list[SourceDrill]
    seconds: float  # restore + verify of every source: the measured recovery time
    rto_seconds: float

    @property
    def ok(self) -> bool:
        return not any(s.problems for s in self.sources)

    @property
    def within_rto(self) -> bool:
        return self.seconds <= self.rto_seconds


@dataclass(frozen=True, slots=True)
class PruneResult:
    destination: Path | str  # a local directory, or the off-site copy's path or URL
    decisions: list[Decision]
    stale_partials: list[str] = field(default_factory=list)

    @property
    def deleted(self) -> list[str]:
        return [d.id for d in self.decisions if not d.keep]


@dataclass(frozen=True, slots=True)
class FileCopy:
    """Where a good copy of one file is: what `restore_file` would write, found without side effects."""

    source: str
    path: str  # relative to the source root
    target: Path  # where it is restored to
    set_id: str
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class FileRestore:
    copy: FileCopy
    changed: bool  # False: the target already held exactly that content
    skipped_sets: list[str]  # newer sets whose copy was damaged


class BackupService:
    def __init__(
        self,
        settings: BackupSettings,
        *,
        data_dir: Path,
        db: Database,
        clock: Clock,
        records: BackupRecords,
    ) -> None:
        self.settings, self.db, self.clock, self.records = settings, db, clock, records
        self.destination = settings.destination or data_dir / "backups"
        # the off-site copy (3-2-1): a mounted folder, S3 or SFTP; nothing connects until it is used
        self.offsite: OffsiteStore | None = open_store(settings.offsite, scratch=data_dir) if settings.offsite else None
        self.workdir = data_dir
        self.started_at = clock.now()

    # -- sources ----------------------------------------------------------------------------------

    def sources(self) -> dict[str, BackupTarget]:
        """The configured sources by name, pitstop's own database first."""
        found: dict[str, BackupTarget] = {}
        if self.settings.include_pitstop_db:
            if self.db.dialect == "sqlite":
                if self.db.url.database not in (None, "", ":memory:"):
                    found[PITSTOP_DB] = targets.create("sqlite", location=str(self.db.url.database))
            else:
                url = self.db.url.set(drivername="postgresql").render_as_string(hide_password=False)
                found[PITSTOP_DB] = targets.create("postgres", location=url)
        for s in self.settings.sources.values():
            if s.name in found:
                raise BackupError(f"backup source {s.name!r} is configured twice")
            if s.kind == "postgres":
                if s.url is None:
                    raise BackupError(f"backup source {s.name!r}: postgres needs `url`")
                location = s.url.get_secret_value()
            else:
                if s.path is None:
                    raise BackupError(f"backup source {s.name!r}: {s.kind} needs `path`")
                location = str(s.path)
            found[s.name] = targets.create(s.kind, location=location, include=s.include, exclude=s.exclude)
        return found

    def _source(self, name: str) -> BackupTarget:
        sources = self.sources()
        if name not in sources:
            raise NotFound(f"no backup source {name!r}; configured: {', '.join(sources) or 'none'}")
        return sources[name]

    @property
    def _passphrase(self) -> str | None:
        key = self.settings.encryption_key
        return key.get_secret_value() if key is not None else None

    # -- backup -----------------------------------------------------------------------------------

    def run(self, *, reason: str = "manual", only: Mapping[str, BackupTarget] | None = None) -> BackupSet:
        """Back up every source (or `only`) into one new set; copy it off-site when configured."""
        chosen = dict(only) if only is not None else self.sources()
        if not chosen:
            raise BackupError("nothing to back up: no sources are configured")
        started, t0 = self.clock.now(), time.perf_counter()
        set_id = f"{started:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
        writer = SetWriter(self.destination, set_id, level=self.settings.compression_level, passphrase=self._passphrase)
        try:
            for name, target in chosen.items():
                target.level = self.settings.compression_level  # for pg_dump, which compresses itself
                target.dump(writer.source(name, target.name, target.describe()))
            backup_set = writer.publish(
                version=__version__, reason=reason, started_at=started, finished_at=self.clock.now()
            )
        except BaseException as exc:
            writer.abort()
            if isinstance(exc, Exception):
                self._record_failure("backup", set_id, started, t0, exc)
            raise
        copies = []
        if self.offsite is not None:
            try:
                copies.append(self.offsite.put(backup_set))
            except (OSError, BackupError) as exc:
                self._record_failure("backup", set_id, started, t0, exc, offsite=True)
                raise BackupError(f"set {set_id} is written, but the off-site copy failed: {exc}") from exc
        m = backup_set.manifest
        self.records.add(
            "backup",
            set_id=set_id,
            started_at=started,
            finished_at=self.clock.now(),
            ok=True,
            seconds=time.perf_counter() - t0,
            size=m.size,
            detail={"reason": reason, "sources": m.source_names, "stored_bytes": m.stored_size, "copies": copies},
        )
        return backup_set

    def _record_failure(
        self, kind: str, set_id: str | None, started: datetime, t0: float, exc: BaseException, **extra: Any
    ) -> None:
        try:
            self.records.add(
                kind,
                set_id=set_id,
                started_at=started,
                finished_at=self.clock.now(),
                ok=False,
                seconds=time.perf_counter() - t0,
                detail={"error": f"{type(exc).__name__}: {exc}", **extra},
            )
        except Exception:
            log.exception("could not record the failed %s", kind)

    # -- sets -------------------------------------------------------------------------------------

    @overload
    def list_sets(self, *, offsite: Literal[False] = False) -> list[BackupSet]: ...
    @overload
    def list_sets(self, *, offsite: bool) -> list[BackupSet] | list[OffsiteSet]: ...
    def list_sets(self, *, offsite: bool = False) -> list[BackupSet] | list[OffsiteSet]:
        """Complete sets, newest first: the local ones, or those in the off-site copy (read from there)."""
        if offsite:
            return list(reversed(self._offsite_store().sets()))
        return list(reversed(list_sets(self.destination)))

    def _offsite_store(self) -> OffsiteStore:
        if self.offsite is None:
            raise BackupError("no off-site destination is configured (backup.offsite)")
        return self.offsite

    def get_offsite(self, ref: str | None = None) -> OffsiteSet:
        """A set in the off-site copy by reference (see `set_name`), read from there alone."""
        name, store = set_name(ref), self._offsite_store()
        if name is not None:
            return store.get(name)
        for s in reversed(store.sets()):
            if s.manifest.reason != SAFETY:
                return s
        raise NotFound("no backup sets in the off-site copy yet")

    def get(self, ref: str | None = None, *, include_safety: bool = False) -> BackupSet:
        """A set by reference (see `set_name`): its id, or the newest one for None or 'latest'
        (safety copies only when asked). Errors name the set, never the server's paths."""
        name = set_name(ref)
        if name is None:
            for s in self.list_sets():
                if include_safety or s.manifest.reason != SAFETY:
                    return s
            raise NotFound("no backup sets in the backup destination yet")
        directory = self.destination / name
        if not directory.is_dir():
            raise NotFound(f"no backup set {name!r} in the backup destination")
        return read_set(directory)  # a damaged set is named with what is wrong with it

    def good_copies(self, names: Collection[str] | None = None) -> dict[str, GoodCopy]:
        """The newest good copy here of each configured source (or of `names`) that has one: what the
        backup checks judge and `restore latest` takes (`records.good_copies`)."""
        wanted = list(self.sources()) if names is None else names
        return good_copies(list_sets(self.destination), self.records, wanted)

    # -- verify -----------------------------------------------------------------------------------

    @overload
    def verify(self, set_id: str | None = None, *, offsite: Literal[False] = False) -> tuple[BackupSet, list[str]]: ...
    @overload
    def verify(self, set_id: str | None = None, *, offsite: bool) -> tuple[BackupSet | OffsiteSet, list[str]]: ...
    def verify(self, set_id: str | None = None, *, offsite: bool = False) -> tuple[BackupSet | OffsiteSet, list[str]]:
        """Check every stored file against the manifest. Returns the problems, one line each.

        `offsite`: check the off-site copy instead, each file downloaded and checked against the
        manifest there (and that manifest against the local set's, when the local set is still here).
        """
        if offsite:
            return self._verify_offsite(set_id)
        backup_set = self.get(set_id)
        started, t0 = self.clock.now(), time.perf_counter()
        try:
            problems = backup_set.verify(self._passphrase)
        except BackupError as exc:
            problems = [str(exc)]
        # which sources are damaged (a file's problem starts with `<source>/`; anything else: all of them)
        names = backup_set.manifest.source_names
        failed = {n for p in problems for n in names if p.startswith(f"{n}/")}
        if any(not any(p.startswith(f"{n}/") for n in names) for p in problems):
            failed = set(names)
        self.records.add(
            "verify",
            set_id=backup_set.id,
            started_at=started,
            finished_at=self.clock.now(),
            ok=not problems,
            seconds=time.perf_counter() - t0,
            size=backup_set.manifest.size,
            detail={"problems": problems, "failed_sources": sorted(failed)},
        )
        return backup_set, problems

    def _verify_offsite(self, ref: str | None) -> tuple[OffsiteSet, list[str]]:
        started, t0 = self.clock.now(), time.perf_counter()
        try:
            copy = self.get_offsite(ref)
        except BackupError as exc:  # unreachable, refused: a verify that could not run has failed
            self._record_failure("verify", set_name(ref), started, t0, exc, offsite=True)
            raise
        try:
            problems = copy.verify(self._passphrase)
        except BackupError as exc:
            problems = [str(exc)]
        local = self.destination / copy.id
        if (local / MANIFEST).is_file():
            # a copy whose files match a manifest rewritten to match them is still not our set
            with contextlib.suppress(BackupError):
                if read_set(local).manifest != copy.manifest:
                    problems.insert(0, "the manifest differs from the local set's (changed off-site)")
        self.records.add(
            "verify",
            set_id=copy.id,
            started_at=started,
            finished_at=self.clock.now(),
            ok=not problems,
            seconds=time.perf_counter() - t0,
            size=copy.manifest.size,
            detail={"problems": problems, "offsite": True, "copy": copy.location},
        )
        return copy, problems

    # -- drill ------------------------------------------------------------------------------------

    def drill(self, set_id: str | None = None, *, offsite: bool = False) -> DrillResult:
        """Restore a set (default: the newest) into scratch locations, check it, time it, record it.

        `offsite`: restore from the off-site copy alone. The set is downloaded into a scratch
        directory (the download counts in the drill's time) and nothing local is read.
        """
        started, t0 = self.clock.now(), time.perf_counter()
        if not offsite:
            return self._drill(self.get(set_id), started, t0)
        name = set_name(set_id)
        try:
            copy = self.get_offsite(name)
            name = copy.id
            with self._offsite_store().local_copy(copy, self.workdir) as backup_set:
                return self._drill(backup_set, started, t0, offsite=True, copy=copy.location)
        except BackupError as exc:  # unreachable, refused, a file missing there: the drill failed
            self._record_failure("drill", name, started, t0, exc, offsite=True)
            raise

    def _drill(self, backup_set: BackupSet, started: datetime, t0: float, **extra: Any) -> DrillResult:
        results: list[SourceDrill] = []
        self.workdir.mkdir(parents=True, exist_ok=True)
        for entry in backup_set.manifest.sources:
            location = self._drill_location(entry.name, entry.kind)
            r0 = time.perf_counter()
            restore_s = verify_s = 0.0
            where = ""
            try:
                target = _target(entry.kind, location)
                with target.scratch(self.workdir) as scratch:
                    where = target.describe(scratch)
                    target.restore(backup_set.reader(entry.name, self._passphrase), scratch)
                    restore_s = time.perf_counter() - r0
                    v0 = time.perf_counter()
                    problems = target.verify(scratch, entry)
                    verify_s = time.perf_counter() - v0
            except BackupError as exc:
                problems = [str(exc)]
                restore_s = restore_s or time.perf_counter() - r0
            results.append(SourceDrill(entry.name, entry.kind, restore_s, verify_s, problems, where))
        result = DrillResult(backup_set.id, results, time.perf_counter() - t0, self.settings.rto_minutes * 60)
        self.records.add(
            "drill",
            set_id=backup_set.id,
            started_at=started,
            finished_at=self.clock.now(),
            ok=result.ok,
            seconds=result.seconds,
            size=backup_set.manifest.size,
            detail={
                **extra,
                "rto_seconds": result.rto_seconds,
                "within_rto": result.within_rto,
                "sources": [
                    {
                        "source": s.source,
                        "kind": s.kind,
                        "restore_seconds": round(s.restore_seconds, 3),
                        "verify_seconds": round(s.verify_seconds, 3),
                        "problems": s.problems,
                        "scratch": s.scratch,
                        "tables": backup_set.manifest.source(s.source).meta.get("tables", {}),
                        "files": len(backup_set.manifest.source(s.source).files),
                    }
                    for s in results
                ],
            },
        )
        return result

    def _drill_location(self, name: str, kind: str) -> str:
        """Where a drill's scratch database lives: beside the source (same PostgreSQL server)."""
        sources = self.sources()
        if name in sources and sources[name].name == kind:
            return sources[name].location
        if kind == "postgres":
            raise BackupError(f"cannot drill postgres source {name!r}: it is no longer configured")
        return str(self.workdir)

    # -- restore ----------------------------------------------------------------------------------

    def _newest_of(self, source: str) -> BackupSet:
        """The set 'latest' means for one source: its newest good copy (with per-component schedules
        the newest set may not hold it), else the newest set that holds it at all."""
        copy = self.good_copies([source]).get(source)
        if copy is not None:
            return copy.set
        for s in self.list_sets():
            if s.manifest.reason != SAFETY and source in s.manifest.source_names:
                return s
        return self.get()  # names what is missing: no sets at all, or no such source in the newest

    def restore(
        self, set_id: str | None, source: str, *, into: str | None = None, force: bool = False
    ) -> BackupSet | None:
        """Restore one source of a set into `into` (default: where it came from).

        A live target is refused unless `force`; then a safety backup of it is taken first and
        returned. The restored copy is verified against the manifest.
        """
        backup_set = self._newest_of(source) if set_name(set_id) is None else self.get(set_id)
        entry = backup_set.manifest.source(source)
        configured = self.sources().get(source)
        location = into or (configured.location if configured else None)
        if location is None:
            raise BackupError(f"source {source!r} is no longer configured: name a target with --target")
        if into is None and configured is not None and configured.name != entry.kind:
            raise BackupError(
                f"set {backup_set.id} holds {source} as {entry.kind[:40]!r}, but it is configured as "
                f"{configured.name!r}: name a target with --target"
            )
        target = _target(entry.kind, location)
        # Before the safety backup: a restore that would leave its target writes nothing at all.
        target.check_restore(entry, location)
        backup_set.reader(source, self._passphrase).check()
        safety = None
        if target.is_live(location):
            if not force:
                raise BackupError(
                    f"{target.describe(location)} holds data: pass --force to overwrite it "
                    "(a safety backup of it is taken first)"
                )
            safety = self.run(reason=SAFETY, only={source: target})
        started, t0 = self.clock.now(), time.perf_counter()
        try:
            target.restore(backup_set.reader(source, self._passphrase), location)
            problems = target.verify(location, entry)
        except BackupError as exc:
            self._record_failure("restore", backup_set.id, started, t0, exc, source=source)
            raise
        self.records.add(
            "restore",
            set_id=backup_set.id,
            started_at=started,
            finished_at=self.clock.now(),
            ok=not problems,
            seconds=time.perf_counter() - t0,
            size=sum(f.size for f in entry.files),
            detail={
                "source": source,
                "target": target.describe(location),
                "safety_set": safety.id if safety else None,
                "problems": problems,
            },
        )
        if problems:
            raise BackupError(f"restored {source} into {target.describe(location)}, but: {'; '.join(problems)}")
        return safety

    # -- one file ---------------------------------------------------------------------------------

    def _file_source(self, name: str) -> tuple[str, str, Path]:
        """`name` as (source, relative path, where it lives): `source:path`, or a path under a file source."""
        sources = self.sources()
        src, sep, rel = name.partition(":")
        if sep and src in sources and isinstance(sources[src], FilesTarget):
            # inside the source root, symlinks followed: restoring it must not write elsewhere
            path = contained(Path(sources[src].location), rel)
            return src, path.relative_to(sources[src].location).as_posix(), path
        wanted = Path(name).resolve()
        for src, target in sources.items():
            if isinstance(target, FilesTarget):
                root = Path(target.location).resolve()
                if wanted.is_relative_to(root) and wanted != root:
                    return src, wanted.relative_to(root).as_posix(), wanted
        raise NotFound(f"{name!r} is in no file source; use <source>:<path> or a path under a source root")

    def locate_file(self, name: str, *, known_bad: Collection[str] = ()) -> tuple[FileCopy, list[str]]:
        """The newest good copy of one file, found without side effects, and the newer sets passed over.

        A copy is good when its stored bytes match the manifest (checked here; the original bytes
        are checked again while restoring) and its content is not in `known_bad` (sha256 values,
        e.g. of the damaged file, so a set that captured the damage is passed over too).
        """
        source, rel, target = self._file_source(name)
        skipped = []
        for backup_set in self.list_sets():
            if source not in backup_set.manifest.source_names:
                continue
            entry = backup_set.manifest.source(source).file(rel)
            if entry is None:
                continue
            if entry.sha256 in known_bad or backup_set.check_stored(entry) is not None:
                skipped.append(backup_set.id)
                continue
            return FileCopy(source, rel, target, backup_set.id, entry.sha256, entry.size), skipped
        raise NotFound(f"no good copy of {source}:{rel} in any backup set")

    def restore_file(self, name: str, *, into: Path | None = None, known_bad: Collection[str] = ()) -> FileRestore:
        """Restore one file (e.g. a corrupted model) from the newest set whose copy of it is good.

        `name` is `<source>:<relative path>` or a path under a file source's root. The file is
        written atomically to its own place (or `into`) and checked against the manifest's sha256.
        Idempotent: when the target already holds the good content nothing is written and
        `changed` is False.
        """
        copy, skipped = self.locate_file(name, known_bad=known_bad)
        if into is not None:
            copy = FileCopy(copy.source, copy.path, into, copy.set_id, copy.sha256, copy.size)
        if copy.target.is_file() and sha256_file(copy.target) == copy.sha256:
            return FileRestore(copy, False, skipped)
        started, t0 = self.clock.now(), time.perf_counter()
        reader = self.get(copy.set_id, include_safety=True).reader(copy.source, self._passphrase)
        entry = reader.entry.file(copy.path)
        assert entry is not None
        detail = {"file": f"{copy.source}:{copy.path}", "target": str(copy.target), "skipped_sets": skipped}
        try:
            reader.extract(entry, copy.target)
        except BackupError as exc:
            self._record_failure("restore", copy.set_id, started, t0, exc, **detail)
            raise
        self.records.add(
            "restore",
            set_id=copy.set_id,
            started_at=started,
            finished_at=self.clock.now(),
            ok=True,
            seconds=time.perf_counter() - t0,
            size=copy.size,
            detail=detail,
        )
        return FileRestore(copy, True, skipped)

    # -- prune ------------------------------------------------------------------------------------

    @property
    def policy(self) -> Policy:
        """The global retention: of pitstop's own database, of sources without their own, of safety copies."""
        return _policy(self.settings.retention)

    def policies(self) -> dict[str, Policy]:
        """The sources with a retention of their own."""
        own = {name: self.settings.source_retention(name) for name in self.settings.sources}
        return {name: _policy(r) for name, r in own.items() if r is not None}

    def prune(self, *, dry_run: bool = False) -> list[PruneResult]:
        """Apply retention in each destination (here and in the off-site copy, each by its own sets):
        each source's policy on the sets that hold it (`_decisions`)."""
        results = []
        started, t0 = self.clock.now(), time.perf_counter()
        for where in [self.destination]:
            sets = list_sets(where)
            decisions = self._decisions(sets)
            dirs = {s.id: s.dir for s in sets}
            stale = [p.name for p in partial_dirs(where) if self._stale(p.name)]
            if not dry_run:
                for d in decisions:
                    if not d.keep:
                        shutil.rmtree(dirs[d.id])  # the set's own directory, whatever its manifest says
                for name in stale:
                    shutil.rmtree(where / name, ignore_errors=True)
            results.append(PruneResult(where, decisions, stale))
        offsite_error: BackupError | None = None
        if self.offsite is not None:
            try:
                results.append(self._prune_offsite(self.offsite, dry_run))
            except BackupError as exc:  # the local prune stands; the off-site one is retried next time
                offsite_error = exc
        if not dry_run:
            deleted = [f"{r.destination}/{i}" for r in results for i in r.deleted]
            error = {"error": f"off-site: {offsite_error}", "offsite": True} if offsite_error else {}
            self.records.add(
                "prune",
                set_id=None,
                started_at=started,
                finished_at=self.clock.now(),
                ok=offsite_error is None,
                seconds=time.perf_counter() - t0,
                detail={"deleted": deleted, **error},
            )
        if offsite_error is not None:
            raise BackupError(f"pruned here, but not the off-site copy: {offsite_error}") from offsite_error
        return results

    def _decisions(self, sets: Sequence[BackupSet | OffsiteSet]) -> list[Decision]:
        """Retention's verdict on the sets of one destination, newest first: each source's policy on the
        sets that hold it, a set kept while any of its sources' policies keeps it (`decide_components`);
        safety copies by themselves, per group with the same sources, under the global policy."""
        backups = [(s.id, s.manifest.started_at, s.manifest.source_names) for s in sets if s.manifest.reason != SAFETY]
        decisions = decide_components(backups, self.policy, self.policies())
        groups: dict[tuple[str, ...], list[BackupSet | OffsiteSet]] = {}
        for s in sets:
            if s.manifest.reason == SAFETY:
                groups.setdefault(tuple(sorted(s.manifest.source_names)), []).append(s)
        for group in groups.values():
            decisions += decide([(s.id, s.manifest.started_at) for s in group], self.policy)
        decisions.sort(key=lambda d: (d.at, d.id), reverse=True)
        return decisions

    def _prune_offsite(self, store: OffsiteStore, dry_run: bool) -> PruneResult:
        """The same retention on the off-site copy's own sets (read from there), and its stale partial copies."""
        decisions = self._decisions(store.sets())
        stale = [name for name in store.partials() if self._stale(name)]
        if not dry_run:
            for d in decisions:
                if not d.keep:
                    store.delete(d.id)
            for name in stale:
                store.delete_partial(name)
        return PruneResult(store.location, decisions, stale)

    def _stale(self, partial: str) -> bool:
        """A partial set more than a day old is left over from a crash (a running backup is younger)."""
        stamp = partial.removeprefix(PARTIAL).split("-", 1)[0]
        try:
            began = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=self.clock.now().tzinfo)
        except ValueError:
            return False
        return self.clock.now() - began > timedelta(days=1)

    # -- scheduled work ---------------------------------------------------------------------------

    def due(self, now: datetime) -> dict[str, BackupTarget]:
        """The sources a scheduled backup takes now: those whose newest set here began at least their
        period ago (`every_hours`, the source's own or the global one), and those with no set yet."""
        newest: dict[str, datetime] = {}
        for s in self.list_sets():  # newest first
            if s.manifest.reason != SAFETY:
                for name in s.manifest.source_names:
                    newest.setdefault(name, s.manifest.started_at)
        due = {}
        for name, target in self.sources().items():
            period = timedelta(hours=self.settings.source_every_hours(name))
            # a tick that comes a moment early does not push the backup a whole tick later
            if name not in newest or now - newest[name] >= period - min(DUE_SLACK, period / 100):
                due[name] = target
        return due

    def backup_if_due(self, now: datetime) -> None:
        """Scheduler job: back up the sources that are due (`due`) into one set, then prune."""
        if now - self.started_at < STARTUP_GRACE:
            return
        due = self.due(now)
        if not due:
            return
        self.run(reason="scheduled", only=due)
        self.prune()

    def drill_if_due(self, now: datetime) -> None:
        """Scheduler job: when the last drill is older than `drill_every_days`, drill the sets that hold
        each source's newest good copy (one set, unless components are backed up on their own
        schedules), newest first."""
        if now - self.started_at < STARTUP_GRACE:
            return
        last = self.records.last("drill")
        if last is not None and now - last.finished_at < timedelta(days=self.settings.drill_every_days):
            return
        holding = {copy.set.id: copy.set for copy in self.good_copies().values()}
        for backup_set in sorted(holding.values(), key=lambda s: (s.manifest.started_at, s.id), reverse=True):
            self.drill(backup_set.id)

    def schedule(self, scheduler: Scheduler) -> None:
        """Add the scheduled backup (then prune) and drill jobs; each decides itself whether it is due."""
        if not self.settings.schedule:
            return
        shortest = min(self.settings.source_every_hours(n) for n in [PITSTOP_DB, *self.settings.sources])
        scheduler.add("backup", timedelta(minutes=min(15.0, shortest * 60)), self.backup_if_due)
        scheduler.add("backup.drill", timedelta(hours=1), self.drill_if_due)
