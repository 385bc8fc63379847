"""Which images a command runs on: files, folders and glob patterns expanded into image paths.

A folder gives the images directly in it (the suffixes of :mod:`edgesdk.formats`); a
pattern is a glob where ``**`` matches any depth. ``**`` never follows a symlinked
folder, so a folder that links to itself (or to its parent) cannot make the walk endless;
names starting with a dot are matched only by a pattern part that starts with one, as in
the shell.
"""

from __future__ import annotations

import fnmatch
import os
import sys
from pathlib import Path
from dataclasses import dataclass
from typing import Iterator, List, Optional, Sequence, Set, Tuple, Union

from edgesdk import formats

STDIN = "-"
MAGIC = "*?["


def is_image_name(path: Union[str, Path]) -> bool:
    """Whether a file name has the suffix of a format edgesdk reads."""
    return Path(path).suffix.lower() in formats.SUFFIXES


def _scan(folder: str) -> List[os.DirEntry]:
    try:
        with os.scandir(folder) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError:  # unreadable or vanished: like glob, it contributes nothing
        return []


def _hidden_ok(name: str, part: str) -> bool:
    return not name.startswith(".") or part.startswith(".")


def _walk(folder: str, parts: List[str]) -> Iterator[str]:
    part, rest = parts[0], parts[1:]
    if part == "**":
        if rest:
            yield from _walk(folder, rest)  # zero folders
        for entry in _scan(folder):
            if entry.name.startswith("."):
                continue
            if not rest and entry.is_file():
                yield entry.path
            # Only real folders: a symlinked one may lead back up the tree.
            if entry.is_dir(follow_symlinks=False):
                yield from _walk(entry.path, parts)
        return
    if not any(c in part for c in MAGIC):
        path = os.path.join(folder, part)
        if rest:
            if os.path.isdir(path):
                yield from _walk(path, rest)
        elif os.path.isfile(path):
            yield path
        return
    for entry in _scan(folder):
        if not (fnmatch.fnmatch(entry.name, part) and _hidden_ok(entry.name, part)):
            continue
        if rest:
            if entry.is_dir():  # a named level: its depth is bounded by the pattern
                yield from _walk(entry.path, rest)
        elif entry.is_file():
            yield entry.path


def glob_files(pattern: str) -> List[Path]:
    """The files matching ``pattern`` (``**``: any number of folders, symlinked folders not followed), sorted."""
    parts = [p for p in pattern.split(os.sep) if p not in ("", ".")]
    start = os.sep if pattern.startswith(os.sep) else os.curdir
    while parts and not any(c in parts[0] for c in MAGIC) and len(parts) > 1:
        start = os.path.join(start, parts.pop(0))
    if not parts:
        return []
    found = sorted(set(_walk(start, parts)))
    return [Path(p[2:] if p.startswith(os.curdir + os.sep) and not pattern.startswith(os.curdir) else p) for p in found]


def _identity(path: Path) -> Path:
    """A file's identity for spotting it named twice: its resolved path (or absolute one, in a symlink loop)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop, before Python 3.13
        return path.absolute()


def _pattern_base(pattern: str) -> Path:
    """The folder a glob pattern starts in: its leading parts without wildcards."""
    parts = pattern.split(os.sep)
    fixed = []
    for part in parts[:-1]:
        if any(c in part for c in MAGIC):
            break
        fixed.append(part)
    return Path(os.sep.join(fixed) or (os.sep if pattern.startswith(os.sep) else os.curdir))


def _expand(items: List[str]) -> List[Union[Tuple[Path, Path], Tuple[str, str]]]:
    """Each image as (path, the folder its output name is relative to), or (item, problem), in order, each once."""
    entries: List[Union[Tuple[Path, Path], Tuple[str, str]]] = []
    for item in items:
        p = Path(item)
        if item == STDIN:  # the encoded image piped in (`curl ... | edgesdk detect -`)
            entries.append((p, p))
        elif p.is_dir():
            found = [Path(e.path) for e in _scan(item) if is_image_name(e.name) and e.is_file()]
            if not found:
                entries.append((item, f"folder holds no images ({', '.join(sorted(formats.SUFFIXES))})"))
            entries += [(f, p) for f in found]
        elif os.path.lexists(p):
            entries.append((p, p.parent))
        elif any(c in item for c in MAGIC):
            # recursive: `**` matches any depth, as in a shell with globstar (quoted, so the shell leaves it to us)
            found = glob_files(item)
            if not found:
                entries.append((item, "pattern matches no file"))
            base = _pattern_base(item)
            entries += [(f, base) for f in found]
        else:
            entries.append((item, "no such file"))
    # A file named twice (`photos/ photos/*.jpg`, `a.jpg ./a.jpg`) is detected once, not written again as a-2.
    seen: Set[Path] = set()
    unique: List[Union[Tuple[Path, Path], Tuple[str, str]]] = []
    for e in entries:
        if isinstance(e[0], Path) and str(e[0]) != STDIN:
            key = _identity(e[0])
            if key in seen:
                continue
            seen.add(key)
        unique.append(e)
    return unique


def expand_in_order(items: List[str]) -> List[Union[Path, Tuple[str, str]]]:
    """Files, folders (their images) and glob patterns -> one list in the order of ``items``: each image path
    (once, where it first appears) or, for an item that names none, its (item, problem) pair."""
    return [e[0] if isinstance(e[0], Path) else e for e in _expand(items)]  # type: ignore[misc]


@dataclass(frozen=True)
class Task:
    """One image of a job and the name its outputs get.

    Attributes
    ----------
    source : Path
        The image (``Path("-")``: stdin).
    name : str
        Its outputs' name under the output folder, ``/``-separated: the input tree mirrored
        (``photos/a/x.jpg`` given as ``photos`` or ``'photos/**/*.jpg'`` -> ``a/x``), so
        two images in different folders never share one.
    position : int
        Its place among the job's inputs, in the order they were given.
    renamed : bool
        Whether ``name`` got a ``-2``, ``-3`` ... because another input had its name.
    """

    source: Path
    name: str
    position: int
    renamed: bool = False


def plan(items: Sequence[str], shard: Optional[Tuple[int, int]] = None) -> List[Union[Task, Tuple[str, str]]]:
    """The job for ``items`` (files, folders, globs, ``-``): a Task per image, an (item, problem) pair per item
    that names none, in the order given.

    Output names mirror the input tree below the folder or pattern that found each image;
    where two still meet (two files given by path, ``a/x.jpg`` and ``b/x.jpg``) the later is
    written as ``x-2``. ``shard=(i, n)`` keeps the i-th of n shares of the images (0-based), a
    split of their sorted paths that does not depend on the order of ``items``; names are
    given before the split, so shards never collide and repeat runs name alike.
    """
    entries = _expand(list(items))
    taken: Set[str] = set()
    out: List[Union[Task, Tuple[str, str]]] = []
    for position, e in enumerate(entries):
        if not isinstance(e[0], Path):
            out.append(e)  # type: ignore[arg-type]
            continue
        path, base = e  # type: ignore[misc]
        if str(path) == STDIN:
            wanted = "stdin"
        else:
            try:
                rel = path.relative_to(base)
            except ValueError:
                rel = Path(path.name)
            wanted = rel.with_suffix("").as_posix()
        name = output_stem(wanted, taken)
        out.append(Task(path, name, position, name != wanted))
    if shard is not None:
        index, count = shard
        if not (isinstance(index, int) and isinstance(count, int) and 0 <= index < count):
            raise ValueError(f"shard must be (i, n) with 0 <= i < n, got {shard!r}")
        images = sorted((t for t in out if isinstance(t, Task)), key=lambda t: os.fsencode(str(t.source)))
        keep = {id(t) for k, t in enumerate(images) if k % count == index}
        out = [t for t in out if not isinstance(t, Task) or id(t) in keep]
    return out


def read_list(source: Union[str, Path], stream=None) -> List[str]:
    """The paths listed one per line in a file (``-``: ``stream``, standard input), empty lines skipped.

    Lines are taken as they are (spaces kept; names that are not UTF-8 kept as their bytes).
    """
    if str(source) == STDIN:
        data = (stream if stream is not None else sys.stdin.buffer).read()
    else:
        from edgesdk import io as fileio

        data = fileio.read_file(source, 1 << 30, "list of paths")
    return [os.fsdecode(line.rstrip(b"\r")) for line in data.split(b"\n") if line.strip()]


def expand_inputs(items: List[str]) -> Tuple[List[Path], List[Tuple[str, str]]]:
    """:func:`expand_in_order` split into (image paths, (item, problem) pairs)."""
    entries = expand_in_order(items)
    return [e for e in entries if isinstance(e, Path)], [e for e in entries if isinstance(e, tuple)]


def output_stem(stem: str, taken: Set[str]) -> str:
    """``stem``, or ``stem-2``, ``stem-3``, ...: the first name no earlier input of this run was written as.

    Two inputs with one stem (a/x.jpg, b/x.png) must not overwrite each other, nor
    a renamed one an input that has the new name (c/x-2.jpg).
    """
    name, k = stem, 1
    while name in taken:
        k += 1
        name = f"{stem}-{k}"
    taken.add(name)
    return name
