"""What can be backed up: BackupTarget classes, registered by kind.

A target knows one kind of thing: how to `dump` it consistently into a set, `restore` it from a
set into a location, `verify` a restored copy against what the manifest recorded, tell whether a
location is live (restoring would overwrite data), and give a scratch location for drills.
"""

from __future__ import annotations

import contextlib
import fcntl
import fnmatch
import os
import sqlite3
import subprocess
import tempfile
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, ClassVar

from pitstop.backup import codec
from pitstop.backup.sets import (
    RESTORE_SUFFIX,
    SourceEntry,
    SourceReader,
    SourceWriter,
    contained,
    safe_relpath,
)
from pitstop.core.registry import Registry
from pitstop.errors import BackupError


class BackupTarget(ABC):
    """One thing to back up, at `location` (a file, a directory, or a database URL)."""

    name: ClassVar[str]
    # The gzip level of the set being written (`backup.compression_level`), set by the service
    # before `dump`, for a target whose tool compresses itself (pg_dump); None: the tool's default.
    level: int | None = None

    def __init__(self, location: str, *, include: Sequence[str] = ("**",), exclude: Sequence[str] = ()) -> None:
        self.location = location
        self.include, self.exclude = tuple(include), tuple(exclude)

    def describe(self, location: str | None = None) -> str:
        """The location for people and manifests, without secrets."""
        return location if location is not None else self.location

    @abstractmethod
    def dump(self, dest: SourceWriter) -> None:
        """Write a consistent copy into `dest`; put what `verify` needs into `dest.meta`."""

    @abstractmethod
    def restore(self, src: SourceReader, into: str) -> None:
        """Make `into` hold the backed-up content. Checksums are checked on the way."""

    def check_restore(self, entry: SourceEntry, into: str) -> None:
        """Refuse, before anything is written, a restore of `entry` that would write outside `into`.

        The default has nothing to check: a database is restored into `into` itself."""
        return None

    @abstractmethod
    def verify(self, restored: str, expected: SourceEntry) -> list[str]:
        """Problems of a restored copy against the manifest, one line each; empty when it is good."""

    @abstractmethod
    def is_live(self, location: str) -> bool:
        """True when `location` holds data that a restore would overwrite."""

    @abstractmethod
    def scratch(self, workdir: Path) -> contextlib.AbstractContextManager[str]:
        """A fresh, empty location of this kind for a drill, removed afterwards."""


targets: Registry[BackupTarget] = Registry("backup target", "pitstop.backup_targets")


# -- SQLite ------------------------------------------------------------------------------------

SQLITE_FILE = "database.sqlite"


def _sqlite_counts(conn: sqlite3.Connection) -> dict[str, int]:
    names = [
        r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
    ]
    return {n: int(conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0]) for n in sorted(names)}


@targets.add
class SqliteTarget(BackupTarget):
    """A SQLite database file, copied with the online backup API (safe while pitstop writes)."""

    name = "sqlite"

    def dump(self, dest: SourceWriter) -> None:
        path = Path(self.location)
        if not path.is_file():
            raise BackupError(f"sqlite database {path} does not exist")
        copy = dest.scratch / f"{uuid.uuid4().hex}.sqlite"
        with (
            contextlib.closing(sqlite3.connect(path, timeout=30)) as src,
            contextlib.closing(sqlite3.connect(copy)) as dst,
        ):
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")
            dest.meta["tables"] = _sqlite_counts(dst)
        dest.add_file(SQLITE_FILE, copy)
        copy.unlink()

    def restore(self, src: SourceReader, into: str) -> None:
        target = Path(into)
        file = next((f for f in src.files if f.path == SQLITE_FILE), None)
        if file is None:
            raise BackupError(f"set {src.set.id} source {src.entry.name}: no {SQLITE_FILE}")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.restore")
        try:
            src.extract(file, tmp)
            if target.exists():
                # Through SQLite, not a rename: a live database's WAL must not outlive its file.
                with (
                    contextlib.closing(sqlite3.connect(tmp)) as s,
                    contextlib.closing(sqlite3.connect(target, timeout=30)) as t,
                ):
                    s.backup(t)
            else:
                tmp.replace(target)
        except (sqlite3.Error, OSError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else str(exc)  # an OSError's text holds paths
            raise BackupError(
                f"set {src.set.id} source {src.entry.name}: cannot restore the database ({why})"
            ) from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def verify(self, restored: str, expected: SourceEntry) -> list[str]:
        with contextlib.closing(sqlite3.connect(f"file:{restored}?mode=ro", uri=True)) as conn:
            try:
                result = [r[0] for r in conn.execute("PRAGMA integrity_check")]
                counts = _sqlite_counts(conn)
            except sqlite3.DatabaseError as exc:
                return [f"{restored}: not a readable SQLite database ({exc})"]
        problems = [] if result == ["ok"] else [f"integrity_check: {'; '.join(result[:5])}"]
        return problems + _compare_counts(expected.meta.get("tables", {}), counts)

    def is_live(self, location: str) -> bool:
        path = Path(location)
        return path.is_file() and path.stat().st_size > 0

    @contextlib.contextmanager
    def scratch(self, workdir: Path) -> Iterator[str]:
        with tempfile.TemporaryDirectory(dir=workdir, prefix="drill-") as tmp:
            yield str(Path(tmp) / "drill.sqlite")


def _compare_counts(expected: dict[str, int], actual: dict[str, int]) -> list[str]:
    problems = []
    for table, rows in sorted(expected.items()):
        if table not in actual:
            problems.append(f"table {table}: missing")
        elif actual[table] != rows:
            problems.append(f"table {table}: {actual[table]} rows, the manifest says {rows}")
    return problems


# -- PostgreSQL --------------------------------------------------------------------------------

PG_FILE = "database.pgdump"


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq conninfo without the password, and the environment that carries it."""
    from psycopg.conninfo import make_conninfo
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    params = {
        k: str(v) for k, v in (("host", parsed.host), ("port", parsed.port), ("user", parsed.username)) if v is not None
    }
    env = dict(os.environ)
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    return make_conninfo(dbname=parsed.database or "", **params), env


def _with_database(url: str, database: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(database=database).render_as_string(hide_password=False)


def _pg_counts(conn: object) -> dict[str, int]:
    from psycopg import Connection, sql

    assert isinstance(conn, Connection)
    tables = conn.execute(
        "SELECT schemaname, tablename FROM pg_tables"
        " WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
    ).fetchall()
    counts = {}
    for schema, table in tables:
        query = sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
        row = conn.execute(query).fetchone()
        counts[f"{schema}.{table}"] = int(row[0]) if row else 0
    return counts


def _pump(stream: IO[bytes]) -> Iterator[bytes]:
    while chunk := stream.read(codec.CHUNK):
        yield chunk


def _widen_pipe(stream: IO[bytes]) -> None:
    """A 1 MiB pipe (Linux; 64 KiB by default): pg_dump and the reader wake each other less often."""
    with contextlib.suppress(AttributeError, OSError):
        fcntl.fcntl(stream.fileno(), fcntl.F_SETPIPE_SZ, codec.CHUNK)


@targets.add
class PostgresTarget(BackupTarget):
    """A PostgreSQL database: `pg_dump -Fc` in one snapshot with the row counts, `pg_restore` back."""

    name = "postgres"

    def describe(self, location: str | None = None) -> str:
        from sqlalchemy.engine import make_url

        return make_url(location or self.location).render_as_string(hide_password=True)

    def _connect(self, url: str) -> object:
        import psycopg

        conninfo, env = _libpq(url)
        try:
            return psycopg.connect(conninfo, password=env.get("PGPASSWORD"), connect_timeout=10)
        except psycopg.Error as exc:
            raise BackupError(f"postgres {self.describe(url)}: cannot connect: {str(exc).strip()}") from None

    def dump(self, dest: SourceWriter) -> None:
        import psycopg

        conn = self._connect(self.location)
        assert isinstance(conn, psycopg.Connection)
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        with conn:
            # One snapshot for the row counts and for pg_dump: the manifest describes the dump exactly.
            row = conn.execute("SELECT pg_export_snapshot(), current_setting('server_version')").fetchone()
            assert row is not None
            snapshot, version = row
            dest.meta["server_version"] = version
            conninfo, env = _libpq(self.location)
            cmd = ["pg_dump", "-Fc", f"--snapshot={snapshot}", "-d", conninfo]
            if self.level is not None:
                cmd[2:2] = [f"-Z{self.level}"]  # the set's level: -Fc output is stored as it is
            with tempfile.TemporaryFile() as errors:
                with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors, env=env) as proc:
                    assert proc.stdout is not None
                    _widen_pipe(proc.stdout)
                    # The counts run on this snapshot's own connection while pg_dump streams (it has
                    # taken the snapshot over by its first read): their time is hidden in the dump's.
                    with ThreadPoolExecutor(1, thread_name_prefix="pg-counts") as pool:
                        counts = pool.submit(_pg_counts, conn)
                        try:
                            dest.add_stream(PG_FILE, _pump(proc.stdout), compress=False)
                        except BaseException:
                            proc.kill()
                            raise
                        finally:
                            rc = proc.wait()
                        dest.meta["tables"] = counts.result()
                if rc != 0:
                    errors.seek(0)
                    raise BackupError(f"pg_dump {self.describe()} failed: {errors.read().decode().strip()[:500]}")
            conn.rollback()

    def restore(self, src: SourceReader, into: str) -> None:
        file = next((f for f in src.files if f.path == PG_FILE), None)
        if file is None:
            raise BackupError(f"set {src.set.id} source {src.entry.name}: no {PG_FILE}")
        self._create_if_missing(into)
        conninfo, env = _libpq(into)
        cmd = ["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction"]
        cmd += ["--clean", "--if-exists", "-d", conninfo]
        with tempfile.TemporaryFile() as errors:
            with subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=errors, env=env) as proc:
                assert proc.stdin is not None
                try:
                    for chunk in src.chunks(file):
                        proc.stdin.write(chunk)
                except BrokenPipeError:
                    pass  # pg_restore stopped early: its exit code and message say why
                except BaseException:
                    proc.kill()
                    raise
                finally:
                    with contextlib.suppress(BrokenPipeError):
                        proc.stdin.close()
                rc = proc.wait()
            if rc != 0:
                errors.seek(0)
                message = errors.read().decode().strip()[:500]
                raise BackupError(f"pg_restore into {self.describe(into)} failed: {message}")

    def _admin(self, url: str) -> object:
        import psycopg

        for maintenance in ("postgres", "template1"):
            conninfo, env = _libpq(_with_database(url, maintenance))
            with contextlib.suppress(psycopg.Error):
                return psycopg.connect(conninfo, password=env.get("PGPASSWORD"), autocommit=True, connect_timeout=10)
        raise BackupError(f"postgres {self.describe(url)}: cannot reach the server's maintenance database")

    def _create_if_missing(self, url: str) -> None:
        import psycopg
        from psycopg import sql
        from sqlalchemy.engine import make_url

        name = make_url(url).database or ""
        conn = self._admin(url)
        assert isinstance(conn, psycopg.Connection)
        with conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def verify(self, restored: str, expected: SourceEntry) -> list[str]:
        import psycopg

        conn = self._connect(restored)
        assert isinstance(conn, psycopg.Connection)
        with conn:
            counts = _pg_counts(conn)
        return _compare_counts(expected.meta.get("tables", {}), counts)

    def is_live(self, location: str) -> bool:
        import psycopg

        try:
            conn = self._connect(location)
        except BackupError:
            return False  # no such database (or server): nothing to overwrite there
        assert isinstance(conn, psycopg.Connection)
        with conn:
            return bool(_pg_counts(conn))

    @contextlib.contextmanager
    def scratch(self, workdir: Path) -> Iterator[str]:
        import psycopg
        from psycopg import sql

        url = _with_database(self.location, f"pitstop_drill_{uuid.uuid4().hex[:12]}")
        try:
            yield url
        finally:
            from sqlalchemy.engine import make_url

            conn = self._admin(url)
            assert isinstance(conn, psycopg.Connection)
            with conn:
                name = sql.Identifier(make_url(url).database or "")
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))


# -- file trees --------------------------------------------------------------------------------


def matches(rel: str, patterns: Sequence[str]) -> bool:
    """fnmatch over the relative path (`*` crosses directories); a pattern without `/` also matches the name."""
    name = rel.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(rel, p) or ("/" not in p and fnmatch.fnmatchcase(name, p)) for p in patterns)


@targets.add
class FilesTarget(BackupTarget):
    """A directory tree, filtered by include and exclude patterns. Symlinks and special files are skipped."""

    name = "files"

    def selected(self) -> list[tuple[str, Path]]:
        root = Path(self.location)
        if not root.is_dir():
            raise BackupError(f"{self.name} source {root} is not a directory")
        chosen = []
        for directory, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(files):
                path = Path(directory) / name
                rel = path.relative_to(root).as_posix()
                if path.is_symlink() or not path.is_file():
                    continue
                if matches(rel, self.include) and not matches(rel, self.exclude):
                    chosen.append((rel, path))
        return chosen

    def dump(self, dest: SourceWriter) -> None:
        chosen = self.selected()
        for rel, path in chosen:
            try:
                dest.add_file(rel, path)
            except FileNotFoundError:
                continue  # deleted since the walk: it is simply not in this set
        dest.meta["root"] = str(Path(self.location).resolve())
        dest.meta["files"] = len(dest.entry.files)

    def check_restore(self, entry: SourceEntry, into: str) -> None:
        """Every file lands inside `into`: no `..` or absolute paths, no symlink in `into` leading out
        (a symlinked directory on the way, or a symlink at the file or its temporary name), no file
        where a directory must go."""
        root = Path(into)
        if root.exists() and not root.is_dir():
            raise BackupError(f"source {entry.name}: the restore target is not a directory")
        paths = {f.path for f in entry.files}
        for file in entry.files:
            try:
                safe_relpath(file.path)
            except BackupError:
                raise BackupError(
                    f"source {entry.name}: unsafe path {file.path!r} in the set (empty, absolute or with ..); "
                    "nothing was restored"
                ) from None
            try:
                dest = contained(root, file.path)
                contained(root, str(Path(file.path).with_name(f".{dest.name}{RESTORE_SUFFIX}")))
            except BackupError:
                raise BackupError(
                    f"source {entry.name}: {file.path} would be written outside the restore target "
                    "through a symlink; nothing was restored"
                ) from None
            rel = Path(file.path)
            if any(p.as_posix() in paths for p in rel.parents) or (dest.is_dir() and not dest.is_symlink()):
                raise BackupError(
                    f"source {entry.name}: {file.path} clashes with a file or directory of the same name; "
                    "nothing was restored"
                )
            blocked = next((p for p in dest.parents if p != root and p.is_relative_to(root) and p.is_file()), None)
            if blocked is not None:
                raise BackupError(
                    f"source {entry.name}: {file.path} needs {blocked.relative_to(root).as_posix()} to be a "
                    "directory, but the restore target has a file there; nothing was restored"
                )

    def restore(self, src: SourceReader, into: str) -> None:
        root = Path(into)
        self.check_restore(src.entry, into)
        src.check()
        for file in src.files:
            # checked again right before writing: the target may have changed since
            src.extract(file, contained(root, file.path))

    def verify(self, restored: str, expected: SourceEntry) -> list[str]:
        root = Path(restored)
        problems = []
        for file in expected.files:
            try:
                path = contained(root, file.path)
            except BackupError as exc:
                problems.append(f"{file.path}: {exc}")
                continue
            if not path.is_file():
                problems.append(f"{file.path}: missing")
            elif codec.sha256_file(path) != file.sha256:
                problems.append(f"{file.path}: checksum differs from the manifest")
        return problems

    def is_live(self, location: str) -> bool:
        path = Path(location)
        return path.is_dir() and any(path.iterdir())

    @contextlib.contextmanager
    def scratch(self, workdir: Path) -> Iterator[str]:
        with tempfile.TemporaryDirectory(dir=workdir, prefix="drill-") as tmp:
            yield str(Path(tmp) / "files")


@targets.add
class ConfigTarget(FilesTarget):
    """Configuration directories (pitstop.toml, inventories, the monitored system's configuration)."""

    name = "config"


@targets.add
class ModelsTarget(FilesTarget):
    """Model artifacts (ONNX files, model registry directories)."""

    name = "models"
