#!/usr/bin/env bash
# The interviewer's tooling for running sessions on this stack (see README.md, "For interviewers").
#
#   ./interviewer.sh verify             every service healthy, a load job from another container, row counts
#   ./interviewer.sh preload            fill raw from source-postgres without Airbyte (full refresh, 9 tables)
#   ./interviewer.sh collect OUT        the candidate's work (git bundle + a gradable copy with uncommitted
#                                       changes) and Airbyte's connections, into OUT, ready for `grade OUT/workspace`
#   ./interviewer.sh reset [--force]    for the next candidate: stack down with its volumes, ./dbt,
#                                       ./airflow/dags and ./docs back to the handout commit, stack up again
#
# Run from this folder. reset refuses to run until collect has saved the current work (--force skips that).
set -euo pipefail
cd "$(dirname "$0")"

HANDOUT_TAG=handout
COLLECTED_MARK=.git/interviewer-collected
compose() { docker compose "$@"; }

# A one-off container from the connector image (on the stack's network, with the BigQuery client
# and the raw layer's BigQuery helpers, airbyte/raw-layer) running Python code given on stdin.
in_stack_python() {
    compose run --rm --no-deps -T --entrypoint python postgres-feed - "$@"
}

verify() {
    local failed=0
    echo "== services"
    for service in source-postgres bigquery-emulator airflow-apiserver airflow-scheduler airbyte-proxy dbt; do
        local state
        state=$(docker inspect -f '{{.State.Status}}{{if .State.Health}} {{.State.Health.Status}}{{end}}' \
                "$service" 2>/dev/null || echo "missing")
        printf '  %-22s %s\n' "$service" "$state"
        case "$state" in "running healthy"|"running") ;; *) failed=1 ;; esac
        if [ "$service" != dbt ] && [ "$state" = "running" ]; then failed=1; fi  # these have healthchecks
    done
    for service in airflow-init airbyte-bootloader destination-bigquery-emulator; do
        local code
        code=$(docker inspect -f '{{.State.ExitCode}} {{.State.Status}}' "$service" 2>/dev/null || echo "missing")
        printf '  %-22s %s\n' "$service" "$code"
        [ "$code" = "0 exited" ] || failed=1
    done
    echo "== a load job from another container (the path dbt seed and the Airbyte destination take)"
    in_stack_python <<'EOF' || failed=1
import uuid
from raw_layer.bigquery import connect, load_table, query
client = connect("http://bigquery-emulator:9050")
dataset = f"interviewer_check_{uuid.uuid4().hex[:8]}"
client.create_dataset(f"{client.project}.{dataset}")
try:
    rows = load_table(client, dataset, "probe", [("id", "INT64"), ("note", "STRING")],
                      b'{"id": 1, "note": "a"}\n{"id": 2, "note": "b"}\n')
    assert rows == 2, rows
    print(f"  load job into {dataset}.probe from the postgres-feed container: {rows} rows, OK")
finally:
    client.delete_dataset(f"{client.project}.{dataset}", delete_contents=True, not_found_ok=True)
datasets = sorted(d.dataset_id for d in client.list_datasets())
print(f"  datasets: {', '.join(datasets)}")
for table in client.list_tables(f"{client.project}.raw"):
    n = query(client, f"SELECT COUNT(*) AS n FROM `{client.project}.raw.{table.table_id}`")[0]["n"]
    print(f"  raw.{table.table_id}: {n} rows")
EOF
    echo "== source-postgres row counts"
    docker exec source-postgres psql -U marketplace -d marketplace -tA -F ' ' -c "
        SELECT relname, n_live_tup FROM pg_stat_user_tables ORDER BY relname" | sed 's/^/  /' || failed=1
    docker exec dbt dbt debug >/dev/null 2>&1 && echo "== dbt debug: OK" || { echo "== dbt debug: FAILED"; failed=1; }
    if [ "$failed" = 0 ]; then echo "verify: everything OK"; else echo "verify: FAILED (see above)"; exit 1; fi
}

preload() {
    compose --profile no-airbyte run --rm postgres-feed
}

collect() {
    local out=${1:?usage: ./interviewer.sh collect OUT}
    mkdir -p "$out"
    out=$(cd "$out" && pwd)
    [ -d .git ] || { echo "collect: this folder is not a git repository (was it set up with setup?)"; exit 2; }
    # 1. every commit of the candidate, plus their uncommitted work as a commit on a side ref
    local index snapshot
    index=$(mktemp)
    cp .git/index "$index" 2>/dev/null || true
    GIT_INDEX_FILE="$index" git add -A
    snapshot=$(GIT_INDEX_FILE="$index" git -c user.name="interviewer.sh collect" -c user.email=interviewer@example.com commit-tree "$(GIT_INDEX_FILE="$index" git write-tree)" \
               -p HEAD -m "Uncommitted work at collection (interviewer.sh collect)")
    rm -f "$index"
    git update-ref refs/collected/uncommitted "$snapshot"
    git bundle create "$out/workspace.bundle" --all 2>/dev/null
    # 2. a gradable copy: the candidate's HEAD with the uncommitted changes in its working tree
    rm -rf "$out/workspace"
    git clone -q "$out/workspace.bundle" "$out/workspace"
    git -C "$out/workspace" checkout -q "$(git rev-parse HEAD)" 2>/dev/null
    git -C "$out/workspace" fetch -q "$out/workspace.bundle" refs/collected/uncommitted
    git -C "$out/workspace" read-tree -u --reset FETCH_HEAD   # files as they were on disk
    git -C "$out/workspace" reset -q                            # ... left uncommitted
    echo "collect: $out/workspace.bundle ($(git rev-list --count HEAD) commits) and $out/workspace"
    # 3. Airbyte's sources, destinations and connections (secrets come back masked)
    if docker inspect airbyte-server >/dev/null 2>&1; then
        in_stack_python <<'EOF' > "$out/airbyte-connections.json" && echo "collect: $out/airbyte-connections.json" \
            || echo "collect: could not export Airbyte's connections (is airbyte-server up?)"
import json, urllib.request
def post(path, body):
    request = urllib.request.Request(f"http://airbyte-server:8001/api/v1/{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)
export = []
for workspace in post("workspaces/list", {})["workspaces"]:
    body = {"workspaceId": workspace["workspaceId"]}
    export.append({"workspace": workspace["name"], "sources": post("sources/list", body)["sources"],
                   "destinations": post("destinations/list", body)["destinations"],
                   "connections": post("connections/list", body)["connections"]})
print(json.dumps(export, indent=1))
EOF
    else
        echo "collect: Airbyte is not running; no connections exported"
    fi
    touch "$COLLECTED_MARK"
    echo "collect: grade it with: grade $out/workspace --name <candidate>"
}

reset() {
    if [ "${1:-}" != "--force" ] && [ ! -e "$COLLECTED_MARK" ]; then
        echo "reset: the current work has not been collected; run ./interviewer.sh collect OUT first (or --force)"
        exit 2
    fi
    compose down -v --remove-orphans
    git rev-parse -q --verify "refs/tags/$HANDOUT_TAG" >/dev/null \
        || { echo "reset: no '$HANDOUT_TAG' tag: this folder was not set up with setup"; exit 2; }
    git checkout -q -B main "$HANDOUT_TAG"
    git reset -q --hard "$HANDOUT_TAG"
    git clean -q -fdx -- dbt airflow/dags docs
    git update-ref -d refs/collected/uncommitted 2>/dev/null || true
    rm -f "$COLLECTED_MARK"
    compose up -d
    echo "reset: the handout is back (./dbt, ./airflow/dags, ./docs as handed over); run ./interviewer.sh verify"
}

setup() {
    # The handout as a git repository with a first commit, tagged so reset can return to it.
    if [ ! -d .git ]; then
        git init -q -b main
        git add -A
        git -c user.name="Exercise" -c user.email="exercise@example.com" commit -q -m "Starter repository as handed over"
        git tag "$HANDOUT_TAG"
        echo "setup: git repository created with the handout as its first commit (tag $HANDOUT_TAG)"
    else
        echo "setup: already a git repository"
    fi
}

case "${1:-}" in
    verify) verify ;;
    preload) preload ;;
    collect) shift; collect "$@" ;;
    reset) shift; reset "$@" ;;
    setup) setup ;;
    *) sed -n '2,12p' "$0"; exit 2 ;;
esac
