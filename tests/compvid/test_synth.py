"""compvid.synth: a motion-labelled dataset in the UCF101 layout, seeded, from real encoders."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import compvid
from cli.compvid_synth import synth
from compvid.errors import InvalidArgumentError
from compvid.layouts import parse_layout
from compvid.shards import write_shards
from compvid.synth import DEFAULT_CLASSES, MOTION_CLASSES, plan_synth, render_frames, scene_colour, write_synth

TRANSLATE = ("MoveRight", "MoveLeft", "MoveUp", "MoveDown")
# Translate classes, 2 groups of 3 clips each (group 1 = test); codecs round-robin, so each
# class has 2 videos per codec (H.264 with B-pyramid .mp4, MPEG-4 Part 2 .avi, HEVC .mp4).
SMALL = dict(classes=TRANSLATE, videos_per_class=6, clips_per_group=3, test_groups=1, num_frames=32, seed=3)


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "set"
    return write_synth(out, **SMALL)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_layout_parses_as_ucf101_and_every_file_probes(small_set, tmp_path):
    out = small_set.out
    parsed = parse_layout(out)  # auto-detection must find UCF101
    assert parsed.layout == "ucf101" and parsed.classes == TRANSLATE
    assert parsed.problems == [] and len(parsed.entries) == len(small_set.videos) == 24
    by_path = {v.path: v for v in small_set.videos}
    for entry in parsed.entries:
        spec = by_path[entry.path]
        assert (entry.class_name, entry.label, entry.split) == (spec.class_name, spec.label, spec.split)
        info = compvid.probe(out / entry.path)
        assert (info.width, info.height, info.num_frames) == (96, 72, 32)
        assert info.codec == {"h264": "h264", "mpeg4": "mpeg4", "hevc": "hevc"}[spec.codec]
    assert {v.codec for v in small_set.videos} == {"h264", "mpeg4", "hevc"}
    assert (out / "classInd.txt").read_text() == "1 MoveRight\n2 MoveLeft\n3 MoveUp\n4 MoveDown\n"
    train_lines = (out / "trainlist01.txt").read_text().splitlines()
    assert train_lines[0] == "MoveRight/v_MoveRight_g02_c01.mp4 1" and len(train_lines) == 12
    assert all(len(line.split()) == 1 for line in (out / "testlist01.txt").read_text().splitlines())
    result = write_shards(out, tmp_path / "shards", workers=0)
    assert (result.layout, result.written, result.skipped) == ("ucf101", 24, 0)


def test_groups_go_wholly_into_one_split(small_set):
    groups = {"train": set(), "test": set()}
    for v in small_set.videos:
        groups[v.split].add((v.class_name, v.group))
        assert f"_g{v.group:02d}_c{v.clip:02d}." in v.path
    assert groups["train"].isdisjoint(groups["test"])
    assert {g for _, g in groups["test"]} == {1} and {g for _, g in groups["train"]} == {2}
    assert (small_set.num_train, small_set.num_test) == (12, 12)


def test_same_seed_same_bytes_and_frames_other_seed_differs(tmp_path):
    opts = dict(classes=("MoveLeft", "ZoomIn"), videos_per_class=3, clips_per_group=1, test_groups=1,
                num_frames=8, width=64, height=48)  # fmt: skip
    a = write_synth(tmp_path / "a", seed=7, **opts)
    b = write_synth(tmp_path / "b", seed=7, workers=2, **opts)  # other processes: same result
    c = write_synth(tmp_path / "c", seed=8, **opts)
    assert a.videos == b.videos and [v.path for v in a.videos] == [v.path for v in c.videos]
    for va in a.videos:
        # Byte-identical files (single-threaded encoders, same FFmpeg build) ...
        assert _sha(a.out / va.path) == _sha(b.out / va.path), va.path
        # ... hence identical decoded frames; another seed gives other frames.
        fa = compvid.decode_clip(a.out / va.path, start=0, num_frames=8, with_mv=False).rgb
        fb = compvid.decode_clip(b.out / va.path, start=0, num_frames=8, with_mv=False).rgb
        fc = compvid.decode_clip(c.out / va.path, start=0, num_frames=8, with_mv=False).rgb
        assert np.array_equal(fa, fb) and not np.array_equal(fa, fc)
    for name in ("classInd.txt", "trainlist01.txt", "testlist01.txt"):
        assert (a.out / name).read_bytes() == (b.out / name).read_bytes()


def test_translate_classes_move_the_expected_way_in_decoded_motion_vectors(small_set):
    """The objects' motion relative to the background, read from decoded MVs, has the class's sign.

    Per frame with vectors: field inside the objects' true boxes minus the background's median
    (which carries the random camera drift). HEVC (whole-pixel estimated vectors on 16-px
    blocks) may miss slow motion; no video points the wrong way (by > 0.05 px/frame), and at
    least 3/4 of the bitstream videos move the right way by > 0.2 px/frame
    (MPEG-4 Part 2 sometimes codes a small object without vectors). Per class, the mean over all
    videos of the *whole-frame* field minus its median (no ground truth used) has the right
    sign and dominates the other axis.
    """
    expected = {"MoveRight": (1, 0), "MoveLeft": (-1, 0), "MoveUp": (0, -1), "MoveDown": (0, 1)}
    whole_frame: dict[str, list[np.ndarray]] = {c: [] for c in TRANSLATE}
    bitstream_along: list[float] = []
    for spec in small_set.videos:
        clip = compvid.decode_clip(small_set.out / spec.path, start=0, num_frames=spec.num_frames, with_rgb=False)
        ys, xs = np.mgrid[0 : spec.height, 0 : spec.width]
        inside, frame_means = [], []
        for t in np.flatnonzero(clip.has_mv):
            field = clip.mv[:, t]  # (2, H, W)
            box = np.zeros(field.shape[1:], bool)
            for o in spec.objects:
                cx, cy = o.centre[0] + o.velocity[0] * t, o.centre[1] + o.velocity[1] * t
                box |= (np.abs(xs - cx) < 0.35 * o.size) & (np.abs(ys - cy) < 0.35 * o.size)
            inside.append(field[:, box].mean(axis=1) - np.median(field[:, ~box], axis=1))
            frame_means.append(field.mean(axis=(1, 2)) - np.median(field.reshape(2, -1), axis=1))
        assert inside, f"{spec.path}: no frame with motion vectors"
        d = np.asarray(expected[spec.class_name])
        along = float(np.mean(inside, axis=0) @ d)
        assert along > -0.05, f"{spec.path} ({spec.codec}, {clip.mv_source}): {along:.3f} px/frame along {d}"
        if clip.mv_source == "bitstream":
            bitstream_along.append(along)
        whole_frame[spec.class_name].append(np.mean(frame_means, axis=0))
    assert len(bitstream_along) == 16
    assert np.mean(np.asarray(bitstream_along) > 0.2) >= 0.75, np.round(bitstream_along, 3)
    for name, means in whole_frame.items():
        m, d = np.mean(means, axis=0), np.asarray(expected[name])
        along, across = float(m @ d), float(abs(m @ d[::-1]))
        assert along > 0.02 and along > 3 * across, f"{name}: mean field {m}"


def _nearest_centroid_accuracy(x_train, y_train, x_test, y_test) -> float:
    mu, sd = x_train.mean(0), x_train.std(0) + 1e-9
    x_train, x_test = (x_train - mu) / sd, (x_test - mu) / sd
    labels = np.unique(y_train)
    centroids = np.stack([x_train[y_train == k].mean(0) for k in labels])
    pred = labels[np.argmin(((x_test[:, None] - centroids[None]) ** 2).sum(-1), axis=1)]
    return float((pred == y_test).mean())


def test_appearance_and_single_frame_geometry_do_not_predict_the_class_motion_does():
    """Nearest-centroid classifiers trained on the train groups, scored on the test groups.

    8 classes, 160 test videos: chance is 12.5 %, and the standard deviation of a chance-level
    accuracy is sqrt(0.125 * 0.875 / 160) = 2.6 points; the tolerance is 3 of them (< 20.5 %).
    Appearance: mean and std of R, G, B of a rendered frame. Single-frame geometry: centre,
    size and angle of the first object at a random frame. Motion (control): relative velocity,
    spin and zoom of that object — must be perfect, proving the classifier works.
    """
    specs = plan_synth(videos_per_class=40, clips_per_group=4, test_groups=5, num_frames=32,
                       width=64, height=48, seed=11)  # fmt: skip
    rng = np.random.default_rng(0)
    appearance, geometry, motion, labels, is_test = [], [], [], [], []
    for spec in specs:
        t = int(rng.integers(spec.num_frames))
        frame = render_frames(spec, [t])[0].reshape(-1, 3).astype(np.float64)
        appearance.append(np.concatenate([frame.mean(0), frame.std(0)]))
        o = spec.objects[0]
        a = math.radians(o.angle + o.spin * t)
        geometry.append([o.centre[0] + o.velocity[0] * t, o.centre[1] + o.velocity[1] * t,
                         o.size * math.exp(o.zoom * t), math.cos(4 * a), math.sin(4 * a)])  # fmt: skip
        motion.append([o.velocity[0] - spec.drift[0], o.velocity[1] - spec.drift[1], o.spin, o.zoom * 100])
        labels.append(spec.label)
        is_test.append(spec.split == "test")
    y, test = np.asarray(labels), np.asarray(is_test)
    assert test.sum() == 160 and len(np.unique(y)) == len(DEFAULT_CLASSES)
    scores = {}
    for name, feats in (("appearance", appearance), ("geometry", geometry), ("motion", motion)):
        x = np.asarray(feats, np.float64)
        scores[name] = _nearest_centroid_accuracy(x[~test], y[~test], x[test], y[test])
    assert scores["appearance"] < 0.205, scores
    assert scores["geometry"] < 0.205, scores
    assert scores["motion"] == 1.0, scores


def test_scene_bias_makes_appearance_a_partial_cue_and_changes_nothing_else():
    """With scene_bias p, a share p of backgrounds take the class's colour; the motion draws stay the
    same, and p = 0 is exactly the motion-only set. End to end: the mean colour of a rendered frame
    (nearest centroid, train groups -> test groups; 8 classes, 80 test videos) predicts the class
    at p = 1 and stays near chance (12.5 %, sd 3.7 points) at p = 0."""
    options = dict(videos_per_class=20, clips_per_group=4, test_groups=2, num_frames=8, width=64, height=48,
                   seed=5)  # fmt: skip
    plain, off = plan_synth(**options), plan_synth(**options, scene_bias=0.0)
    half, full = plan_synth(**options, scene_bias=0.5), plan_synth(**options, scene_bias=1.0)
    assert off == plain
    for biased in (half, full):
        for a, b in zip(plain, biased):
            assert (a.objects, a.drift, a.background_seed, a.path) == (b.objects, b.drift, b.background_seed, b.path)
    coloured = [s.background_colour == scene_colour(s.label, len(DEFAULT_CLASSES)) for s in half]
    assert 0.35 < np.mean(coloured) < 0.65  # 160 videos, p = 0.5: sd 4 points
    assert all(s.background_colour == scene_colour(s.label, len(DEFAULT_CLASSES)) for s in full)
    assert len({scene_colour(c, len(DEFAULT_CLASSES)) for c in range(len(DEFAULT_CLASSES))}) == len(DEFAULT_CLASSES)

    def colour_accuracy(specs):
        x = np.asarray([render_frames(s, [0])[0].reshape(-1, 3).mean(0) for s in specs], np.float64)
        y, test = np.asarray([s.label for s in specs]), np.asarray([s.split == "test" for s in specs])
        return _nearest_centroid_accuracy(x[~test], y[~test], x[test], y[test])

    assert colour_accuracy(full) > 0.9 and colour_accuracy(plain) < 0.25
    for bad in (-0.1, 1.5, True):
        with pytest.raises(InvalidArgumentError, match="scene_bias"):
            plan_synth(**options, scene_bias=bad)


def test_mean_colour_of_the_encoded_videos_is_near_chance(small_set):
    """Same check on the decoded small set (4 classes, 12 test videos: chance 25 %, sd 12.5 points;
    a nearest-centroid on mean colour must stay under 25 + 2 sd = 50 %)."""
    feats, y, test = [], [], []
    for spec in small_set.videos:
        rgb = compvid.decode_clip(small_set.out / spec.path, start=0, num_frames=spec.num_frames, with_mv=False).rgb
        feats.append(rgb.reshape(-1, 3).mean(0))
        y.append(spec.label)
        test.append(spec.split == "test")
    x, y, test = np.asarray(feats, np.float64), np.asarray(y), np.asarray(test)
    assert _nearest_centroid_accuracy(x[~test], y[~test], x[test], y[test]) < 0.5


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (dict(classes=()), "classes: none given"),
        (dict(classes=("MoveRight", "Jump")), "unknown ['Jump']"),
        (dict(classes=("MoveRight", "MoveRight")), "names a class twice"),
        (dict(codecs=("h264", "theora")), "codecs: unknown ['theora']"),
        (dict(codecs=()), "codecs: none given"),
        (dict(width=16, height=16), "width=16: must be an even number of pixels >= 32"),
        (dict(height=71), "height=71"),
        (dict(num_frames=2), "num_frames=2: must be an integer >= 4"),
        (dict(videos_per_class=0), "videos_per_class=0"),
        (dict(videos_per_class=8, clips_per_group=4, test_groups=2), "at least one group must stay for training"),
    ],
)
def test_bad_options_are_refused_with_a_clear_message(options, message):
    with pytest.raises(InvalidArgumentError) as e:
        plan_synth(**options)
    assert message in str(e.value)
    assert isinstance(e.value, ValueError)


def test_output_folder_rules(tmp_path):
    opts = dict(classes=("MoveUp",), videos_per_class=2, clips_per_group=1, test_groups=1, num_frames=4,
                width=32, height=32)  # fmt: skip
    out = tmp_path / "set"
    write_synth(out, **opts)
    with pytest.raises(InvalidArgumentError, match="not empty"):
        write_synth(out, **opts)
    again = write_synth(out, overwrite=True, **dict(opts, classes=("MoveDown",)))
    assert sorted(p.name for p in out.iterdir()) == ["MoveDown", "classInd.txt", "testlist01.txt", "trainlist01.txt"]
    assert len(again.videos) == 2
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(InvalidArgumentError, match="did not write"):
        write_synth(tmp_path / "mine", overwrite=True, **opts)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_motion_classes_registry_is_consistent():
    assert DEFAULT_CLASSES == tuple(MOTION_CLASSES) and len(DEFAULT_CLASSES) == 8
    kinds = {(m.direction, m.spin, m.zoom) for m in MOTION_CLASSES.values()}
    assert len(kinds) == len(MOTION_CLASSES)  # no two classes share a motion


def test_cli_writes_a_set_and_reports_errors(tmp_path):
    runner = CliRunner()
    result = runner.invoke(synth, [str(tmp_path / "s"), "--classes", "MoveLeft,RotateClockwise",
                                   "--videos-per-class", "2", "--clips-per-group", "1", "--test-groups", "1",
                                   "--frames", "6", "--size", "48x32", "--codecs", "h264,mpeg4", "--workers", "0"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "4 videos (2 train, 2 test) of 2 classes, 48x32" in result.output
    # the suggested next step writes the shards where examples/demo.sh does: demo/data -> demo/shards
    assert f"next: compvid shard {tmp_path / 's'} --out {tmp_path / 'shards'}" in result.output
    assert parse_layout(tmp_path / "s").layout == "ucf101"
    bad = runner.invoke(synth, [str(tmp_path / "t"), "--codecs", "h264,theora"])
    assert bad.exit_code == 1 and "error: codecs: unknown ['theora']" in bad.output
    bad = runner.invoke(synth, [str(tmp_path / "t"), "--size", "big"])
    assert bad.exit_code == 2 and "WIDTHxHEIGHT" in bad.output
    # --scene-bias 1: every background has its class's colour (the decoded first frame's mean colour shows it)
    biased = runner.invoke(synth, [str(tmp_path / "b"), "--classes", "MoveLeft,MoveRight", "--videos-per-class", "2",
                                   "--clips-per-group", "1", "--test-groups", "1", "--frames", "4", "--size", "48x32",
                                   "--codecs", "mpeg4", "--workers", "0", "--scene-bias", "1"])  # fmt: skip
    assert biased.exit_code == 0, biased.output
    for label, name in enumerate(("MoveLeft", "MoveRight")):
        means = [compvid.decode_clip(p, start=0, num_frames=1, with_mv=False).rgb.reshape(-1, 3).mean(0)
                 for p in sorted((tmp_path / "b" / name).iterdir())]
        own, other = np.asarray(scene_colour(label, 2)), np.asarray(scene_colour(1 - label, 2))
        assert all(np.abs(m - own).sum() < np.abs(m - other).sum() for m in means)
    bad = runner.invoke(synth, [str(tmp_path / "t"), "--scene-bias", "1.5"])
    assert bad.exit_code == 2 and "1.5" in bad.output
