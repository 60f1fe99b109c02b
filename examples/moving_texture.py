"""Write a short clip whose content moves by a known amount per frame.

    python examples/moving_texture.py demo/moving_texture.mp4 --recipe h264 --dx 3 --dy -2

The clip is the README's built-in data: `compvid inspect` on it should report
a median motion of (dx, dy) pixels per frame step on every non-key frame.
"""

from __future__ import annotations

import argparse

from compvid.synthetic import RECIPES, write_moving_video


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("--recipe", default="h264", choices=sorted(RECIPES))
    parser.add_argument("--dx", type=int, default=3)
    parser.add_argument("--dy", type=int, default=-2)
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--motion", default="object", choices=["pan", "object"])
    a = parser.parse_args()
    path = write_moving_video(a.out, recipe=a.recipe, dx=a.dx, dy=a.dy, num_frames=a.frames,
                              width=a.width, height=a.height, motion=a.motion)
    print(f"wrote {path} ({a.recipe}, content moving ({a.dx}, {a.dy}) px per frame)")


if __name__ == "__main__":
    main()
