"""A compiled project directory: written in a staging directory, swapped in whole, user files kept.

Every backend writes its project through :func:`staged_project`, so a failed compile leaves
no half-written output.

:func:`staged_project` gives a fresh hidden directory beside the output,
``.<name>.edgec-<pid>-<random>``. When the block succeeds it becomes the output; when the
block raises it is removed and the output is untouched. Rules:

* The output may be missing, an empty directory or an edgec project (its ``report.json``
  says so); anything else is refused, and so is the current directory (or one holding it),
  which the swap would pull from under the user's shell.
* Recompiling keeps the files a user added to a project: every file under the old project
  that its manifest does not list among the files edgec wrote (``files``) and that lies
  outside the backend's build directories (``build_dirs``) is copied into the new project, and a warning
  names them. A kept file at a path the new project writes is refused up front, so it is
  never overwritten. (A manifest from before ``files`` was recorded counts the files the
  new project writes as edgec's.)
* The old project is renamed aside (``...-old``), the staging directory renamed in, and the
  old one removed, so the output is a complete project at every moment but between two renames.
* A staging or renamed-aside directory of the same output left by a process that no longer
  runs (a compile killed by SIGKILL) is removed on the next compile; an aside directory is
  restored instead when the output itself is missing.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Iterable
from pathlib import Path

from edgec.backend import MANIFEST, read_manifest
from edgec.errors import EdgecError, EdgecWarning

_ASIDE = "-old"


def _staging_pattern(name: str) -> re.Pattern:
    return re.compile(rf"\.{re.escape(name)}\.edgec-(\d+)-.+")


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(out_dir: Path) -> None:
    """Remove the staging directories of ``out_dir`` whose compile no longer runs (see the module
    docstring); an old project renamed aside comes back when ``out_dir`` is missing."""
    if not out_dir.parent.is_dir():
        return
    pattern = _staging_pattern(out_dir.name)
    for path in sorted(out_dir.parent.iterdir()):
        match = pattern.fullmatch(path.name)
        if match is None or not path.is_dir() or _running(int(match.group(1))):
            continue
        if path.name.endswith(_ASIDE) and not out_dir.exists():
            path.rename(out_dir)
        else:
            shutil.rmtree(path, ignore_errors=True)


def is_edgec_project(path: Path) -> bool:
    """True when ``path`` holds a manifest written by edgec."""
    return bool(read_manifest(path, required=False))


def _project_files(directory: Path, build_dirs: Iterable[str]) -> set[str]:
    """Relative paths of the files under ``directory``, build directories excluded."""
    found, build_dirs = set(), set(build_dirs)
    for path in directory.rglob("*"):
        relative = path.relative_to(directory)
        if relative.parts[0] not in build_dirs and (path.is_file() or path.is_symlink()):
            found.add(relative.as_posix())
    return found


def user_files(out_dir: Path, written: Iterable[str], build_dirs: Iterable[str] = ()) -> list[str]:
    """Files of the existing project ``out_dir`` that edgec did not write (none if it does not exist).

    ``written``: the files the new project writes, also taken as edgec's when the old manifest
    lists none.
    """
    if not out_dir.is_dir() or not is_edgec_project(out_dir):
        return []
    edgec_files = set(read_manifest(out_dir).get("files", written)) | {MANIFEST}
    return sorted(_project_files(out_dir, build_dirs) - edgec_files)


def _check_output(out_dir: Path, written: set[str], build_dirs: Iterable[str]) -> list[str]:
    if Path.cwd() == out_dir or out_dir in Path.cwd().parents:
        raise EdgecError(f"output '{out_dir}' is the current directory or holds it, and the project directory is "
                         "replaced as a whole", "compile into a subdirectory (e.g. -o project) or run edgec elsewhere")
    if out_dir.exists() and not out_dir.is_dir():
        raise EdgecError(f"output '{out_dir}' is a file, not a directory",
                         "give a directory name for the project (a new one, or an edgec project to replace)")
    if out_dir.exists() and any(out_dir.iterdir()) and not is_edgec_project(out_dir):
        raise EdgecError(f"output '{out_dir}' exists and is not an edgec project",
                         "choose a new directory (edgec only replaces projects it generated)")
    kept = user_files(out_dir, written, build_dirs)
    clashes = [name for name in kept if name in written]
    if clashes:
        raise EdgecError(f"'{out_dir / clashes[0]}' was not written by edgec, and the new project writes that file",
                         "move it out of the project directory, or compile into another directory")
    return kept


def _copy_into(source: Path, target: Path, names: list[str]) -> None:
    for name in names:
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / name, destination, follow_symlinks=False)


@contextlib.contextmanager
def staged_project(out_dir: Path, written: Iterable[str], build_dirs: Iterable[str] = ()):
    """A fresh directory next to ``out_dir`` that replaces it when the block succeeds.

    ``written``: the relative paths edgec writes into the project (its manifest's ``files``);
    ``build_dirs``: top-level directories of build products, neither kept nor refused.
    See the module docstring for what is refused, kept and cleaned.
    """
    out_dir = Path(os.path.abspath(out_dir))  # "." and "sub/.." have a name and a parent to stage beside
    written = set(written)
    clean_stale(out_dir)
    kept = _check_output(out_dir, written, build_dirs)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.edgec-{os.getpid()}-", dir=out_dir.parent))
    aside = staging.with_name(staging.name + _ASIDE)
    try:
        yield staging
        _copy_into(out_dir, staging, kept)
        if out_dir.exists():
            out_dir.rename(aside)
        staging.rename(out_dir)
    finally:
        if aside.exists() and not out_dir.exists():
            aside.rename(out_dir)
        for leftover in (staging, aside):
            if leftover.exists():
                shutil.rmtree(leftover)
    if kept:
        shown = ", ".join(kept[:5]) + (f" and {len(kept) - 5} more" if len(kept) > 5 else "")
        warnings.warn(f"kept {len(kept)} file{'s' if len(kept) > 1 else ''} edgec did not write in {out_dir}: {shown}",
                      EdgecWarning, stacklevel=3)
