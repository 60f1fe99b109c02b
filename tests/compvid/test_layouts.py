"""Layout parsers on small trees written in the exact UCF101 / HMDB51 / Kinetics / generic formats.

Layout parsing never opens the videos, so the "videos" here are a few placeholder bytes.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from compvid.errors import InvalidArgumentError, LayoutError
from compvid.layouts import Entry, detect_layout, parse_layout


def put(root: Path, *rels: str) -> None:
    for rel in rels:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"placeholder " + rel.encode())


def by_path(parsed):
    return {e.path: e for e in parsed.entries}, {p.path: p.reason for p in parsed.problems}


@pytest.fixture
def ucf(tmp_path):
    root = tmp_path / "UCF101"
    put(
        root,
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi",
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi",
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g09_c01.avi",  # in no list of fold 1
        "HandstandPushups/v_HandStandPushups_g08_c01.avi",  # the real dataset's case quirk
        "HandstandPushups/v_HandStandPushups_g01_c01.avi",
        "Stray/v_Stray_g01_c01.avi",  # folder that is not a class
    )
    lists = root / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_text("1 ApplyEyeMakeup\r\n2 HandstandPushups\r\n")
    (lists / "trainlist01.txt").write_text(
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\r\n"
        "HandstandPushups/v_HandstandPushups_g08_c01.avi 2\r\n"
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g10_c01.avi 1\r\n"  # missing on disk
        "Juggling/v_Juggling_g08_c01.avi 3\r\n"  # class not in classInd
    )
    (lists / "testlist01.txt").write_text(
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\r\nHandstandPushups/v_HandStandPushups_g01_c01.avi\r\n"
    )
    (lists / "trainlist02.txt").write_text(
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi 1\nApplyEyeMakeup/v_ApplyEyeMakeup_g09_c01.avi 1\n"
    )
    (lists / "testlist02.txt").write_text("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi\n")
    return root


def test_ucf101_fold1_labels_splits_and_problems(ucf):
    parsed = parse_layout(ucf)
    assert parsed.layout == "ucf101" and parsed.fold == 1
    assert parsed.classes == ("ApplyEyeMakeup", "HandstandPushups")
    entries, problems = by_path(parsed)
    assert entries == {
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi": Entry(
            "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", "ApplyEyeMakeup", 0, "train"
        ),
        "HandstandPushups/v_HandStandPushups_g08_c01.avi": Entry(
            "HandstandPushups/v_HandStandPushups_g08_c01.avi", "HandstandPushups", 1, "train"
        ),
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi": Entry(
            "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi", "ApplyEyeMakeup", 0, "test"
        ),
        "HandstandPushups/v_HandStandPushups_g01_c01.avi": Entry(
            "HandstandPushups/v_HandStandPushups_g01_c01.avi", "HandstandPushups", 1, "test"
        ),
    }
    assert problems == {
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g09_c01.avi": "not_in_split",
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g10_c01.avi": "missing_video",
        "Juggling/v_Juggling_g08_c01.avi": "unknown_class",
        "Stray/v_Stray_g01_c01.avi": "unknown_class",
    }
    # the annotation files are not inputs; every file plus each dangling line is
    assert len(parsed.annotation_files) == 5
    assert parsed.num_inputs == 6 + 2


def test_ucf101_fold2_and_missing_fold(ucf):
    parsed = parse_layout(ucf, layout="ucf101", split=2)
    entries, problems = by_path(parsed)
    assert {p: e.split for p, e in entries.items()} == {
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi": "train",
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g09_c01.avi": "train",
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi": "test",
    }
    assert problems["HandstandPushups/v_HandStandPushups_g08_c01.avi"] == "not_in_split"
    with pytest.raises(LayoutError, match=r"split 3.*folds present: \[1, 2\]"):
        parse_layout(ucf, split=3)


def test_hmdb51_ids_1_train_2_test_0_unused(tmp_path):
    root = tmp_path / "hmdb51"
    put(
        root,
        "brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0.avi",
        "brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_1.avi",
        "brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_2.avi",
        "cartwheel/Acrobacias_de_un_fenomeno_cartwheel_f_cm_np1_ba_bad_8.avi",
        "cartwheel/unlisted.avi",
        "dance/x.avi",  # no split file for this folder
    )
    splits = root / "testTrainMulti_7030_splits"
    splits.mkdir()
    # the real files end every line with a space
    (splits / "brush_hair_test_split1.txt").write_text(
        "April_09_brush_hair_u_nm_np1_ba_goo_0.avi 1 \n"
        "April_09_brush_hair_u_nm_np1_ba_goo_1.avi 2 \n"
        "April_09_brush_hair_u_nm_np1_ba_goo_2.avi 0 \n"
        "gone.avi 2 \n"
    )
    (splits / "cartwheel_test_split1.txt").write_text("Acrobacias_de_un_fenomeno_cartwheel_f_cm_np1_ba_bad_8.avi 2 \n")
    (splits / "brush_hair_test_split2.txt").write_text("April_09_brush_hair_u_nm_np1_ba_goo_2.avi 1 \n")
    (splits / "cartwheel_test_split2.txt").write_text("")
    parsed = parse_layout(root)
    assert parsed.layout == "hmdb51" and parsed.classes == ("brush_hair", "cartwheel")
    entries, problems = by_path(parsed)
    assert {p: (e.class_name, e.label, e.split) for p, e in entries.items()} == {
        "brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0.avi": ("brush_hair", 0, "train"),
        "brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_1.avi": ("brush_hair", 0, "test"),
        "cartwheel/Acrobacias_de_un_fenomeno_cartwheel_f_cm_np1_ba_bad_8.avi": ("cartwheel", 1, "test"),
    }
    assert problems == {
        "brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_2.avi": "unused_in_split",
        "brush_hair/gone.avi": "missing_video",
        "cartwheel/unlisted.avi": "not_in_split",
        "dance/x.avi": "unknown_class",
    }
    assert parsed.num_inputs == 6 + 1
    fold2 = parse_layout(root, split=2)
    assert [e.path for e in fold2.entries] == ["brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_2.avi"]


def test_kinetics_csv_rows_to_files(tmp_path):
    root = tmp_path / "k400"
    put(
        root,
        "train/abseiling/--07WQ2iBlw_000001_000011.mp4",
        "train/air drumming/a_b-c_000030_000040.mp4",  # ids hold '_' and '-'
        "val/abseiling/zzz_000005_000015.webm",
        "train/abseiling/unlisted_000000_000010.mp4",
    )
    (root / "train.csv").write_text(
        "label,youtube_id,time_start,time_end,split\n"
        "abseiling,--07WQ2iBlw,1,11,train\n"
        '"air drumming",a_b-c,30,40,train\n'
        "zumba,missing1,0,10,train\n"
    )
    (root / "validate.csv").write_text("label,youtube_id,time_start,time_end,split\nabseiling,zzz,5,15,val\n")
    parsed = parse_layout(root)
    assert parsed.layout == "kinetics"
    assert parsed.classes == ("abseiling", "air drumming", "zumba")
    entries, problems = by_path(parsed)
    assert {p: (e.class_name, e.label, e.split) for p, e in entries.items()} == {
        "train/abseiling/--07WQ2iBlw_000001_000011.mp4": ("abseiling", 0, "train"),
        "train/air drumming/a_b-c_000030_000040.mp4": ("air drumming", 1, "train"),
        "val/abseiling/zzz_000005_000015.webm": ("abseiling", 0, "val"),
    }
    assert problems == {
        "missing1_000000_000010": "missing_video",
        "train/abseiling/unlisted_000000_000010.mp4": "not_in_annotations",
    }
    with pytest.raises(InvalidArgumentError, match="folds exist in the ucf101 and hmdb51"):
        parse_layout(root, split=1)


def test_generic_class_folders_split_folders_and_csv_list(tmp_path):
    flat = tmp_path / "flat"
    put(flat, "b/1.mp4", "a/2.avi", "a/deep/3.mkv", "loose.mp4", "a/readme.txt")
    parsed = parse_layout(flat)
    assert parsed.layout == "generic" and parsed.classes == ("a", "b")
    entries, problems = by_path(parsed)
    assert {p: (e.label, e.split) for p, e in entries.items()} == {
        "a/2.avi": (0, "all"), "a/deep/3.mkv": (0, "all"), "b/1.mp4": (1, "all")
    }
    assert problems == {"loose.mp4": "unknown_class", "a/readme.txt": "not_video"}

    split = tmp_path / "bysplit"
    put(split, "train/cat/1.mp4", "train/dog/2.mp4", "val/cat/3.mp4")
    assert {(e.path, e.class_name, e.split) for e in parse_layout(split).entries} == {
        ("train/cat/1.mp4", "cat", "train"), ("train/dog/2.mp4", "dog", "train"), ("val/cat/3.mp4", "cat", "val")
    }

    listed = tmp_path / "listed"
    put(listed, "v/1.mp4", "v/2.mp4", "v/3.mp4")
    (listed / "videos.csv").write_text("path,label,split\nv/1.mp4,10,train\n./v/2.mp4,2,test\nv/9.mp4,2,test\n")
    parsed = parse_layout(listed)  # a root CSV with a path,label header is picked up
    entries, problems = by_path(parsed)
    assert parsed.classes == ("2", "10")  # integer names sort as numbers
    assert {p: (e.label, e.split) for p, e in entries.items()} == {"v/1.mp4": (1, "train"), "v/2.mp4": (0, "test")}
    assert problems == {"v/3.mp4": "not_in_annotations", "v/9.mp4": "missing_video"}
    assert parsed.annotation_files == ("videos.csv",)


def test_detection_is_refused_when_ambiguous_and_forcing_checks_the_tree(tmp_path):
    put(tmp_path, "a/1.avi")
    (tmp_path / "classInd.txt").write_text("1 a\n")
    (tmp_path / "a_test_split1.txt").write_text("1.avi 1\n")
    with pytest.raises(LayoutError, match="several layouts"):
        detect_layout(tmp_path)
    assert parse_layout(tmp_path, layout="hmdb51").entries[0].split == "train"
    other = tmp_path / "plain"
    put(other, "a/1.avi")
    with pytest.raises(LayoutError, match="classInd.txt"):
        parse_layout(other, layout="ucf101")
    with pytest.raises(InvalidArgumentError, match="allowed values"):
        parse_layout(other, layout="ucf")  # type: ignore[arg-type]


def test_scan_reports_links_and_names_it_cannot_carry(tmp_path):
    root = tmp_path / "src"
    put(root, "a/ok.mp4")
    os.symlink("loop.mp4", root / "a" / "loop.mp4")  # a link to itself: ELOOP
    os.symlink("nowhere.mp4", root / "a" / "broken.mp4")
    os.symlink("..", root / "a" / "up")  # a folder link back into the tree
    (root / "a" / os.fsdecode(b"caf\xe9.mp4")).write_bytes(b"latin-1 name")
    entries, problems = by_path(parse_layout(root))
    assert list(entries) == ["a/ok.mp4"]
    assert problems == {
        "a/loop.mp4": "symlink_loop",
        "a/broken.mp4": "broken_symlink",
        "a/up": "symlink_loop",
        "a/caf\\xe9.mp4": "non_utf8_name",
    }
