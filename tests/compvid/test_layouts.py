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


def test_ucf101_missing_list_names_the_file_and_what_it_holds(tmp_path):
    put(tmp_path, "A/v_A_g01_c01.avi")
    (tmp_path / "classInd.txt").write_text("1 A\n")
    (tmp_path / "trainlist01.txt").write_text("A/v_A_g01_c01.avi 1\n")
    with pytest.raises(LayoutError) as missing:
        parse_layout(tmp_path)
    message = str(missing.value)
    assert "needs testlist01.txt (one line per test video: '<ClassName>/<video>'" in message
    assert "trainlist01.txt (" not in message  # present, so not asked for
    # fold 1 is not "present" with half of its lists (the old message said "folds present: [1]")
    assert "folds present: none (a fold needs both lists; unpaired: trainlist01.txt)" in message
    (tmp_path / "classInd.txt").unlink()
    with pytest.raises(LayoutError, match=r"needs classInd\.txt .*'<index> <ClassName>'"):
        parse_layout(tmp_path, layout="ucf101")
    with pytest.raises(LayoutError, match=r"_test_splitN\.txt .*'<video> <1\|2\|0>'"):
        parse_layout(tmp_path, layout="hmdb51")
    with pytest.raises(LayoutError, match=r"youtube_id,time_start,time_end.*<youtube_id>_<time_start:06d>"):
        parse_layout(tmp_path, layout="kinetics")


def ucf_names(classes, groups, clips):
    return [f"{c}/v_{c}_g{g:02d}_c{k:02d}.avi" for c in classes for g in groups for k in range(1, clips + 1)]


def test_test_fraction_puts_whole_groups_in_test_the_first_by_number(tmp_path):
    # group numbers 1..10 in class Run, 3..12 in class Swim: 12 groups shared by name across classes
    put(tmp_path, *ucf_names(["Run"], range(1, 11), 2), *ucf_names(["Swim"], range(3, 13), 3))
    parsed = parse_layout(tmp_path, test_fraction=0.25)
    assert parsed.layout == "generic" and parsed.classes == ("Run", "Swim")
    test_groups = {e.path.split("_g")[1][:2] for e in parsed.entries if e.split == "test"}
    assert test_groups == {"01", "02", "03"}  # round(0.25 * 12) = 3: g01, g02, g03 in every class
    for e in parsed.entries:
        assert e.split == ("test" if e.path.split("_g")[1][:2] in test_groups else "train")
        assert e.label == ("Run", "Swim").index(e.class_name)
    assert {e.split for e in parsed.entries} == {"train", "test"} and len(parsed.entries) == 20 + 30
    assert "groups g01, g02, g03 in test (3 of 12 groups" in parsed.split_rule
    assert parsed.warnings == []
    # UCF101's 25 groups: a fraction of 0.28 gives its official split 1 (groups 1-7 in test)
    ucf = tmp_path / "ucf"
    put(ucf, *ucf_names(["A"], range(1, 26), 1))
    assert sorted(e.path for e in parse_layout(ucf, test_fraction=0.28).entries if e.split == "test") == \
        ucf_names(["A"], range(1, 8), 1)


def test_test_fraction_without_groups_hashes_each_path_and_is_stable(tmp_path):
    put(tmp_path, *(f"{c}/clip{i}.mp4" for c in ("a", "b") for i in range(150)))
    first = {e.path: e.split for e in parse_layout(tmp_path, test_fraction=0.3).entries}
    assert first == {e.path: e.split for e in parse_layout(tmp_path, test_fraction=0.3).entries}
    assert 0.22 < sum(s == "test" for s in first.values()) / len(first) < 0.38
    put(tmp_path, *(f"{c}/new{i}.mp4" for c in ("a", "b", "c") for i in range(40)))
    again = {e.path: e.split for e in parse_layout(tmp_path, test_fraction=0.3).entries}
    assert {p: again[p] for p in first} == first  # adding videos moved none of the others


def test_test_fraction_warns_on_mixed_names_and_classes_left_without_a_split(tmp_path):
    put(tmp_path, "a/v_a_g01_c01.avi", "a/other.avi", "b/only.avi")
    parsed = parse_layout(tmp_path, test_fraction=0.5)
    assert any("1 of 3 file names carry a group" in w for w in parsed.warnings)
    only_split_of_b = next(e.split for e in parsed.entries if e.class_name == "b")
    absent = {"train": "test", "test": "train"}[only_split_of_b]
    assert f"class 'b': no {absent} videos after the split" in parsed.warnings


def test_test_fraction_is_refused_where_the_source_names_its_splits(ucf, tmp_path):
    with pytest.raises(InvalidArgumentError, match="ucf101 layout takes its train/test split from"):
        parse_layout(ucf, test_fraction=0.3)
    bysplit = tmp_path / "bysplit"
    put(bysplit, "train/cat/1.mp4", "test/cat/2.mp4")
    with pytest.raises(LayoutError, match=r"already lie in split folders \(test, train\)"):
        parse_layout(bysplit, test_fraction=0.3)
    listed = tmp_path / "listed"
    put(listed, "v/1.mp4")
    (listed / "videos.csv").write_text("path,label\nv/1.mp4,a\n")
    with pytest.raises(InvalidArgumentError, match="videos.csv lists the videos"):
        parse_layout(listed, test_fraction=0.3)
    for bad in (0, 1, 1.5, "0.3"):
        with pytest.raises(InvalidArgumentError, match="between 0 and 1"):
            parse_layout(listed, layout="generic", test_fraction=bad)
