"""history.* signals: commits, when tests arrived, the written account of the traps."""

from __future__ import annotations

import textwrap
from datetime import datetime, timedelta, UTC
from pathlib import Path

import git
import pytest

import checks.history  # noqa: F401  (registers the rules)
from checks.history import meaningful_message
from checks.registry import REGISTRY, run_check, specs
from checks.static_context import StaticContext

START = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def commit(i: int, message: str, files: list[str], minutes: int = 20) -> dict:
    return {
        "sha": f"{i:040x}",
        "author_time": (START + timedelta(minutes=minutes * i)).isoformat(),
        "author": "Candidate",
        "message": message,
        "files": files,
    }


def ctx_for(tmp_path: Path, commits: list[dict], files: dict[str, str] | None = None, **kw) -> StaticContext:
    root = tmp_path / "ws"
    root.mkdir(parents=True, exist_ok=True)
    for rel, text in (files or {}).items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
    kw.setdefault("starter_root", None)
    return StaticContext.build(root, None, kw.pop("manifest", None), None, commits, **kw)


def run(rule: str, ctx: StaticContext):
    return run_check(REGISTRY[rule], ctx)


def test_rules_are_informational():
    assert {s.severity for s in specs("history")} == {"info"}
    assert [s.id for s in specs("history")] == ["history.commits", "history.decisions_doc", "history.tests_early"]


@pytest.mark.parametrize(
    "msg,ok",
    [
        ("wip", False),
        ("update", False),
        ("fix", False),
        ("Fix tests", False),
        ("initial commit", False),
        ("stuff", False),
        ("", False),
        ("Dedup payments on event_id with QUALIFY", True),
        ("Add stg_orders with New York timezone conversion", True),
        ("fix: confirmed_at DST handling", True),
    ],
)
def test_meaningful_message(msg, ok):
    assert meaningful_message(msg) is ok


def test_commits_good_history(tmp_path):
    msgs = [
        "Explore raw tables and note the traps",
        "Add staging models for payments and orders",
        "Dedup payments on event_id",
        "Convert confirmed_at from New York time",
        "Add marts and their key tests",
        "Document decisions",
    ]
    res = run("history.commits", ctx_for(tmp_path, [commit(i, m, ["x"]) for i, m in enumerate(msgs)]))
    assert res.status == "pass" and res.score == 1.0
    assert res.evidence["median_gap_minutes"] == 20 and res.evidence["max_gap_minutes"] == 20
    assert res.evidence["count"] == 6 and res.evidence["meaningful_share"] == 1.0


def test_commits_poor_history(tmp_path):
    cs = [commit(0, "initial", ["x"]), commit(1, "wip", ["x"], minutes=5), commit(9, "final", ["x"])]
    res = run("history.commits", ctx_for(tmp_path, cs))
    assert res.status == "fail" and res.evidence["meaningful_share"] == 0.0
    assert res.evidence["max_gap_minutes"] == 175.0
    assert res.evidence["weak_messages"] == ["initial", "wip", "final"]
    assert run("history.commits", ctx_for(tmp_path / "b", [])).status == "skipped"


MARTS_YML = """
version: 2
models:
  - name: fct_orders
    columns:
      - name: order_id
        data_tests: [unique, not_null]
"""


def _session(test_at: int, n: int = 8) -> list[dict]:
    out = []
    for i in range(n):
        files = ["dbt/models/staging/stg_x.sql"]
        if i == test_at:
            files.append("dbt/models/marts/_marts.yml")
        out.append(commit(i, f"Step {i}: build staging model {i}", files))
        if i == test_at:  # as the snapshot reads it: the YAML declared tests at this commit
            out[-1]["yaml_with_tests"] = ["dbt/models/marts/_marts.yml"]
    return out


def test_tests_early(tmp_path):
    files = {"dbt/models/marts/_marts.yml": MARTS_YML}
    res = run("history.tests_early", ctx_for(tmp_path / "a", _session(2), files))
    assert res.status == "pass" and res.evidence["test_commits"][0]["index"] == 3
    res = run("history.tests_early", ctx_for(tmp_path / "b", _session(7), files))
    assert res.status == "fail" and "only at the end" in res.message
    singular = _session(99)
    singular[1]["files"].append("dbt/tests/assert_one_row_per_event.sql")
    assert run("history.tests_early", ctx_for(tmp_path / "c", singular)).status == "pass"
    res = run("history.tests_early", ctx_for(tmp_path / "d", _session(99)))
    assert res.status == "fail" and res.score == 0.0
    assert run("history.tests_early", ctx_for(tmp_path / "e", _session(0, n=3), files)).status == "skipped"


def _tests_added_last(root: Path) -> Path:
    """A git workspace: a models YAML committed early with docs only, six models, and the
    YAML's tests added in the last of 8 commits (so today's YAML declares tests)."""
    yml = root / "dbt" / "models" / "marts" / "_marts.yml"
    yml.parent.mkdir(parents=True)
    repo = git.Repo.init(root)
    actor = git.Actor("Candidate", "c@example.com")

    def save(msg: str, i: int) -> None:
        repo.git.add(A=True)
        stamp = (START + timedelta(minutes=15 * i)).strftime("%Y-%m-%dT%H:%M:%S+0000")
        repo.index.commit(msg, author=actor, committer=actor, author_date=stamp, commit_date=stamp)

    yml.write_text("version: 2\nmodels:\n  - name: fct_orders\n    description: Orders.\n")
    save("Describe fct_orders", 0)
    for i in range(1, 7):
        (root / "dbt" / "models" / f"m{i}.sql").parent.mkdir(parents=True, exist_ok=True)
        (root / "dbt" / "models" / f"m{i}.sql").write_text(f"select {i} as x\n")
        save(f"Add model m{i} for the marts", i)
    yml.write_text(MARTS_YML)
    save("Add key tests to fct_orders", 7)
    repo.close()
    return root


def test_tests_early_reads_yaml_as_it_was_at_each_commit(tmp_path):
    root = _tests_added_last(tmp_path / "ws")
    ctx = StaticContext.build(root, starter_root=None)  # commits read by the snapshot's reader
    assert len(ctx.commits) == 8 and ctx.commits[0]["files"] == ["dbt/models/marts/_marts.yml"]
    res = run("history.tests_early", ctx)
    assert res.status == "fail" and [c["index"] for c in res.evidence["test_commits"]] == [8]


def test_grading_reads_the_yaml_of_each_commit_not_the_snapshot_copys(tmp_path):
    """As graded: the static stage gets the history from the snapshot, whose copy has no .git.
    Today's YAML declares tests; only the last commit added them, so tests came late."""
    from checks.static import run_static_checks
    from grader.snapshot import take_snapshot

    snapshot = take_snapshot(_tests_added_last(tmp_path / "ws"), tmp_path / "work")
    assert not (snapshot.root / ".git").exists() and len(snapshot.commits) == 8
    res = next(r for r in run_static_checks(snapshot, None) if r.id == "history.tests_early")
    assert res.status == "fail" and [c["index"] for c in res.evidence["test_commits"]] == [8], res.message


DECISIONS = """
# Decisions
## Duplicate payment events
Webhook replays share an event_id; stg_payments keeps the first delivery (ROW_NUMBER + QUALIFY).
## confirmed_at
It is America/New_York wall-clock time (DST), converted with TIMESTAMP(confirmed_at, 'America/New_York').
## Soft deletes
dim_users excludes users with deleted_at set; suspended users stay.
## Missing country
A NULL country_code becomes the placeholder 'ZZ'.
## Products updated in the future
Clock skew: updated_at after the extraction time is capped.
## Currency
Amounts are converted to USD with the exchange_rates seed.
"""


def test_decisions_doc_covers_every_trap(tmp_path):
    res = run("history.decisions_doc", ctx_for(tmp_path, [], {"docs/DECISIONS.md": DECISIONS}))
    assert res.status == "pass" and res.score == 1.0 and res.evidence["missing"] == []
    m = res.evidence["matches"]["timezone"][0]
    assert m["where"] == "docs/DECISIONS.md" and m["line"] == 6
    assert res.evidence["decision_files"] == ["docs/DECISIONS.md"]


def test_decisions_doc_partial_and_missing(tmp_path):
    partial = "\n".join(DECISIONS.splitlines()[:8])
    res = run("history.decisions_doc", ctx_for(tmp_path / "a", [], {"README.md": partial}))
    assert res.status == "pass" and res.score == pytest.approx(3 / 6)
    assert set(res.evidence["missing"]) == {"null_country", "late_timestamps", "currency"}
    res = run("history.decisions_doc", ctx_for(tmp_path / "b", []))
    assert res.status == "fail" and res.score == 0.0


def test_decisions_doc_ignores_the_handout(tmp_path):
    handout_readme = """
    ### Intentional Data Challenges
    | Challenge | Table | Description |
    | Duplicate events | payments | Same `event_id` appears multiple times |
    | Late-arriving data | products | Some records have future `updated_at` |
    | Timezone issues | orders | `confirmed_at` is timezone-naive |
    | Soft deletes | users | `deleted_at` field for inactive users |
    | Missing data | users | Some have NULL `country_code` |
    | Multi-currency | products | USD, EUR, GBP pricing |
    """
    files = {"README.md": handout_readme, "docs/EXERCISE_INSTRUCTIONS.md": DECISIONS}
    res = run("history.decisions_doc", ctx_for(tmp_path / "a", [], files))
    assert res.score == 0.0, res.evidence["matches"]
    # a pristine copy of the handout: its lines are not the candidate's writing, new lines are
    starter = tmp_path / "starter"
    (starter / "docs").mkdir(parents=True)
    (starter / "docs" / "NOTES.md").write_text(DECISIONS)
    own = DECISIONS + "\nWe keep the first delivery because later replays carry no new data.\n"
    res = run("history.decisions_doc", ctx_for(tmp_path / "b", [], {"docs/NOTES.md": own}, starter_root=starter))
    assert res.evidence["covered"] == ["duplicates"], res.evidence["matches"]  # only the new line counts
    assert res.evidence["matches"]["duplicates"][0]["line"] == 16
    # a file present since the first commit and never touched again is the handout too
    cs = [commit(0, "Starter repository", ["docs/DECISIONS.md", "x"]), commit(1, "Add staging models", ["y"])]
    res = run("history.decisions_doc", ctx_for(tmp_path / "c", cs, {"docs/DECISIONS.md": DECISIONS}))
    assert res.score == 0.0


def test_decisions_doc_reads_model_descriptions(tmp_path):
    man = {
        "metadata": {"project_name": "p"},
        "nodes": {
            "model.p.stg_payments": {
                "resource_type": "model",
                "package_name": "p",
                "name": "stg_payments",
                "original_file_path": "models/stg_payments.sql",
                "patch_path": "p://models/_staging.yml",
                "description": "One row per event_id: replays removed.",
                "columns": {
                    "amount_usd": {"name": "amount_usd", "description": "Amount converted with the exchange rate."}
                },
            },
        },
    }
    res = run("history.decisions_doc", ctx_for(tmp_path, [], manifest=man))
    assert res.evidence["covered"] == ["duplicates", "currency"]
    assert res.evidence["matches"]["duplicates"][0]["where"].endswith("(model stg_payments)")


def test_evidence_lists_are_capped_and_counts_come_from_the_snapshot(tmp_path):
    """A history of 300 commits, each touching 5,000 files of which the snapshot listed 100."""
    files = [f"dbt/models/m{i}.sql" for i in range(100)]
    cs = [dict(commit(i, f"Rework staging model {i}", files), files_total=5_000) for i in range(300)]
    res = run("history.commits", ctx_for(tmp_path, cs))
    assert len(res.evidence["commits"]) == 100 and res.evidence["commits_omitted"] == 200
    assert res.evidence["commits"][0]["files"] == 5_000


def test_capped_file_lists_never_mark_the_candidates_docs_as_untouched_handout(tmp_path):
    """Whether a later commit touched docs/DECISIONS.md is unknown when its list was capped."""
    cs = [commit(0, "Starter repository", ["docs/DECISIONS.md"]),
          dict(commit(1, "Write down the decisions", ["dbt/models/a.sql"]), files_total=250)]
    res = run("history.decisions_doc", ctx_for(tmp_path, cs, {"docs/DECISIONS.md": DECISIONS}))
    assert res.score == 1.0


def test_tests_early_uses_the_yaml_state_the_snapshot_read(tmp_path):
    """`yaml_with_tests` (what the YAML declared at that commit) wins over today's file."""
    cs = _session(2)
    for c in cs:
        c["yaml_with_tests"] = []
    cs[6]["files"].append("dbt/models/marts/_marts.yml")
    cs[6]["yaml_with_tests"] = ["dbt/models/marts/_marts.yml"]
    res = run("history.tests_early", ctx_for(tmp_path, cs, {"dbt/models/marts/_marts.yml": MARTS_YML}))
    assert res.status == "fail" and [c["index"] for c in res.evidence["test_commits"]] == [7]


def test_tests_early_does_not_count_the_handouts_own_tests(tmp_path):
    """The first commit imports the handout (its stg_categories.yml has tests): that is not the
    candidate writing tests early; their own tests in the last commit are late."""
    starter_yml = "dbt/models/staging/stg_categories.yml"
    commits = _session(7)
    commits[0]["files"].append(starter_yml)
    files = {"dbt/models/marts/_marts.yml": MARTS_YML, starter_yml: MARTS_YML}
    starter = tmp_path / "starter"
    (starter / starter_yml).parent.mkdir(parents=True)
    (starter / starter_yml).write_text(MARTS_YML)
    res = run("history.tests_early", ctx_for(tmp_path, commits, files, starter_root=starter))
    assert res.status == "fail" and "only at the end" in res.message, res.message
    assert [c["index"] for c in res.evidence["test_commits"]] == [8]
