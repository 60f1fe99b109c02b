"""Dataset folder layouts: which videos a source tree holds, their classes and splits.

``parse_layout(root)`` walks a source tree once and accounts for every entry in
it: each file becomes either an :class:`Entry` (a video to shard, with class,
label index and split) or a :class:`Problem` (a reason it is not written),
plus one problem per annotation line that names a missing video. The
annotation files of the layout themselves (``classInd.txt``, split lists,
CSVs) are listed in ``annotation_files`` and are not inputs.

Layouts (``layout=``, detected by ``"auto"`` where unambiguous):

- ``"ucf101"``: class folders, ``classInd.txt`` (``1 ApplyEyeMakeup``) and
  ``trainlist0N.txt`` (``Class/v_x.avi 1``) / ``testlist0N.txt``
  (``Class/v_x.avi``), in the root or one folder below it; ``split=N``
  picks the fold (default 1). Labels follow ``classInd.txt`` (index − 1).
- ``"hmdb51"``: class folders and ``<class>_test_splitN.txt`` files
  (``video.avi 1``: 1 = train, 2 = test, 0 = unused in this fold), in the root
  or one folder below; labels follow the sorted class names.
- ``"kinetics"``: annotation CSVs with a header naming at least
  ``youtube_id,time_start,time_end`` (usually ``label,youtube_id,time_start,
  time_end,split``) and videos named ``<id>_<start:06d>_<end:06d>.<ext>``
  anywhere below the root; labels follow the sorted label names; the split
  comes from the ``split`` column, else from the CSV's file name.
- ``"generic"``: ``<class>/<video>`` (or ``<split>/<class>/<video>`` when every
  top-level folder is a split name), split ``"all"`` when none is given; or an
  explicit CSV list ``path,label[,split]`` (``list_file=``, or a single root CSV
  with that header). Labels follow the sorted class names (numerically when
  every name is an integer). ``test_fraction=`` splits a plain tree of class
  folders into ``"train"`` and ``"test"`` (see :func:`split_by_fraction`).

Paths are POSIX strings relative to the root. File names that are not valid
UTF-8 cannot be carried in JSON records; they become problems whose ``path``
shows the undecodable bytes as ``\\xNN`` escapes.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Literal, NamedTuple

from compvid.errors import InvalidArgumentError, LayoutError

LayoutName = Literal["auto", "ucf101", "hmdb51", "kinetics", "generic"]
LAYOUTS: tuple[str, ...] = ("auto", "ucf101", "hmdb51", "kinetics", "generic")

# Extensions treated as video containers or raw video streams (lower case, no dot).
VIDEO_EXTENSIONS = frozenset(
    "avi mp4 m4v mkv webm mov qt mpg mpeg m1v m2v mpv vob ts mts m2ts flv f4v wmv asf "
    "3gp 3g2 ogv ogg mxf dv divx xvid rm rmvb h264 264 h265 265 hevc ivf y4m nut".split()
)

SPLIT_FOLDER_NAMES = frozenset({"train", "training", "val", "valid", "validate", "validation", "test", "testing"})

# What the annotation files of each layout hold, for the errors that ask for them.
UCF_CLASSIND_FORMAT = "one line per class: '<index> <ClassName>', counting from 1, e.g. '1 ApplyEyeMakeup'"
UCF_TRAINLIST_FORMAT = ("one line per training video: '<ClassName>/<video> <index>', "
                        "e.g. 'ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1'")
UCF_TESTLIST_FORMAT = ("one line per test video: '<ClassName>/<video>', "
                       "e.g. 'ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi'")
HMDB_SPLIT_FORMAT = ("one per class and fold N, e.g. brush_hair_test_split1.txt, with one line per video of the "
                     "class: '<video> <1|2|0>', 1 train, 2 test, 0 unused in fold N")
KINETICS_CSV_FORMAT = ("CSVs with a header naming youtube_id,time_start,time_end, usually "
                       "'label,youtube_id,time_start,time_end,split', one row per video, and the videos named "
                       "<youtube_id>_<time_start:06d>_<time_end:06d>.<ext> anywhere below")
GENERIC_LIST_FORMAT = "a CSV with one row per video: 'path,label[,split]', the path relative to the source folder"

# Problem reasons found while walking the tree or reading annotations.
REASON_NOT_VIDEO = "not_video"
REASON_NON_UTF8 = "non_utf8_name"
REASON_SYMLINK_LOOP = "symlink_loop"
REASON_BROKEN_SYMLINK = "broken_symlink"
REASON_UNREADABLE = "unreadable"
REASON_SPECIAL = "not_a_regular_file"
REASON_MISSING = "missing_video"
REASON_UNKNOWN_CLASS = "unknown_class"
REASON_NOT_IN_SPLIT = "not_in_split"
REASON_UNUSED = "unused_in_split"
REASON_NOT_LISTED = "not_in_annotations"
REASON_DUPLICATE_NAME = "duplicate_name"


@dataclass(frozen=True)
class Entry:
    """A video to shard: ``path`` relative to the root (POSIX), class and split."""

    path: str
    class_name: str
    label: int
    split: str


@dataclass(frozen=True)
class Problem:
    """An input that will not be written, or an annotation line without a video."""

    path: str
    reason: str
    detail: str = ""


@dataclass
class ParsedLayout:
    """What :func:`parse_layout` found. ``inputs`` = entries + problems."""

    layout: str
    root: Path
    classes: tuple[str, ...]
    entries: list[Entry]
    problems: list[Problem]
    annotation_files: tuple[str, ...] = ()
    fold: int | None = None
    warnings: list[str] = field(default_factory=list)
    split_rule: str = ""  # how test_fraction split the tree, in words ("" when the layout names the splits)

    @property
    def num_inputs(self) -> int:
        return len(self.entries) + len(self.problems)


# --------------------------------------------------------------------------- tree walk


@dataclass(frozen=True)
class _Scanned:
    path: str  # POSIX, relative; undecodable bytes shown as \xNN escapes
    problem: str | None = None
    detail: str = ""


def display_path(path: str) -> str:
    """``path`` with undecodable (surrogate-escaped) bytes shown as ``\\xNN``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def scan_tree(root: str | os.PathLike, *, exclude: Iterable[str | os.PathLike] = ()) -> list[_Scanned]:
    """Every non-directory entry below ``root``, sorted by path.

    Symbolic links to files and folders are followed; a link that leads back
    into a folder already being walked, or a link that cannot be resolved
    (ELOOP), becomes a ``symlink_loop`` problem; a folder that cannot be listed
    becomes one ``unreadable`` problem. ``exclude`` names folders to leave out
    (the output folder when it lies inside the source).
    """
    root = Path(root)
    excluded = set()
    for e in exclude:
        try:
            st = os.stat(e)
        except OSError:
            continue
        excluded.add((st.st_dev, st.st_ino))
    found: list[_Scanned] = []

    def walk(folder: Path, rel: str, ancestors: frozenset, utf8: bool) -> None:
        try:
            with os.scandir(folder) as it:
                children = sorted(it, key=lambda d: os.fsencode(d.name))
        except PermissionError as e:
            found.append(_Scanned(display_path(rel or "."), REASON_UNREADABLE, f"cannot list folder: {e.strerror}"))
            return
        for child in children:
            crel = f"{rel}/{child.name}" if rel else child.name
            shown = display_path(crel)
            name_ok = utf8 and _is_utf8(child.name)
            try:
                st = os.stat(child.path)  # follows links
            except OSError as e:
                if e.errno == errno.ELOOP:
                    found.append(_Scanned(shown, REASON_SYMLINK_LOOP, "symbolic link loop"))
                elif child.is_symlink():
                    found.append(_Scanned(shown, REASON_BROKEN_SYMLINK, "symbolic link to nothing"))
                else:
                    found.append(_Scanned(shown, REASON_UNREADABLE, e.strerror or str(e)))
                continue
            ident = (st.st_dev, st.st_ino)
            if os.path.isdir(child.path):
                if ident in excluded:
                    continue
                if ident in ancestors:
                    found.append(_Scanned(shown, REASON_SYMLINK_LOOP, "link to a folder that contains it"))
                    continue
                walk(Path(child.path), crel, ancestors | {ident}, name_ok)
                continue
            if not name_ok:
                found.append(_Scanned(shown, REASON_NON_UTF8, "file name is not valid UTF-8; rename it"))
            elif not os.path.isfile(child.path):
                found.append(_Scanned(shown, REASON_SPECIAL, "not a regular file"))
            elif extension(crel) not in VIDEO_EXTENSIONS:
                found.append(_Scanned(shown, REASON_NOT_VIDEO, "extension is not a video format"))
            else:
                found.append(_Scanned(crel))

    st = os.stat(root)
    walk(root, "", frozenset({(st.st_dev, st.st_ino)}), True)
    return found


def extension(path: str) -> str:
    """Lower-case extension without the dot ('' when none)."""
    name = path.rsplit("/", 1)[-1]
    stem, dot, ext = name.rpartition(".")
    return ext.lower() if dot and stem else ""


# --------------------------------------------------------------------------- detection


def _top_and_children(root: Path) -> list[Path]:
    """The root and its direct sub-folders: where annotation files may live."""
    places = [root]
    try:
        places += sorted(p for p in root.iterdir() if p.is_dir() and _is_utf8(p.name))
    except OSError:
        pass
    return places


def _find_files(root: Path, pattern: re.Pattern) -> list[Path]:
    out = []
    for place in _top_and_children(root):
        try:
            out += sorted(p for p in place.iterdir() if pattern.fullmatch(p.name) and p.is_file())
        except OSError:
            continue
    return out


_HMDB_SPLIT = re.compile(r"(.+)_test_split(\d+)\.txt")
_UCF_LIST = re.compile(r"(train|test)list(\d+)\.txt")


def _csv_header(path: Path) -> list[str]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            row = next(csv.reader(f), [])
    except (OSError, UnicodeDecodeError):
        return []
    return [c.strip().lower() for c in row]


def _kinetics_csvs(root: Path) -> list[Path]:
    need = {"youtube_id", "time_start", "time_end"}
    return [p for p in _find_files(root, re.compile(r".+\.csv", re.I)) if need <= set(_csv_header(p))]


def _generic_list(root: Path) -> Path | None:
    hits = [
        p for p in sorted(root.glob("*.csv")) if _csv_header(p)[:2] == ["path", "label"] and p.is_file()
    ]
    return hits[0] if len(hits) == 1 else None


def detect_layout(root: str | os.PathLike) -> str:
    """The layout of ``root``: 'ucf101', 'hmdb51', 'kinetics' or 'generic'.

    Raises LayoutError when annotation files of several layouts are present.
    """
    root = Path(root)
    found = []
    if _find_files(root, re.compile("classInd.txt")):
        found.append("ucf101")
    if _find_files(root, _HMDB_SPLIT):
        found.append("hmdb51")
    if _kinetics_csvs(root):
        found.append("kinetics")
    if len(found) > 1:
        raise LayoutError(
            f"{root}: annotation files of several layouts ({', '.join(found)}); pass layout= one of them"
        )
    return found[0] if found else "generic"


# --------------------------------------------------------------------------- parsing


def parse_layout(
    root: str | os.PathLike,
    *,
    layout: LayoutName = "auto",
    split: int | None = None,
    list_file: str | os.PathLike | None = None,
    test_fraction: float | None = None,
    exclude: Iterable[str | os.PathLike] = (),
) -> ParsedLayout:
    """Classify every entry of ``root`` under ``layout`` (see the module docstring).

    ``split`` is the fold of UCF101/HMDB51 (1, 2, 3 ...; default 1); the other
    layouts carry their splits in their annotations and refuse it.
    ``list_file`` is a ``path,label[,split]`` CSV for the generic layout.
    ``test_fraction`` (0 < f < 1) splits a plain ``<class>/<video>`` tree into
    train and test (:func:`split_by_fraction`); trees whose layout names the
    splits refuse it.
    Raises LayoutError when the tree does not fit the layout, and
    InvalidArgumentError for option values outside their allowed set.
    """
    root = Path(root)
    if layout not in LAYOUTS:
        raise InvalidArgumentError(f"layout={layout!r}: allowed values are {', '.join(LAYOUTS)}")
    if not root.is_dir():
        raise LayoutError(f"{root}: not a folder; pass the folder that holds the videos")
    if split is not None and (not isinstance(split, int) or split < 1):
        raise InvalidArgumentError(f"split={split!r}: the fold number must be an integer >= 1")
    if list_file is not None and layout == "auto":
        layout = "generic"
    if layout == "auto":
        layout = detect_layout(root)
    if split is not None and layout not in ("ucf101", "hmdb51"):
        raise InvalidArgumentError(
            f"split={split}: folds exist in the ucf101 and hmdb51 layouts only; "
            f"the {layout} layout takes its splits from its annotations"
        )
    if test_fraction is not None:
        _check_test_fraction(test_fraction, layout, list_file, root)
    scanned = scan_tree(root, exclude=exclude)
    if layout == "ucf101":
        return _parse_ucf101(root, scanned, split or 1)
    if layout == "hmdb51":
        return _parse_hmdb51(root, scanned, split or 1)
    if layout == "kinetics":
        return _parse_kinetics(root, scanned)
    if test_fraction is not None:
        return _parse_class_folders(root, scanned, test_fraction)
    return _parse_generic(root, scanned, Path(list_file) if list_file is not None else _generic_list(root))


def _check_test_fraction(test_fraction: float, layout: str, list_file, root: Path) -> None:
    """Refuse ``test_fraction`` where it is out of range or the source already names its splits."""
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)) or not 0 < test_fraction < 1:
        raise InvalidArgumentError(f"test_fraction={test_fraction!r}: must lie between 0 and 1 (exclusive), e.g. 0.3")
    if layout != "generic":
        raise InvalidArgumentError(
            f"test_fraction: the {layout} layout takes its train/test split from its annotation files; "
            "test_fraction splits a plain tree of <class>/<video> folders"
        )
    listed = list_file if list_file is not None else _generic_list(root)
    if listed is not None:
        raise InvalidArgumentError(
            f"test_fraction: {listed} lists the videos (path,label[,split]) and names their splits; "
            "test_fraction splits a plain tree of <class>/<video> folders"
        )


class _Resolver:
    """Looks up annotation paths among the scanned files, exactly, else ignoring case.

    (UCF101's lists say ``HandstandPushups/v_HandStandPushups_...`` while some
    copies on disk differ in case.)
    """

    def __init__(self, scanned: list[_Scanned], annotation_files: set[str]):
        self.by_path = {s.path: s for s in scanned if s.path not in annotation_files}
        self.folded: dict[str, str] = {}
        for p in self.by_path:
            self.folded.setdefault(p.casefold(), p)

    def find(self, rel: str) -> str | None:
        if rel in self.by_path:
            return rel
        return self.folded.get(rel.casefold())


class _Builder:
    """Assigns each scanned file once; files left over get a fallback reason."""

    def __init__(self, root: Path, scanned: list[_Scanned], annotation_files: list[Path]):
        self.root = root
        self.annotations = sorted({p.relative_to(root).as_posix() for p in annotation_files})
        self.resolver = _Resolver(scanned, set(self.annotations))
        self.assigned: dict[str, Entry | Problem] = {}
        self.dangling: list[Problem] = []
        self.warnings: list[str] = []
        for s in self.resolver.by_path.values():
            if s.problem is not None:
                self.assigned[s.path] = Problem(s.path, s.problem, s.detail)

    def reference(self, rel: str, make: Callable[[str], Entry | Problem], where: str) -> None:
        """An annotation line naming ``rel``; ``make(found_path)`` builds its Entry/Problem."""
        found = self.resolver.find(rel)
        if found is None:
            self.dangling.append(Problem(rel, REASON_MISSING, f"named in {where} but not found"))
            return
        if found in self.assigned:
            previous = self.assigned[found]
            if isinstance(previous, Entry):
                self.warnings.append(f"{found}: named again in {where}; keeping the first mention")
            return
        self.assigned[found] = make(found)

    def finish(
        self, layout: str, classes: list[str], leftover: Callable[[str], Entry | Problem], fold: int | None = None
    ) -> ParsedLayout:
        for path in self.resolver.by_path:
            if path not in self.assigned:
                self.assigned[path] = leftover(path)
        entries = sorted((v for v in self.assigned.values() if isinstance(v, Entry)), key=lambda e: e.path)
        problems = [v for v in self.assigned.values() if isinstance(v, Problem)] + self.dangling
        problems.sort(key=lambda p: (p.path, p.reason))
        return ParsedLayout(
            layout=layout,
            root=self.root,
            classes=tuple(classes),
            entries=entries,
            problems=problems,
            annotation_files=tuple(self.annotations),
            fold=fold,
            warnings=self.warnings,
        )


def _read_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError as e:
        raise LayoutError(f"{path}: cannot read the annotation file ({e.strerror})") from e
    return [line.strip() for line in text.splitlines() if line.strip()]


def _class_of(rel: str) -> str | None:
    return rel.split("/", 1)[0] if "/" in rel else None


def _parse_ucf101(root: Path, scanned: list[_Scanned], fold: int) -> ParsedLayout:
    class_files = _find_files(root, re.compile("classInd.txt"))
    if not class_files:
        raise LayoutError(
            f"{root}: layout ucf101 needs classInd.txt in the folder or one level below, with trainlist01.txt "
            f"and testlist01.txt beside it; classInd.txt holds {UCF_CLASSIND_FORMAT}"
        )
    if len(class_files) > 1:
        raise LayoutError(f"{root}: several classInd.txt files: {', '.join(map(str, class_files))}")
    ann_dir = class_files[0].parent
    numbered: dict[int, str] = {}
    for line in _read_lines(class_files[0]):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise LayoutError(f"{class_files[0]}: bad line {line!r}; expected '<index> <ClassName>'")
        numbered[int(parts[0])] = parts[1]
    classes = [numbered[i] for i in sorted(numbered)]
    label_of = {name.casefold(): (i - 1, name) for i, name in numbered.items()}
    lists = [p for p in ann_dir.iterdir() if p.is_file() and _UCF_LIST.fullmatch(p.name)]
    train = ann_dir / f"trainlist{fold:02d}.txt"
    test = ann_dir / f"testlist{fold:02d}.txt"
    if not train.is_file() or not test.is_file():
        raise LayoutError(_missing_ucf_lists(ann_dir, fold, train, test, lists))
    b = _Builder(root, scanned, class_files + lists)
    for split_name, list_path in (("train", train), ("test", test)):
        for line in _read_lines(list_path):
            rel = line.split()[0].replace("\\", "/")
            cls = _class_of(rel)
            known = label_of.get(cls.casefold()) if cls else None
            if known is None:
                found = b.resolver.find(rel)
                problem = Problem(
                    found or rel, REASON_UNKNOWN_CLASS, f"class {cls!r} of {list_path.name} is not in classInd.txt"
                )
                if found is None:
                    b.dangling.append(problem)
                elif found not in b.assigned:
                    b.assigned[found] = problem
                continue
            label, name = known
            b.reference(rel, lambda p, s=split_name, l=label, n=name: Entry(p, n, l, s), list_path.name)

    def leftover(path: str) -> Problem:
        cls = _class_of(path)
        if cls is not None and cls.casefold() in label_of:
            return Problem(path, REASON_NOT_IN_SPLIT, f"not listed in {train.name} or {test.name}")
        return Problem(path, REASON_UNKNOWN_CLASS, "folder is not a class of classInd.txt")

    return b.finish("ucf101", classes, leftover, fold)


def _missing_ucf_lists(ann_dir: Path, fold: int, train: Path, test: Path, lists: list[Path]) -> str:
    """The error for a fold whose train or test list is missing: which file, what it holds, which folds exist."""
    formats = {train: UCF_TRAINLIST_FORMAT, test: UCF_TESTLIST_FORMAT}
    missing = " and ".join(f"{p.name} ({formats[p]})" for p in (train, test) if not p.is_file())
    kinds_of_fold: dict[int, set[str]] = {}
    for p in lists:
        kind, number = _UCF_LIST.fullmatch(p.name).groups()
        kinds_of_fold.setdefault(int(number), set()).add(kind)
    complete = sorted(n for n, kinds in kinds_of_fold.items() if kinds == {"train", "test"})
    unpaired = sorted(p.name for p in lists if len(kinds_of_fold[int(_UCF_LIST.fullmatch(p.name).group(2))]) == 1)
    return (
        f"{ann_dir}: split {fold} needs {missing}; folds present: {complete or 'none'}"
        + (f" (a fold needs both lists; unpaired: {', '.join(unpaired)})" if unpaired else "")
    )


def _parse_hmdb51(root: Path, scanned: list[_Scanned], fold: int) -> ParsedLayout:
    split_files = _find_files(root, _HMDB_SPLIT)
    if not split_files:
        raise LayoutError(
            f"{root}: layout hmdb51 needs <class>_test_splitN.txt files in the folder or one level below: "
            f"{HMDB_SPLIT_FORMAT}"
        )
    classes = sorted({_HMDB_SPLIT.fullmatch(p.name).group(1) for p in split_files})
    label_of = {name: i for i, name in enumerate(classes)}
    chosen = [p for p in split_files if int(_HMDB_SPLIT.fullmatch(p.name).group(2)) == fold]
    if not chosen:
        folds = sorted({int(_HMDB_SPLIT.fullmatch(p.name).group(2)) for p in split_files})
        raise LayoutError(
            f"{root}: split {fold} needs <class>_test_split{fold}.txt files, {HMDB_SPLIT_FORMAT}; "
            f"folds present: {folds}"
        )
    b = _Builder(root, scanned, split_files)
    for path in chosen:
        cls = _HMDB_SPLIT.fullmatch(path.name).group(1)
        for line in _read_lines(path):
            parts = line.split()
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise LayoutError(f"{path}: bad line {line!r}; expected '<video> <0|1|2>'")
            rel = f"{cls}/{parts[0]}"
            if parts[1] == "0":
                found = b.resolver.find(rel)
                if found is not None and found not in b.assigned:
                    b.assigned[found] = Problem(found, REASON_UNUSED, f"marked 0 (unused) in {path.name}")
                continue
            split_name = "train" if parts[1] == "1" else "test"
            b.reference(rel, lambda p, s=split_name, c=cls: Entry(p, c, label_of[c], s), path.name)

    def leftover(path: str) -> Problem:
        cls = _class_of(path)
        if cls in label_of:
            return Problem(path, REASON_NOT_IN_SPLIT, f"not listed in {cls}_test_split{fold}.txt")
        return Problem(path, REASON_UNKNOWN_CLASS, "folder has no <class>_test_splitN.txt file")

    return b.finish("hmdb51", classes, leftover, fold)


def _stem(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[0] if "." in name else name


def _parse_kinetics(root: Path, scanned: list[_Scanned]) -> ParsedLayout:
    csvs = _kinetics_csvs(root)
    if not csvs:
        raise LayoutError(f"{root}: layout kinetics needs, in the folder or one level below, {KINETICS_CSV_FORMAT}")
    rows: list[tuple[str, str, str, Path]] = []  # (stem, label, split, csv)
    for path in csvs:
        with open(path, newline="", encoding="utf-8-sig") as f:
            for n, row in enumerate(csv.DictReader(f), start=2):
                row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
                try:
                    start, end = int(float(row["time_start"])), int(float(row["time_end"]))
                except ValueError as e:
                    raise LayoutError(f"{path}:{n}: time_start/time_end are not numbers: {row}") from e
                stem = f"{row['youtube_id']}_{start:06d}_{end:06d}"
                split_name = row.get("split") or path.stem
                rows.append((stem, row.get("label", ""), split_name, path))
    classes = sorted({label for _, label, _, _ in rows if label})
    label_of = {name: i for i, name in enumerate(classes)}
    b = _Builder(root, scanned, csvs)
    by_stem: dict[str, list[str]] = {}
    for s in b.resolver.by_path.values():
        if s.problem is None:
            by_stem.setdefault(_stem(s.path), []).append(s.path)
    for stem, label, split_name, path in rows:
        files = by_stem.get(stem, [])
        if not files:
            b.dangling.append(Problem(stem, REASON_MISSING, f"row of {path.name} has no video named {stem}.<ext>"))
            continue
        for extra in files[1:]:
            if extra not in b.assigned:
                b.assigned[extra] = Problem(extra, REASON_DUPLICATE_NAME, f"another file is also named {stem}")
        b.reference(
            files[0],
            lambda p, s=split_name, c=label: Entry(p, c, label_of.get(c, -1), s),
            path.name,
        )
    names = ", ".join(p.name for p in csvs)
    return b.finish("kinetics", classes, lambda p: Problem(p, REASON_NOT_LISTED, f"not a row of {names}"))


def _sorted_classes(names: Iterable[str]) -> list[str]:
    names = set(names)
    if names and all(n.isdigit() for n in names):
        return sorted(names, key=int)
    return sorted(names)


def _parse_generic(root: Path, scanned: list[_Scanned], list_file: Path | None) -> ParsedLayout:
    if list_file is not None:
        return _parse_generic_list(root, scanned, list_file)
    videos = [s.path for s in scanned if s.problem is None]
    tops = {p.split("/", 1)[0] for p in videos if "/" in p}
    by_split = bool(tops) and all(t.lower() in SPLIT_FOLDER_NAMES for t in tops)
    depth = 1 if by_split else 0
    b = _Builder(root, scanned, [])
    classes = _sorted_classes(p.split("/")[depth] for p in videos if p.count("/") > depth)
    label_of = {name: i for i, name in enumerate(classes)}

    def leftover(path: str) -> Entry | Problem:
        parts = path.split("/")
        if len(parts) <= depth + 1:
            where = "<split>/<class>/<video>" if by_split else "<class>/<video>"
            return Problem(path, REASON_UNKNOWN_CLASS, f"not inside a class folder; expected {where}")
        split_name = parts[0] if by_split else "all"
        return Entry(path, parts[depth], label_of[parts[depth]], split_name)

    return b.finish("generic", classes, leftover)


def _parse_generic_list(root: Path, scanned: list[_Scanned], list_file: Path) -> ParsedLayout:
    if not list_file.is_absolute() and not list_file.exists():
        list_file = root / list_file
    try:
        with open(list_file, newline="", encoding="utf-8-sig") as f:
            rows = [[c.strip() for c in r] for r in csv.reader(f) if any(c.strip() for c in r)]
    except OSError as e:
        raise LayoutError(f"{list_file}: cannot read the list ({e.strerror}); expected {GENERIC_LIST_FORMAT}") from e
    if rows and [c.lower() for c in rows[0][:2]] == ["path", "label"]:
        rows = rows[1:]
    for n, r in enumerate(rows, start=1):
        if len(r) not in (2, 3):
            raise LayoutError(f"{list_file}: row {n} {r!r}; expected 'path,label[,split]'")
    classes = _sorted_classes(r[1] for r in rows)
    label_of = {name: i for i, name in enumerate(classes)}
    try:
        annotations = [root / list_file.resolve().relative_to(root.resolve())]
    except ValueError:  # the list lives outside the tree
        annotations = []
    b = _Builder(root, scanned, annotations)
    for r in rows:
        split_name = r[2] if len(r) == 3 and r[2] else "all"
        rel = r[0].replace("\\", "/")
        rel = rel[2:] if rel.startswith("./") else rel
        b.reference(rel, lambda p, s=split_name, c=r[1]: Entry(p, c, label_of[c], s), list_file.name)
    return b.finish("generic", classes, lambda p: Problem(p, REASON_NOT_LISTED, f"not a row of {list_file.name}"))


# --------------------------------------------------------------------------- train/test split by fraction

# UCF101's file names: v_<Class>_g<group>_c<clip>. A group's clips share actors and scene.
_GROUP_IN_NAME = re.compile(r"_g(\d+)_c\d+$")


class FractionSplit(NamedTuple):
    """What :func:`split_by_fraction` decided: a split per path, the rule in words, and warnings."""

    split_of: dict[str, str]
    rule: str
    warnings: list[str]


def _group_of(path: str) -> int | None:
    m = _GROUP_IN_NAME.search(_stem(path))
    return int(m.group(1)) if m else None


def _hash_share(path: str) -> float:
    """A number in [0, 1) fixed by ``path`` alone: the same on every machine, run and tree."""
    return int.from_bytes(hashlib.sha256(path.encode("utf-8")).digest()[:8], "big") / 2**64


def split_by_fraction(paths: Iterable[str], test_fraction: float) -> FractionSplit:
    """Put about ``test_fraction`` of the videos ``paths`` (``<class>/<video>``) in "test", the rest in "train".

    Deterministic, and documented in the README:

    - where every file name carries a UCF101-style group (``v_ApplyEyeMakeup_g08_c01.avi``: group 8),
      whole groups go to test, so clips of one group (same actors, same scene) never straddle train
      and test: the first ``round(test_fraction * groups)`` group numbers, at least one and never all,
      as UCF101's official splits test on its first groups. Group numbers are shared by all classes.
    - otherwise each video goes to test when a stable hash of its path falls under
      ``test_fraction``, so adding or removing videos moves no other video.
    """
    paths = sorted(paths)
    groups = {p: _group_of(p) for p in paths}
    grouped = sum(g is not None for g in groups.values())
    if paths and grouped == len(paths):
        return _split_by_group(groups, test_fraction)
    split_of = {p: "test" if _hash_share(p) < test_fraction else "train" for p in paths}
    tested = sum(s == "test" for s in split_of.values())
    rule = (f"the {tested} of {len(paths)} videos whose path hash falls under {test_fraction:g} in test "
            f"(stable: adding videos moves no other), the other {len(paths) - tested} in train")
    warnings = []
    if grouped:
        warnings.append(f"{grouped} of {len(paths)} file names carry a group (_gNN_cNN) and the others do not: "
                        "split by file, so clips of one group may land in both train and test")
    return FractionSplit(split_of, rule, warnings)


def _split_by_group(groups: dict[str, int], test_fraction: float) -> FractionSplit:
    numbers = sorted(set(groups.values()))
    count = min(max(round(test_fraction * len(numbers)), 1), len(numbers) - 1)
    test_groups = set(numbers[:count])
    split_of = {p: "test" if g in test_groups else "train" for p, g in groups.items()}
    tested = sum(s == "test" for s in split_of.values())
    named = ", ".join(f"g{g:02d}" for g in sorted(test_groups))
    rule = (f"groups {named or 'none'} in test ({count} of {len(numbers)} groups, the first by number; "
            f"{tested} videos), the other groups in train ({len(groups) - tested} videos)")
    warnings = [] if count else [f"all videos are of one group (g{numbers[0]:02d}): it goes wholly to train, "
                                 "and test is empty"]
    return FractionSplit(split_of, rule, warnings)


def _classes_missing_a_split(entries: list[Entry]) -> list[str]:
    """A warning per class that has no train or no test video (its label cannot be learnt or tested)."""
    splits_of: dict[str, set[str]] = {}
    for e in entries:
        splits_of.setdefault(e.class_name, set()).add(e.split)
    return [f"class {name!r}: no {missing} videos after the split"
            for name, present in sorted(splits_of.items()) for missing in ("train", "test") if missing not in present]


def _parse_class_folders(root: Path, scanned: list[_Scanned], test_fraction: float) -> ParsedLayout:
    """The generic ``<class>/<video>`` tree with its videos split into train and test by ``test_fraction``."""
    parsed = _parse_generic(root, scanned, None)
    folders = sorted({e.split for e in parsed.entries} - {"all"})
    if folders:
        raise LayoutError(
            f"{root}: the videos already lie in split folders ({', '.join(folders)}); "
            "test_fraction splits a plain tree of <class>/<video> folders"
        )
    split = split_by_fraction((e.path for e in parsed.entries), test_fraction)
    parsed.entries = [replace(e, split=split.split_of[e.path]) for e in parsed.entries]
    parsed.warnings += split.warnings + _classes_missing_a_split(parsed.entries)
    parsed.split_rule = split.rule
    return parsed
