"""Reading what a tqdm bar drew: the frames of a captured stream or the lines of a terminal screen."""

import re
from typing import NamedTuple

# "desc:  43%|####3     | 3/7 [00:01<00:01, 2.1video/s, postfix]" (a known total) or
# "desc: 5video [00:01, 2.1video/s]" (none)
WITH_TOTAL = re.compile(r"(?P<desc>[^\r\n]*?): *\d+%\|[^|\r\n]*\| (?P<n>\d+)/(?P<total>\d+) \[")
WITHOUT_TOTAL = re.compile(r"(?P<desc>[^\r\n]*?): (?P<n>\d+)(?P<unit>[a-z ]+) \[\d+:\d+")


class Frame(NamedTuple):
    desc: str
    n: int
    total: int | None


def frames(text: str) -> list[Frame]:
    """Every bar frame in ``text`` (tqdm redraws with a carriage return), in order."""
    out = []
    for segment in re.split(r"[\r\n]", text):
        m = WITH_TOTAL.search(segment)
        if m:
            out.append(Frame(m["desc"].strip(), int(m["n"]), int(m["total"])))
            continue
        m = WITHOUT_TOTAL.search(segment)
        if m:
            out.append(Frame(m["desc"].strip(), int(m["n"]), None))
    return out


def phases(text: str) -> list[tuple[str, int | None, int]]:
    """``(first description, total, last count)`` of each run of frames with one total, in order."""
    out: list[list] = []
    for f in frames(text):
        if out and out[-1][1] == f.total and f.n >= out[-1][2]:
            out[-1][2] = f.n
        else:
            out.append([f.desc, f.total, f.n])
    return [tuple(p) for p in out]
