"""The snapshot stage: history, a faithful private copy, and no trust in the workspace."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import git
import pytest

from grader.snapshot import Snapshot, SnapshotError, SnapshotLimits, take_snapshot

SECRET = "TOP-SECRET-interviewer-token-8f3a"


@pytest.fixture(autouse=True)
def isolated_git(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The test repos must not depend on the machine's git config (signing, hooks...)."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def identity(when: str) -> dict[str, str]:
    return {
        "GIT_AUTHOR_NAME": "Cand Idate",
        "GIT_AUTHOR_EMAIL": "c@example.com",
        "GIT_COMMITTER_NAME": "Cand Idate",
        "GIT_COMMITTER_EMAIL": "c@example.com",
        "GIT_AUTHOR_DATE": when,
        "GIT_COMMITTER_DATE": when,
    }


def commit_all(repo: git.Repo, message: str, when: str) -> str:
    repo.git.add("--all")
    repo.git.commit("-m", message, env=identity(when))
    return repo.head.commit.hexsha


def make_repo(ws: Path) -> tuple[git.Repo, list[str]]:
    """Three commits: add, modify + add, delete (with a multi-line message)."""
    repo = git.Repo.init(ws, initial_branch="main")
    write(ws / "README.md", "# exercise\n")
    write(ws / "models" / "stg_orders.sql", "select 1 as id\n")
    write(ws / ".gitignore", "ignored.txt\n")
    shas = [commit_all(repo, "starter project", "2024-03-01T09:00:00+02:00")]
    write(ws / "models" / "stg_orders.sql", "select 2 as id\n")
    write(ws / "models" / "marts" / "fct_orders.sql", "select * from {{ ref('stg_orders') }}\n")
    shas.append(commit_all(repo, "add fct_orders", "2024-03-01T10:30:00+02:00"))
    (ws / "README.md").unlink()
    shas.append(commit_all(repo, "drop readme\n\nNot needed.\n", "2024-03-01T11:00:00+02:00"))
    return repo, shas


def copied_bytes(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


def listing(top: Path) -> dict[str, tuple[int, int, int]]:
    """Every path under top (without following links) with type, size and mtime."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        for name in dirnames + filenames + ["."]:
            st = os.lstat(os.path.join(dirpath, name))
            out[os.path.join(dirpath, name)] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


def kinds(snap: Snapshot) -> dict[str, str]:
    return {f["path"]: f["kind"] for f in snap.findings}


def test_git_repo_history_branch_and_clean_state(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    _, shas = make_repo(ws)
    write(ws / "ignored.txt", "scratch\n")  # ignored by .gitignore: not dirty

    snap = take_snapshot(ws, tmp_path / "work")

    assert snap.commit == shas[-1]
    assert snap.branch == "main"
    assert snap.dirty is False
    assert [c.sha for c in snap.commits] == shas
    first, second, third = snap.commits
    assert first.files == [".gitignore", "README.md", "models/stg_orders.sql"]
    assert second.files == ["models/marts/fct_orders.sql", "models/stg_orders.sql"]
    assert third.files == ["README.md"]
    assert first.author_time == "2024-03-01T07:00:00Z"
    assert first.author == "Cand Idate"
    assert third.message == "drop readme\n\nNot needed."
    assert snap.root == (tmp_path / "work" / "workspace").resolve()
    assert not (snap.root / ".git").exists()
    assert (snap.root / "models" / "stg_orders.sql").read_text() == "select 2 as id\n"
    assert snap.findings == []
    json.dumps(snap.to_json())


def test_uncommitted_and_untracked_changes_are_dirty_and_copied(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    make_repo(ws)
    write(ws / "models" / "stg_orders.sql", "select 3 as id -- work in progress\n")

    snap = take_snapshot(ws, tmp_path / "w1")
    assert snap.dirty is True
    assert (snap.root / "models" / "stg_orders.sql").read_text() == "select 3 as id -- work in progress\n"

    git.Repo(ws).git.checkout("--", ".")
    write(ws / "notes.md", "todo\n")
    assert take_snapshot(ws, tmp_path / "w2").dirty is True


def test_detached_head_unborn_branch_and_history_cap(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    repo, shas = make_repo(ws)
    capped = take_snapshot(ws, tmp_path / "w0", limits=SnapshotLimits(max_commits=2))
    assert [c.sha for c in capped.commits] == shas[1:]
    assert kinds(capped) == {".git": "history_truncated"}

    repo.git.checkout(shas[0])
    detached = take_snapshot(ws, tmp_path / "w1")
    assert (detached.branch, detached.commit, len(detached.commits)) == (None, shas[0], 1)

    fresh = tmp_path / "fresh"
    git.Repo.init(fresh, initial_branch="trunk")
    write(fresh / "a.sql", "select 1\n")
    unborn = take_snapshot(fresh, tmp_path / "w2")
    assert (unborn.commit, unborn.branch, unborn.dirty, unborn.commits) == (None, "trunk", True, [])
    assert unborn.findings == []


def test_merge_commit_lists_files_against_first_parent(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    repo, _ = make_repo(ws)
    repo.git.checkout("-b", "feature")
    write(ws / "models" / "dim_users.sql", "select 1\n")
    commit_all(repo, "dim users", "2024-03-02T10:00:00Z")
    repo.git.checkout("main")
    write(ws / "seeds" / "x.csv", "a\n1\n")
    commit_all(repo, "seed", "2024-03-02T11:00:00Z")
    repo.git.merge("feature", "--no-ff", "-m", "merge feature", env=identity("2024-03-02T12:00:00Z"))

    snap = take_snapshot(ws, tmp_path / "work")
    assert snap.commits[-1].message == "merge feature"
    assert snap.commits[-1].files == ["models/dim_users.sql"]
    assert len(snap.commits) == 6


def test_plain_folder(tmp_path: Path) -> None:
    ws = tmp_path / "plain"
    write(ws / "models" / "a.sql", "select 1\n")
    snap = take_snapshot(ws, tmp_path / "work")
    assert (snap.commit, snap.branch, snap.dirty, snap.commits) == (None, None, False, [])
    assert (snap.files, snap.bytes) == (1, len("select 1\n"))
    assert (snap.root / "models" / "a.sql").read_text() == "select 1\n"
    assert snap.source == str(ws.resolve())


def test_missing_path_file_path_and_work_dir_inside_workspace(tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match="does not exist"):
        take_snapshot(tmp_path / "nope", tmp_path / "work")
    file_path = write(tmp_path / "file.txt", "x")
    with pytest.raises(SnapshotError, match="not a directory"):
        take_snapshot(file_path, tmp_path / "work")
    ws = tmp_path / "ws"
    ws.mkdir()
    with pytest.raises(SnapshotError, match="outside the workspace"):
        take_snapshot(ws, ws / "grading")
    assert issubclass(SnapshotError, ValueError)


def test_symlinks_out_of_the_workspace_are_never_read(tmp_path: Path) -> None:
    outside = tmp_path / "interviewer"
    write(outside / "token.txt", SECRET)
    write(outside / "dir" / "creds.env", f"KEY={SECRET}\n")
    ws = tmp_path / "ws"
    make_repo(ws)
    (ws / "data.csv").symlink_to(outside / "token.txt")
    (ws / "rel.csv").symlink_to("../interviewer/token.txt")
    (ws / "models" / "vendor").symlink_to(outside / "dir", target_is_directory=True)
    (ws / "chain.csv").symlink_to("data.csv")  # inside link -> link -> outside

    snap = take_snapshot(ws, tmp_path / "work")

    assert SECRET.encode() not in copied_bytes(snap.root)
    assert SECRET not in json.dumps(snap.to_json())
    assert kinds(snap) == {
        "data.csv": "symlink_outside",
        "rel.csv": "symlink_outside",
        "chain.csv": "symlink_outside",
        "models/vendor": "symlink_outside",
    }
    assert not any(p.is_symlink() for p in snap.root.rglob("*"))
    assert snap.dirty is True  # the links are untracked files


def test_symlinks_inside_are_materialised_and_loops_terminate(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    write(ws / "shared" / "macro.sql", "{% macro m() %}1{% endmacro %}\n")
    (ws / "alias.sql").symlink_to("shared/macro.sql")
    (ws / "models").mkdir()
    (ws / "models" / "shared").symlink_to("../shared", target_is_directory=True)
    (ws / "models" / "again").symlink_to("../shared", target_is_directory=True)
    (ws / "shared" / "up").symlink_to("..", target_is_directory=True)  # loop to the root
    (ws / "self").symlink_to(".", target_is_directory=True)
    (ws / "ping").symlink_to("pong")
    (ws / "pong").symlink_to("ping")
    (ws / "gone").symlink_to("missing.sql")

    result: list[Snapshot] = []
    worker = threading.Thread(target=lambda: result.append(take_snapshot(ws, tmp_path / "work")), daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive(), "snapshot hangs on a symlink loop"
    snap = result[0]

    assert (snap.root / "alias.sql").read_text() == (ws / "shared" / "macro.sql").read_text()
    assert not (snap.root / "alias.sql").is_symlink()
    assert (snap.root / "models" / "again" / "macro.sql").is_file()  # the first link in name order
    assert kinds(snap) == {
        "models/shared": "symlink_duplicate",
        "self": "symlink_loop",
        "shared/up": "symlink_loop",
        "models/again/up": "symlink_loop",
        "ping": "symlink_dangling",
        "pong": "symlink_dangling",
        "gone": "symlink_dangling",
    }


def test_large_files_are_skipped_but_hashed_by_size(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    write(ws / "model.sql", "select 1\n")
    with open(ws / "dump.parquet", "wb") as f:
        f.truncate(25 * 1024 * 1024)

    snap = take_snapshot(ws, tmp_path / "w1")
    assert not (snap.root / "dump.parquet").exists()
    assert kinds(snap) == {"dump.parquet": "file_too_large"}
    assert (snap.files, snap.bytes) == (1, len("select 1\n"))

    with open(ws / "dump.parquet", "ab") as f:
        f.write(b"x")
    assert take_snapshot(ws, tmp_path / "w2").tree_sha256 != snap.tree_sha256


def test_binary_file_is_copied_byte_for_byte(tmp_path: Path) -> None:
    payload = bytes(range(256)) + b"\xff\xfe\xc3\x28 not utf-8 \x00\x80"
    ws = tmp_path / "ws"
    write(ws / "seeds" / "blob.bin", payload)
    snap = take_snapshot(ws, tmp_path / "work")
    assert (snap.root / "seeds" / "blob.bin").read_bytes() == payload


def test_undecodable_file_name_is_reported_as_valid_text(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    os.mkfifo(ws / os.fsdecode(b"pipe-\xff"))
    snap = take_snapshot(ws, tmp_path / "work")
    assert [(f["kind"], f["path"]) for f in snap.findings] == [("special_file", "pipe-\ufffd")]
    json.dumps(snap.to_json(), ensure_ascii=False).encode("utf-8")


def test_tree_hash_depends_on_content_only(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "elsewhere" / "b"
    for ws in (a, b):
        write(ws / "models" / "x.sql", "select 1\n")
        write(ws / "seeds" / "y.csv", "id\n1\n")
    os.utime(b / "models" / "x.sql", (0, 0))
    git.Repo.init(b)  # a .git folder does not change the hash either

    hash_a = take_snapshot(a, tmp_path / "wa").tree_sha256
    assert take_snapshot(b, tmp_path / "wb").tree_sha256 == hash_a
    write(b / "seeds" / "y.csv", "id\n2\n")
    assert take_snapshot(b, tmp_path / "wc").tree_sha256 != hash_a


def test_junk_dirs_are_skipped_and_dbt_packages_kept(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    project = ws / "analytics"
    write(project / "dbt_project.yml", "name: analytics\n")
    write(project / "target" / "manifest.json", "{}")
    write(project / "logs" / "dbt.log", "log\n")
    write(project / "dbt_packages" / "dbt_utils" / "macros" / "m.sql", "-- macro\n")
    write(project / "dbt_packages" / "dbt_utils" / ".git" / "HEAD", "ref: refs/heads/main\n")
    write(ws / "scripts" / "logs" / "keep.py", "print('mine')\n")  # not next to dbt_project.yml
    write(ws / ".venv" / "bin" / "python", "")
    write(ws / "node_modules" / "x" / "index.js", "")
    write(ws / "scripts" / "__pycache__" / "a.pyc", "")
    write(ws / ".pytest_cache" / "v", "")

    snap = take_snapshot(ws, tmp_path / "work")

    assert (snap.root / "analytics" / "dbt_packages" / "dbt_utils" / "macros" / "m.sql").is_file()
    assert (snap.root / "scripts" / "logs" / "keep.py").is_file()
    skipped = ("analytics/target", "analytics/logs", ".venv", "node_modules", "scripts/__pycache__", ".pytest_cache")
    for gone in skipped:
        assert not (snap.root / gone).exists(), gone
    assert not (snap.root / "analytics" / "dbt_packages" / "dbt_utils" / ".git").exists()
    assert snap.skipped_dirs == {
        "target": 1, "logs": 1, ".git": 1, ".venv": 1, "node_modules": 1, "__pycache__": 1, ".pytest_cache": 1,
    }


def test_original_is_never_modified_and_output_is_deterministic(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    make_repo(ws)
    write(ws / "models" / "stg_orders.sql", "select 42 as id\n")  # stale index stat info
    write(ws / "untracked.sql", "select 0\n")
    (ws / "link.sql").symlink_to("untracked.sql")
    os.mkfifo(ws / "fifo")
    before = listing(ws)

    first = take_snapshot(ws, tmp_path / "w1")
    second = take_snapshot(ws, tmp_path / "w2")

    assert listing(ws) == before
    assert first.root != second.root
    assert first.to_json() == second.to_json()
    assert "root" not in first.to_json()


def test_hostile_git_config_is_not_honoured(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    repo, shas = make_repo(ws)
    marker = tmp_path / "PWNED"
    with repo.config_writer() as cfg:
        cfg.set_value("core", "fsmonitor", f"touch {marker}; false")
        cfg.set_value('filter "evil"', "clean", f"touch {marker}; cat")
        cfg.set_value("include", "path", str(tmp_path / "interviewer.gitconfig"))
        cfg.set_value("core", "worktree", str(tmp_path))
    write(tmp_path / "interviewer.gitconfig", f"[user]\n\tname = {SECRET}\n")
    write(ws / ".gitattributes", "*.sql filter=evil\n")
    write(ws / "models" / "stg_orders.sql", "select 9 as id\n")

    snap = take_snapshot(ws, tmp_path / "work")

    assert not marker.exists()
    assert (snap.commit, snap.dirty, [c.sha for c in snap.commits]) == (shas[-1], True, shas)
    assert SECRET not in json.dumps(snap.to_json())


def test_git_dir_reaching_outside_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    git.Repo.init(elsewhere)
    ws = tmp_path / "ws"
    make_repo(ws)
    write(ws / ".git" / "objects" / "info" / "alternates", f"{elsewhere / '.git' / 'objects'}\n")
    snap = take_snapshot(ws, tmp_path / "w1")
    assert (snap.commit, snap.commits, snap.findings[0]["kind"]) == (None, [], "git_unsafe")

    ws2 = tmp_path / "ws2"
    make_repo(ws2)
    write(tmp_path / "outside-ref", SECRET + "\n")
    (ws2 / ".git" / "refs" / "heads" / "evil").symlink_to(tmp_path / "outside-ref")
    snap = take_snapshot(ws2, tmp_path / "w2")
    assert (snap.commit, snap.findings[0]["kind"]) == (None, "git_unsafe")
    assert SECRET not in json.dumps(snap.to_json())
    assert (snap.root / "models" / "stg_orders.sql").is_file()


@pytest.mark.parametrize("damage", ["garbage_head", "missing_objects", "empty_git_dir"])
def test_corrupt_git_dir_is_a_plain_folder_with_a_finding(tmp_path: Path, damage: str) -> None:
    ws = tmp_path / "ws"
    make_repo(ws)
    dot_git = ws / ".git"
    if damage == "garbage_head":
        write(dot_git / "HEAD", "\x00\x01 not a ref\n")
    elif damage == "missing_objects":
        for path in (dot_git / "objects").rglob("*"):
            if path.is_file():
                path.unlink()
    else:
        for path in sorted(dot_git.rglob("*"), reverse=True):
            path.rmdir() if path.is_dir() else path.unlink()

    snap = take_snapshot(ws, tmp_path / "work")

    assert (snap.commit, snap.branch, snap.dirty, snap.commits) == (None, None, False, [])
    assert [f["kind"] for f in snap.findings] == ["git_unreadable"]
    assert str(tmp_path) not in snap.findings[0]["detail"]
    assert (snap.root / "models" / "stg_orders.sql").is_file()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to hand the repo to another uid")
def test_repo_owned_by_another_user_is_read(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    _, shas = make_repo(ws)
    for dirpath, dirnames, filenames in os.walk(ws):
        for name in [".", *dirnames, *filenames]:
            os.lchown(os.path.join(dirpath, name), 4242, 4242)
    with pytest.raises(git.GitCommandError, match="dubious ownership"):
        git.Repo(ws).git.status()  # what a naive read would run into

    snap = take_snapshot(ws, tmp_path / "work")
    assert (snap.commit, snap.branch, snap.dirty) == (shas[-1], "main", False)
    assert snap.findings == []


# --------------------------------------------------------------------------- bounds


def test_each_inode_is_copied_once_through_symlinks_and_hard_links(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    payload = os.urandom(1024 * 1024)
    write(ws / "seeds" / "big.csv", payload)
    for i in range(100):
        (ws / f"link{i:03}.csv").symlink_to("seeds/big.csv")
    for i in range(5):
        os.link(ws / "seeds" / "big.csv", ws / f"hard{i}.csv")

    snap = take_snapshot(ws, tmp_path / "work")

    assert (snap.files, snap.bytes) == (106, len(payload))
    copies = [snap.root / "seeds" / "big.csv", snap.root / "link099.csv", snap.root / "hard4.csv"]
    assert all(p.read_bytes() == payload and not p.is_symlink() for p in copies)
    assert len({os.stat(p).st_ino for p in snap.root.rglob("*.csv")}) == 1  # one file on disk
    assert snap.findings == [] and snap.left_out == {}
    # the hash still sees every path: dropping one link changes it
    (ws / "link050.csv").unlink()
    assert take_snapshot(ws, tmp_path / "w2").tree_sha256 != snap.tree_sha256


def test_file_count_and_total_byte_limits_leave_out_the_rest_and_say_so(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    for i in range(10):
        write(ws / "models" / f"m{i}.sql", "x" * 1000)

    by_count = take_snapshot(ws, tmp_path / "w1", limits=SnapshotLimits(max_files=4))
    assert sorted(p.name for p in (by_count.root / "models").iterdir()) == ["m0.sql", "m1.sql", "m2.sql", "m3.sql"]
    assert by_count.left_out == {"files": 6, "bytes": 6000}
    assert [(f["kind"], f["path"]) for f in by_count.findings] == [("limit_files", "models/m4.sql")]
    assert "(6 left out, 6000 bytes; the first here)" in by_count.findings[0]["detail"]

    by_bytes = take_snapshot(ws, tmp_path / "w2", limits=SnapshotLimits(max_total_bytes=2500))
    assert (by_bytes.files, by_bytes.bytes) == (2, 2000)
    assert by_bytes.left_out == {"files": 8, "bytes": 8000}
    assert kinds(by_bytes) == {"models/m2.sql": "limit_total_bytes"}
    assert by_bytes.to_json()["left_out"] == {"bytes": 8000, "files": 8}


def make_deep(top: Path, levels: int) -> str:
    """`levels` nested folders `d` under top, made one by one (os.makedirs and pathlib recurse)."""
    path = str(top)
    for _ in range(levels):
        path += "/d"
        os.mkdir(path)
    return path


def remove_deep(top: Path, levels: int) -> None:
    """Undo make_deep bottom-up, so pytest's recursive cleanup never meets the nesting."""
    path = str(top) + "/d" * levels
    for name in os.listdir(path):
        os.unlink(os.path.join(path, name))
    for _ in range(levels):
        os.rmdir(path)
        path = os.path.dirname(path)


def test_deep_nesting_is_cut_at_the_depth_limit(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    write(ws / "models" / "top.sql", "select 2\n")
    bottom = make_deep(ws / "models", 1200)  # what crashed a check before the limits
    with open(bottom + "/bottom.sql", "w") as handle:
        handle.write("select 1\n")
    try:
        snap = take_snapshot(ws, tmp_path / "work")
    finally:
        remove_deep(ws / "models", 1200)

    assert (snap.root / "models" / "top.sql").is_file()
    depth = max(len(Path(dirpath).relative_to(snap.root).parts) for dirpath, _, _ in os.walk(snap.root))
    assert depth == 64
    assert kinds(snap) == {"models/" + "/".join(["d"] * 64): "limit_depth"}
    assert snap.left_out == {"folders": 1}


def test_findings_are_capped_and_the_rest_counted(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    for i in range(230):
        os.mkfifo(ws / f"pipe{i:03}")
        (ws / f"out{i:03}").symlink_to("/etc/hostname")

    snap = take_snapshot(ws, tmp_path / "work")

    assert len(snap.findings) == 200
    assert snap.findings_omitted == {"special_file": 230, "symlink_outside": 30}
    assert snap.to_json()["findings_omitted"] == {"special_file": 230, "symlink_outside": 30}
    # what a limit left out is always said, however many findings came before
    (ws / "sub").mkdir()
    capped = take_snapshot(ws, tmp_path / "w3", limits=SnapshotLimits(max_dirs=0))
    assert (len(capped.findings), capped.findings[-1]["kind"]) == (201, "limit_dirs")


def test_history_lists_capped_paths_per_commit_and_in_all_with_exact_counts(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    repo = git.Repo.init(ws, initial_branch="main")
    for i in range(30):
        write(ws / "models" / f"m{i:02}.sql", f"select {i}\n")
    commit_all(repo, "thirty models", "2024-03-01T09:00:00Z")
    for i in range(30):
        write(ws / "models" / f"m{i:02}.sql", f"select {i} + 1\n")
    write(ws / "models" / "tricky\nname\x01.sql", "select 0\n")  # newline in a name: -z keeps it whole
    commit_all(repo, "touch all", "2024-03-01T10:00:00Z")
    write(ws / "README.md", "notes\n")
    commit_all(repo, "notes", "2024-03-01T11:00:00Z")

    limits = SnapshotLimits(max_files_per_commit=10, max_files_listed=15)
    snap = take_snapshot(ws, tmp_path / "work", limits=limits)

    first, second, third = snap.commits
    assert (first.files_total, first.files) == (30, [f"models/m{i:02}.sql" for i in range(10)])
    assert (second.files_total, len(second.files)) == (31, 5)
    assert (third.files_total, third.files) == (1, [])  # the overall budget is spent
    assert kinds(snap) == {".git": "history_files_capped"}
    assert "47 changed paths counted but not listed" in snap.findings[0]["detail"]

    full = take_snapshot(ws, tmp_path / "w2")
    assert "models/tricky\nname\x01.sql" in full.commits[1].files
    assert full.commits[2].files == ["README.md"]


def test_history_records_yaml_that_declared_tests_at_each_commit(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    repo = git.Repo.init(ws, initial_branch="main")
    yml = ws / "models" / "_marts.yml"
    write(yml, "version: 2\nmodels:\n  - name: fct\n    description: Facts.\n")
    commit_all(repo, "describe", "2024-03-01T09:00:00Z")
    write(yml, "version: 2\nmodels:\n  - name: fct\n    columns:\n      - name: id\n        data_tests: [unique]\n")
    commit_all(repo, "test", "2024-03-01T10:00:00Z")

    snap = take_snapshot(ws, tmp_path / "work")

    assert [c.yaml_with_tests for c in snap.commits] == [[], ["models/_marts.yml"]]


def test_shallow_clone_lists_what_git_can_read(tmp_path: Path) -> None:
    origin = tmp_path / "origin"
    _, shas = make_repo(origin)
    ws = tmp_path / "ws"
    git.Repo.clone_from(f"file://{origin}", ws, depth=2)

    snap = take_snapshot(ws, tmp_path / "work")

    assert [c.sha for c in snap.commits] == shas[1:]
    oldest, newest = snap.commits
    assert (oldest.files, oldest.files_total) == ([], None)  # its parent was not cloned
    assert newest.files == ["README.md"]
    assert kinds(snap) == {".git": "history_files_unreadable"}
