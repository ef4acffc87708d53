"""Summarise py-spy's collapsed stacks (`--format raw`): share of samples per function, inclusive and own.

Usage: `python benchmarks/http/stacks_summary.py stacks.txt [TOP]`.
"""

from __future__ import annotations

import collections
import re
import sys

_FRAME = re.compile(r"(.*) \((.*?):\d+\)$")


def name(frame: str) -> str:
    """A py-spy frame "function (path/file.py:line)" as "function (file.py)": the lines of one function merge."""
    match = _FRAME.match(frame)
    return f"{match[1]} ({match[2].split('/')[-1]})" if match else frame


def main(path: str, top: int = 60) -> None:
    """Print the shares of the stacks in `path`."""
    total = 0
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            stack, _, count = line.rstrip().rpartition(" ")
            frames = [name(f) for f in stack.split(";") if f]
            if not frames or not count.isdigit():
                continue
            total += int(count)
            for frame in set(frames):
                inclusive[frame] += int(count)
            own[frames[-1]] += int(count)
    print(f"# samples: {total}")
    print(f"# share of samples per function, inclusive (callees counted), top {top}")
    for frame, n in inclusive.most_common(top):
        print(f"{100 * n / total:6.1f}%  {frame}")
    print(f"# share of samples per function, own time, top {top // 2}")
    for frame, n in own.most_common(top // 2):
        print(f"{100 * n / total:6.1f}%  {frame}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 60)
