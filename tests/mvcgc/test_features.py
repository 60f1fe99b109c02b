"""Evaluation features: what is extracted, per window × crop, the caches and their invalidation, bad input."""

import logging
import os

import pytest
import torch
from eval_testing import class_folders, tiny_checkpoint

import compvid.datasets
import compvid.pipeline
from compvid.pipeline import WindowClips
from compvid.probe import probe
from compvid.request import ClipRequest
from compvid.sampling import sliding_window_starts
from mvcgc import features as features_module
from mvcgc.checkpoint import load_encoder
from mvcgc.errors import CheckpointError, EmptyDataError
from mvcgc.features import align_classes, extract_features, video_set, window_outputs


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
    clips = WindowClips(ClipRequest(num_frames=8, crop_px=32, views="both"), crops="ten")(path, probe(path), starts[1])
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


# --------------------------------------------------------------------------- the decoded-window cache


@pytest.fixture(scope="module")
def with_broken(tmp_path_factory, data):
    """Two good videos and one that fails to decode (its record must survive the window cache)."""
    root = class_folders(tmp_path_factory.mktemp("wc") / "v", per_class={"left": 1, "up": 1})
    (root / "up" / "broken.mp4").write_bytes(b"\x00not a video" * 50)
    return root, data[1]


def _same(a, b):
    assert torch.equal(a.features, b.features), "features differ"
    assert torch.equal(a.window_video, b.window_video) and torch.equal(a.labels, b.labels)
    assert a.keys == b.keys and a.failed == b.failed


def _count_decodes(monkeypatch):
    """Counts decode_clip calls (every window, cached or not, is decoded by compvid's WindowClips.decode)."""
    calls = []

    def counted(real):
        def decode(*args, **kwargs):
            calls.append(1)
            return real(*args, **kwargs)
        return decode

    monkeypatch.setattr(compvid.pipeline, "decode_clip", counted(compvid.pipeline.decode_clip))
    return calls


def _forbid_decoding(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("decoded or probed although the window cache holds these windows")

    monkeypatch.setattr(compvid.pipeline, "decode_clip", fail)
    monkeypatch.setattr(compvid.datasets, "probe", fail)


def _drop_feature_caches(cache):
    for f in cache.glob("*.pt"):
        if not f.name.startswith("windows-"):
            f.unlink()


def test_window_cache_gives_the_features_of_a_fresh_decode(with_broken, tmp_path):
    videos, ckpt = with_broken
    views = {"rgb": ckpt, "mv": ckpt}
    fresh = extract_features(videos, checkpoints=views, crops="ten", device="cpu")  # no cache: compvid's path
    cache = tmp_path / "cache"
    cold = extract_features(videos, checkpoints=views, crops="ten", device="cpu", cache_dir=cache)
    (stored,) = cache.glob("windows-*.pt")
    _drop_feature_caches(cache)  # the same checkpoint again, now from the stored windows
    warm = extract_features(videos, checkpoints=views, crops="ten", device="cpu", cache_dir=cache)
    for view in views:
        assert fresh[view].num_videos == 2 and len(fresh[view].failed) == 1  # the broken video is listed
        _same(cold[view], fresh[view])
        _same(warm[view], fresh[view])

    # Stored as decoded: RGB uint8 (T, H, W, 3) before crops and normalisation, MV float32 (2, T, H, W).
    payload = torch.load(stored, weights_only=True)
    assert payload["format"] == "mvcgc.windows" and len(payload["items"]) == 6  # 2 videos × 3 windows
    item = payload["items"][0]
    assert item["rgb"].dtype == torch.uint8 and item["rgb"].shape[0] == 8 and item["rgb"].shape[-1] == 3
    assert item["mv"].dtype == torch.float32 and item["mv"].shape[:2] == (2, 8)
    assert min(item["rgb"].shape[1:3]) == 32  # short side = the crop size; crops are cut when read

    # Any module (finetune's classifier goes this way) gets the same outputs from the stored windows.
    head = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(4))
    head(torch.zeros(1, 2 * 8 * 32 * 32))
    opts = dict(request=ClipRequest(num_frames=8, crop_px=32), crops="three", device="cpu")
    _same(window_outputs(videos, {"mv": head}, cache_dir=tmp_path / "c2", **opts)["mv"],
          window_outputs(videos, {"mv": head}, **opts)["mv"])


def test_a_second_checkpoint_on_a_warm_window_cache_decodes_nothing(data, tmp_path, monkeypatch):
    videos, ckpt = data
    other = tiny_checkpoint(tmp_path / "other", seed=1)
    cache = tmp_path / "cache"
    with monkeypatch.context() as m:
        calls = _count_decodes(m)
        extract_features(videos, checkpoints={"rgb": ckpt, "mv": ckpt}, device="cpu", cache_dir=cache)
        assert len(calls) == 9  # 3 videos × 3 windows, both views in one pass
        expected = extract_features(videos, checkpoints={"rgb": other, "mv": other}, device="cpu")
    with monkeypatch.context() as m:
        _forbid_decoding(m)
        again = extract_features(videos, checkpoints={"rgb": other, "mv": other}, device="cpu", cache_dir=cache)
    for view in ("rgb", "mv"):
        _same(again[view], expected[view])
    assert len(list(cache.glob("windows-*.pt"))) == 1
    assert len(list(cache.glob("rgb-*.pt"))) == 2  # one feature file per checkpoint


def test_an_unreadable_window_cache_is_rebuilt_with_a_warning(data, tmp_path, caplog):
    videos, ckpt = data
    cache = tmp_path / "cache"
    first = extract_features(videos, checkpoints={"mv": ckpt}, device="cpu", cache_dir=cache)["mv"]
    (stored,) = cache.glob("windows-*.pt")
    _drop_feature_caches(cache)
    stored.write_bytes(b"not a torch file")
    with caplog.at_level(logging.WARNING, logger="mvcgc.features"):
        again = extract_features(videos, checkpoints={"mv": ckpt}, device="cpu", cache_dir=cache)["mv"]
    assert any("ignoring unreadable window cache" in r.getMessage() for r in caplog.records)
    _same(again, first)
    assert torch.load(stored, weights_only=True)["format"] == "mvcgc.windows"  # rebuilt in place


def test_decoding_options_get_their_own_window_cache_and_crops_share_one(data, tmp_path, monkeypatch):
    videos, ckpt = data
    cache = tmp_path / "cache"
    extract_features(videos, checkpoints={"rgb": ckpt}, device="cpu", cache_dir=cache)
    assert len(list(cache.glob("windows-*.pt"))) == 1
    extract_features(videos, checkpoints={"rgb": ckpt}, num_frames=4, device="cpu", cache_dir=cache)
    assert len(list(cache.glob("windows-*.pt"))) == 2
    extract_features(videos, checkpoints={"rgb": ckpt}, stride=2, device="cpu", cache_dir=cache)
    assert len(list(cache.glob("windows-*.pt"))) == 3
    extract_features(videos, checkpoints={"mv": ckpt}, device="cpu", cache_dir=cache)  # other views decoded
    assert len(list(cache.glob("windows-*.pt"))) == 4
    # Crops are cut from the stored windows: another crop mode reuses them, with compvid's crops exactly.
    expected = extract_features(videos, checkpoints={"rgb": ckpt}, crops="ten", device="cpu")["rgb"]
    with monkeypatch.context() as m:
        _forbid_decoding(m)
        ten = extract_features(videos, checkpoints={"rgb": ckpt}, crops="ten", device="cpu", cache_dir=cache)["rgb"]
    _same(ten, expected)
    assert len(list(cache.glob("windows-*.pt"))) == 4


def test_windows_too_large_for_memory_are_not_cached_and_results_stay_the_same(data, tmp_path, monkeypatch):
    videos, ckpt = data
    expected = extract_features(videos, checkpoints={"mv": ckpt}, device="cpu")["mv"]
    monkeypatch.setattr(features_module, "WINDOW_CACHE_MAX_BYTES", 1)  # every set is "too large"
    cache = tmp_path / "cache"
    got = extract_features(videos, checkpoints={"mv": ckpt}, device="cpu", cache_dir=cache)["mv"]
    _same(got, expected)
    assert not list(cache.glob("windows-*.pt"))  # nothing held or written; the next pass decodes
