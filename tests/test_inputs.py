from __future__ import annotations

import io
import os
import socket

import pytest
from PIL import Image

from fakescope_cli.inputs import InputExpander, normalise_exts, read_stdin_paths


def _png(path, size=(8, 8)):
    Image.new("RGB", size, (10, 20, 30)).save(path, format="PNG")


@pytest.fixture()
def tree(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "a").mkdir()
    _png(tmp_path / "b" / "z.png")
    _png(tmp_path / "a" / "y.png")
    _png(tmp_path / "a" / "renamed.dat")  # image bytes, no image name: still analysed
    (tmp_path / "a" / "notes.txt").write_text("hello")  # plainly not an image: skipped
    (tmp_path / "a" / "broken.jpg").write_bytes(b"not a jpeg at all")  # claims image by name
    (tmp_path / "a" / "deep").mkdir()
    _png(tmp_path / "a" / "deep" / "x.png")
    return tmp_path


def _paths(cands, root):
    return [os.path.relpath(c.path, root) for c in cands]


def test_folder_walk_is_sorted_recursive_and_skips_plain_non_images(tree):
    exp = InputExpander()
    got = _paths(exp.expand([str(tree)]), tree)
    assert got == ["a/broken.jpg", "a/deep/x.png", "a/renamed.dat", "a/y.png", "b/z.png"]
    assert exp.stats.skipped == 1


def test_no_recursive_stays_in_top_folder(tree):
    exp = InputExpander(recursive=False)
    assert _paths(exp.expand([str(tree / "a")]), tree) == ["a/broken.jpg", "a/renamed.dat", "a/y.png"]


def test_ext_filter_applies_to_folder_contents_only(tree):
    exp = InputExpander(exts=normalise_exts(["png"]))
    got = _paths(exp.expand([str(tree), str(tree / "a" / "notes.txt")]), tree)
    assert got == ["a/deep/x.png", "a/y.png", "b/z.png", "a/notes.txt"]
    assert exp.stats.skipped_by_ext == 3  # broken.jpg, renamed.dat, notes.txt


def test_explicit_non_image_is_kept_for_an_error_record(tree):
    cands = list(InputExpander().expand([str(tree / "a" / "notes.txt")]))
    assert len(cands) == 1 and cands[0].explicit and cands[0].problem is None


def test_glob_and_missing_paths(tree):
    exp = InputExpander()
    cands = list(exp.expand([str(tree / "*" / "*.png"), str(tree / "nope.jpg"), str(tree / "*.gif")]))
    assert _paths(cands[:2], tree) == ["a/y.png", "b/z.png"]
    assert cands[2].problem[0] == "not-found"
    assert cands[3].problem[0] == "not-found"


def test_duplicates_are_scanned_once(tree):
    p = str(tree / "a" / "y.png")
    assert len(list(InputExpander().expand([p, p, str(tree / "a" / "." / "y.png")]))) == 1
    # a relative and an absolute spelling of one file, as an investigator pastes them
    rel = os.path.relpath(p)
    assert [c.path for c in InputExpander().expand([rel, p])] == [rel]


def test_special_files_never_opened(tree):
    fifo = tree / "a" / "pipe.jpg"
    os.mkfifo(fifo)
    os.mkfifo(tree / "a" / "plainpipe")
    sock_path = tree / "a" / "s.sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sock_path))
    try:
        exp = InputExpander()
        cands = {os.path.basename(c.path): c for c in exp.expand([str(tree / "a")])}
        assert cands["pipe.jpg"].problem[0] == "not-a-regular-file"
        assert "plainpipe" not in cands and "s.sock" not in cands
        assert exp.stats.skipped_special == 2
        explicit = list(InputExpander().expand([str(tree / "a" / "plainpipe")]))
        assert explicit[0].problem[0] == "not-a-regular-file"
    finally:
        sock.close()


def test_symlinks_dangling_loops_and_dirs(tree):
    os.symlink(tree / "missing.png", tree / "a" / "dangling.png")
    os.symlink(tree / "a", tree / "b" / "link_to_a")  # folder link: not followed by default
    os.symlink(tree / "b" / "self1.jpg", tree / "b" / "self2.jpg")
    os.symlink(tree / "b" / "self2.jpg", tree / "b" / "self1.jpg")
    # broken links that no one would take for an image (a stale build link, a README link): skipped
    os.symlink(tree / "nowhere", tree / "a" / "build")
    os.symlink(tree / "b" / "loop_b", tree / "b" / "loop_a")
    os.symlink(tree / "b" / "loop_a", tree / "b" / "loop_b")
    expander = InputExpander()
    cands = {os.path.relpath(c.path, tree): c for c in expander.expand([str(tree)])}
    assert cands["a/dangling.png"].problem[0] == "dangling-symlink"
    assert cands["b/self1.jpg"].problem[0] == "symlink-loop"
    assert not {"a/build", "b/loop_a", "b/loop_b"} & set(cands)
    plain = {os.path.relpath(c.path, tree) for c in InputExpander().expand([str(tree / "a")])}
    assert expander.stats.skipped >= 3 and "a/build" not in plain
    named = list(InputExpander().expand([str(tree / "a" / "build")]))  # named by the user: reported
    assert named[0].problem[0] == "dangling-symlink"
    assert not any(k.startswith("b/link_to_a/") for k in cands)
    followed = {os.path.relpath(c.path, tree) for c in InputExpander(follow_symlinks=True).expand([str(tree)])}
    assert "b/link_to_a/y.png" in followed


def test_folder_link_loop_is_reported_not_followed_forever(tree):
    os.symlink(tree, tree / "a" / "up")
    cands = list(InputExpander(follow_symlinks=True).expand([str(tree)]))
    loops = [c for c in cands if c.problem and c.problem[0] == "symlink-loop"]
    assert loops and len(cands) < 50


def test_stdin_lists_newline_and_nul():
    assert read_stdin_paths(io.BytesIO(b"a.jpg\nb c.png\r\n\n")) == ["a.jpg", "b c.png"]
    assert read_stdin_paths(io.BytesIO(b"x\ny.png\0z.png\0"), null_separated=True) == ["x\ny.png", "z.png"]


def test_non_utf8_and_newline_names(tmp_path):
    weird = os.fsencode(tmp_path) + b"/caf\xe9\nname.png"
    _png(os.fsdecode(weird))
    cands = list(InputExpander().expand([str(tmp_path)]))
    assert len(cands) == 1 and os.fsencode(cands[0].path) == weird
