"""Small, fast settings shared by the mvcgc trainer tests (tiny encoder, random-tensor batches)."""

from mvcgc.data import SyntheticClips

TINY = dict(arch="tiny", queue_size=8, dim=16, device="cpu", lr=1e-3, momentum=0.99)


def clips(views=("rgb", "mv"), num_videos=16, batch_size=4, **kw):
    return SyntheticClips(num_videos=num_videos, batch_size=batch_size, num_frames=4, size=(16, 16), views=views, **kw)
