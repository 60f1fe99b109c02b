"""compvid: RGB frames and codec motion vectors decoded on the fly from compressed video."""

__version__ = "0.1.0"
