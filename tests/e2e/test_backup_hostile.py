"""`pitstop backup ...` against hostile input: symlinks in a restore target, tampered sets, odd set names.

Every case gets a clear one-line error (a PitstopError, never a traceback), nothing is written
outside the restore target, and nothing stored is lost.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from pitstop.cli.main import app
from pitstop.errors import PitstopError


class Plant:
    """A data directory with a `models` file source and one backup set of it."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.data = tmp_path / "data"
        self.models = tmp_path / "models"
        (self.models / "sub").mkdir(parents=True)
        (self.models / "a.txt").write_text("model a\n")
        (self.models / "sub" / "b.txt").write_text("model b\n")
        self.config = tmp_path / "pitstop.toml"
        self.config.write_text(
            f'data_dir = "{self.data}"\n'
            "[backup]\nschedule = false\ninclude_pitstop_db = false\n"
            "[backup.retention]\nkeep_last = 1\ndaily = 0\nweekly = 0\nmonthly = 0\nquarterly = 0\n"
            f'[[backup.sources]]\nname = "models"\nkind = "models"\npath = "{self.models}"\n'
        )
        assert self.run("db", "upgrade")[0] == 0
        code, output = self.run("backup", "run", "--json")
        assert code == 0, output
        self.set_id: str = json.loads(output)["id"]
        self.set_dir = self.data / "backups" / self.set_id
        # a target that holds data, so restoring into it needs --force
        self.target = tmp_path / "target"
        self.target.mkdir()
        (self.target / "keep.txt").write_text("keep\n")
        self.outside = tmp_path / "outside"
        self.outside.mkdir()

    def run(self, *args: str) -> tuple[int, str]:
        result = CliRunner().invoke(app, ["--data-dir", str(self.data), "--config", str(self.config), *args])
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            # main() prints a PitstopError as one line and exits; anything else is a traceback
            assert isinstance(result.exception, PitstopError), f"traceback: {result.exception!r}"
            return result.exception.exit_code, str(result.exception)
        return result.exit_code, result.output

    def manifest(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.set_dir / "manifest.json").read_text())
        return data

    def write_manifest(self, data: dict[str, Any], directory: Path | None = None) -> None:
        (directory or self.set_dir).joinpath("manifest.json").write_text(json.dumps(data))

    def files(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        files: list[dict[str, Any]] = data["sources"][0]["files"]
        return files

    def sets(self) -> list[str]:
        code, output = self.run("backup", "list", "--json")
        assert code == 0, output
        return [s["id"] for s in json.loads(output)]


def _tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def test_restore_refuses_a_symlinked_directory_in_the_target_that_leads_outside(tmp_path: Path) -> None:
    """Issue 15, item 6: restore --force never writes through a directory symlink inside the target."""
    plant = Plant(tmp_path)
    (plant.target / "sub").symlink_to(plant.outside, target_is_directory=True)
    before = _tree(plant.target)

    code, output = plant.run("backup", "restore", "latest", "--target", str(plant.target), "--force")

    assert code != 0 and "sub/b.txt" in output and "outside the restore target" in output, output
    assert list(plant.outside.iterdir()) == []
    assert _tree(plant.target) == before  # nothing written, not even a.txt
    assert plant.sets() == [plant.set_id]  # refused before the safety backup


def test_restore_refuses_a_symlinked_file_in_the_target_that_leads_outside(tmp_path: Path) -> None:
    """Issue 15, item 6: a symlinked file at a destination path (or at its temporary name) is refused."""
    plant = Plant(tmp_path)
    secret = plant.outside / "secret.txt"
    secret.write_text("secret\n")
    (plant.target / "a.txt").symlink_to(secret)
    (plant.target / ".a.txt.pitstop-restore").symlink_to(secret)

    code, output = plant.run("backup", "restore", "latest", "--target", str(plant.target), "--force")

    assert code != 0 and "a.txt" in output and "outside the restore target" in output, output
    assert secret.read_text() == "secret\n"
    assert (plant.target / "a.txt").is_symlink()
    assert not (plant.target / "sub").exists()


def test_verify_rejects_unsafe_paths_in_the_manifest(tmp_path: Path) -> None:
    """Issue 15, item 6: verify names absolute and `..` paths in a manifest instead of calling them a match."""
    plant = Plant(tmp_path)
    data = plant.manifest()
    files = plant.files(data)
    files[0]["path"] = "../../escape.txt"
    files[1]["path"] = "/etc/escape.txt"
    plant.write_manifest(data)

    code, output = plant.run("backup", "verify", plant.set_id)

    assert code == 1 and "files match" not in output, output
    assert "models/../../escape.txt: unsafe path" in output
    assert "models//etc/escape.txt: unsafe path" in output


def test_a_tampered_set_cannot_write_or_read_outside_on_restore(tmp_path: Path) -> None:
    """Issue 15, item 6: a set whose members point outside (`..` paths, stored files elsewhere) restores nothing."""
    plant = Plant(tmp_path)
    empty = tmp_path / "empty"
    data = plant.manifest()
    files = plant.files(data)
    files[1]["path"] = "../escape.txt"  # a.txt is restored first, then this one would leave
    plant.write_manifest(data)

    code, output = plant.run("backup", "restore", plant.set_id, "--target", str(empty))

    assert code != 0 and "../escape.txt" in output, output
    assert not (tmp_path / "escape.txt").exists()
    assert not empty.exists() or list(empty.iterdir()) == []  # not even the good file

    # a stored file outside the set: its bytes must not be copied into the target
    secret = plant.outside / "secret.txt"
    secret.write_bytes((plant.set_dir / files[0]["stored"]).read_bytes())
    files[1]["path"] = "sub/b.txt"
    files[0]["stored"] = os.path.relpath(secret, plant.set_dir)
    plant.write_manifest(data)

    code, output = plant.run("backup", "restore", plant.set_id, "--target", str(empty))
    assert code != 0 and "unsafe" in output, output
    assert not empty.exists() or list(empty.iterdir()) == []
    code, output = plant.run("backup", "verify", plant.set_id)
    assert code == 1 and "unsafe" in output, output


def test_a_drill_of_a_tampered_set_fails_cleanly(tmp_path: Path) -> None:
    """Issue 15, item 6: a drill of a set with a file and a directory of the same name fails with a clear problem."""
    plant = Plant(tmp_path)
    data = plant.manifest()
    plant.files(data)[1]["path"] = "a.txt/b.txt"  # a.txt is a file: a.txt/b.txt cannot be made
    plant.write_manifest(data)

    code, output = plant.run("backup", "drill", plant.set_id, "--json")

    assert code == 1, output
    (source,) = json.loads(output)["sources"]
    assert any("a.txt/b.txt" in p for p in source["problems"]), source


def test_verify_accepts_latest_on_the_command_line(tmp_path: Path) -> None:
    """Issue 15, item 12: `pitstop backup verify latest` checks the newest set, as the API does."""
    plant = Plant(tmp_path)

    code, output = plant.run("backup", "verify", "latest")

    assert code == 0 and f"set {plant.set_id}: 2 files match the manifest" in output, output
    code, output = plant.run("backup", "drill", "latest", "--json")
    assert code == 0 and json.loads(output)["set"] == plant.set_id, output


def test_not_found_errors_name_the_set_not_server_paths(tmp_path: Path) -> None:
    """Issue 15, item 12: a missing set is named by its id, never by the absolute backup path."""
    plant = Plant(tmp_path)
    for args in (("verify", "20200101T000000Z-abcdef"), ("drill", "20200101T000000Z-abcdef")):
        code, output = plant.run("backup", *args)
        assert code == 1 and "20200101T000000Z-abcdef" in output, output
        assert str(tmp_path) not in output, output
    code, output = plant.run("backup", "restore", "nope", "--source", "models", "--file", "a.txt")
    assert code == 1 and "nope" in output and str(tmp_path) not in output, output
    code, output = plant.run("backup", "restore", "latest", "--source", "models", "--file", "missing.txt")
    assert code == 1 and "missing.txt" in output and str(tmp_path) not in output, output


def test_set_names_with_slashes_or_dots_are_refused(tmp_path: Path) -> None:
    """Issue 15, item 12: set names that are paths get a clear refusal on verify, drill and restore."""
    plant = Plant(tmp_path)
    for name in ("../backups/" + plant.set_id, f"./{plant.set_id}", "..", "a/b", "/etc", "x\\y", "x" * 300):
        for args in (("verify", name), ("drill", name), ("restore", name, "--target", str(plant.outside))):
            code, output = plant.run("backup", *args)
            assert code == 2 and "not a backup set name" in output, (args, output)
            assert str(tmp_path) not in output.replace(str(plant.outside), ""), output
    assert list(plant.outside.iterdir()) == []


def test_damaged_manifests_get_a_clear_error_and_lose_nothing(tmp_path: Path) -> None:
    """Issue 15, item 12: deeply nested, wrongly typed or huge manifests are named, listed around, never a crash."""
    plant = Plant(tmp_path)
    backups = plant.set_dir.parent
    cases = {
        "20200101T000000Z-000001": "[" * 100_000,
        "20200101T000000Z-000002": None,  # sizes that are text
        "20200101T000000Z-000003": None,  # huge
    }
    for name in cases:
        (backups / name).mkdir()
    (backups / "20200101T000000Z-000001" / "manifest.json").write_text(cases["20200101T000000Z-000001"] or "")
    typed = plant.manifest()
    typed["id"] = "20200101T000000Z-000002"
    plant.files(typed)[0]["size"] = "big"
    plant.write_manifest(typed, backups / "20200101T000000Z-000002")
    with (backups / "20200101T000000Z-000003" / "manifest.json").open("wb") as fh:
        fh.truncate(1 << 30)  # sparse: a gigabyte that takes no disk

    assert plant.sets() == [plant.set_id]
    for name in cases:
        code, output = plant.run("backup", "verify", name)
        assert code == 1 and f"set {name}" in output and "manifest" in output, output
        assert str(tmp_path) not in output, output
    code, output = plant.run("backup", "prune", "--json")
    assert code == 0, output
    assert all((backups / name).is_dir() for name in cases)  # not a set: not prune's to delete


def test_a_manifest_that_claims_another_id_cannot_make_prune_delete_elsewhere(tmp_path: Path) -> None:
    """Issue 15, item 12: prune deletes set directories, never what a tampered manifest's id points at."""
    plant = Plant(tmp_path)
    backups = plant.set_dir.parent
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("precious\n")
    old = backups / "20000101T000000Z-aaaaaa"
    old.mkdir()
    (old / "data").symlink_to(plant.set_dir / "data", target_is_directory=True)
    data = plant.manifest()
    data["id"] = "../../victim"
    data["started_at"] = data["finished_at"] = "2000-01-01T00:00:00+00:00"
    plant.write_manifest(data, old)

    code, output = plant.run("backup", "prune", "--json")

    assert code == 0, output
    assert (victim / "precious.txt").read_text() == "precious\n"
    assert plant.sets() == [plant.set_id]
    code, output = plant.run("backup", "verify", old.name)
    assert code == 1 and old.name in output and "manifest" in output, output


def test_restoring_one_file_never_follows_a_symlink_out_of_the_source(tmp_path: Path) -> None:
    """Issue 15, item 6: `restore --file` into a source whose directory became a symlink leading out is refused."""
    plant = Plant(tmp_path)
    (plant.models / "sub" / "b.txt").unlink()
    (plant.models / "sub").rmdir()
    (plant.models / "sub").symlink_to(plant.outside, target_is_directory=True)

    for rel in ("sub/b.txt", "../outside/b.txt"):
        code, output = plant.run("backup", "restore", "latest", "--source", "models", "--file", rel)
        assert code == 1 and "unsafe path" in output and str(tmp_path) not in output, output
    assert list(plant.outside.iterdir()) == []
