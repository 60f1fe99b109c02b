"""Evaluation features: what is extracted, per window × crop, the cache and its invalidation, bad input."""

import os

import pytest
import torch
from eval_testing import class_folders, tiny_checkpoint

from compvid.pipeline import WindowClips
from compvid.probe import probe
from compvid.sampling import sliding_window_starts
from mvcgc import features as features_module
from mvcgc.checkpoint import load_encoder
from mvcgc.errors import CheckpointError, EmptyDataError
from mvcgc.features import align_classes, extract_features, video_set


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("feat")
    videos = class_folders(root / "videos", per_class={"left": 2, "right": 1})
    ckpt = tiny_checkpoint(root / "run")
    return videos, ckpt


def test_pooled_backbone_features_of_every_window_and_crop(data):
    videos, ckpt = data
    out = extract_features(videos, checkpoints={"rgb": ckpt, "mv": ckpt}, crops="ten", device="cpu")
    rgb, mv = out["rgb"], out["mv"]
    starts = sliding_window_starts(16, num_frames=8)  # the checkpoint was trained on 8-frame clips
    assert len(starts) == 3
    assert rgb.features.shape == (3 * 3, 10, 128)  # 3 videos × 3 windows, 10 crops, tiny's 128-d (not the 16-d head)
    assert mv.features.shape == (9, 10, 128)
    assert rgb.window_video.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert rgb.labels.tolist() == [0, 0, 1] and rgb.keys == mv.keys and not rgb.failed
    assert rgb.keys[2].endswith(os.path.join("right", "v0.mp4"))
    assert rgb.meta["checkpoint_sha256"] and rgb.meta["crops"] == "ten" and rgb.meta["size"] == 32

    # Window 1 of video 2 equals the encoder run directly on compvid's evaluation crops of that window.
    path = rgb.keys[2]
    clips = WindowClips(num_frames=8, size=32, crops="ten", views="both")(path, probe(path), starts[1])
    for view, feats in out.items():
        expected = load_encoder(ckpt, view).forward_features(clips[view])  # (10, 128)
        assert torch.allclose(feats.features[7], expected, atol=1e-5)

    # Video feature = mean over windows and crops of the L2-normalised features.
    f = torch.nn.functional.normalize(rgb.features[3:6], dim=-1)  # video 1
    assert torch.allclose(rgb.video_features()[1], f.mean(dim=(0, 1)), atol=1e-6)


def test_cache_is_reused_and_invalidated_by_every_input(data, tmp_path, monkeypatch):
    videos, ckpt = data
    cache = tmp_path / "cache"
    first = extract_features(videos, checkpoints={"rgb": ckpt}, device="cpu", cache_dir=cache)["rgb"]
    assert len(list(cache.glob("rgb-*.pt"))) == 1

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded although the cache holds these features")

    with monkeypatch.context() as m:
        m.setattr(features_module, "window_outputs", no_decoding)
        again = extract_features(videos, checkpoints={"rgb": ckpt}, device="cpu", cache_dir=cache)["rgb"]
    assert torch.equal(again.features, first.features) and again.keys == first.keys

    extract_features(videos, checkpoints={"rgb": ckpt}, device="cpu", cache_dir=cache, stride=2)  # an option
    assert len(list(cache.glob("rgb-*.pt"))) == 2
    other_ckpt = tiny_checkpoint(tmp_path / "other", seed=1)  # other weights
    extract_features(videos, checkpoints={"rgb": other_ckpt}, device="cpu", cache_dir=cache)
    assert len(list(cache.glob("rgb-*.pt"))) == 3
    video = next(videos.glob("left/*.mp4"))  # a data file changes (mtime)
    st = video.stat()
    os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    extract_features(videos, checkpoints={"rgb": ckpt}, device="cpu", cache_dir=cache)
    assert len(list(cache.glob("rgb-*.pt"))) == 4


def test_a_video_that_fails_to_decode_is_left_out_and_listed(tmp_path, data):
    _, ckpt = data
    videos = class_folders(tmp_path / "v", per_class={"left": 1, "up": 1})
    (videos / "up" / "broken.mp4").write_bytes(b"\x00not a video" * 50)
    out = extract_features(videos, checkpoints={"mv": ckpt}, device="cpu")["mv"]
    assert out.num_videos == 2 and all("broken" not in k for k in out.keys)
    assert len(out.failed) == 1 and out.failed[0]["key"].endswith("broken.mp4")
    assert "CorruptVideoError" in out.failed[0]["reason"]


def test_bad_input(tmp_path, data):
    videos, ckpt = data
    rgb_only = tiny_checkpoint(tmp_path / "rgb", stage="init", view="rgb")
    with pytest.raises(CheckpointError, match="not 'mv'"):
        extract_features(videos, checkpoints={"mv": rgb_only})
    (tmp_path / "empty").mkdir()
    with pytest.raises(EmptyDataError, match="no videos"):
        extract_features(tmp_path / "empty", checkpoints={"rgb": ckpt})
    with pytest.raises(ValueError, match="allowed values are center, three, ten"):
        extract_features(videos, checkpoints={"rgb": ckpt}, crops="five")
    with pytest.raises(ValueError, match="allowed values are rgb, mv"):
        extract_features(videos, checkpoints={"flow": ckpt})
    broken = tmp_path / "all_broken" / "c"
    broken.mkdir(parents=True)
    (broken / "x.mp4").write_bytes(b"junk" * 10)
    with pytest.raises(EmptyDataError, match="no video could be decoded"):
        extract_features(broken.parent, checkpoints={"rgb": ckpt})


def test_test_labels_follow_the_train_class_names(tmp_path):
    train = video_set([("a.mp4", 0), ("b.mp4", 1), ("c.mp4", 2)])
    train = type(train)(items=train.items, class_names=("left", "right", "up"), source="train")
    test = type(train)(items=(("d.mp4", 0), ("e.mp4", 1)), class_names=("right", "walk"), source="test")
    aligned = align_classes(train, test)
    assert [label for _, label in aligned.items] == [1, 3]  # "right" is 1 in train; "walk" is new
