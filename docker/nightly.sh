#!/usr/bin/env bash
# The nightly reproduction's steps, as .github/workflows/nightly.yml runs them:
#
#   nightly.sh build                                build the image
#   nightly.sh shard SUITE K N OUT                  run shard K of N of SUITE into OUT
#   nightly.sh merge OUT [--compare PREV] SHARD...  merge the shard folders into OUT, compare
#                                                   with PREV (last night's merged OUT) if it
#                                                   is a results folder, check every cell
#
# Environment:
#   RPG_BENCH_RUNNER  docker (default), or local: the same steps with the rpg-bench on PATH
#                     and no container, which is how tests/test_nightly.py runs them
#   RPG_BENCH_IMAGE   the image's tag (default rpg-bench:nightly)
#   RPG_BENCH_DATA    the data root: mounted read-only at /data (docker), --data-root (local)
#   RPG_BENCH_GPUS    docker run --gpus (default all; empty for a host without GPUs)
#   RPG_BENCH_ARGS    more rpg-bench arguments for shards, e.g. "--profile smoke --seeds 1"
#
# Exit codes: 0 all well. shard: 1 from rpg-bench (some cells failed) is not a failure here,
# since the failures are recorded and merge reports them. merge: 1 when the merged run has
# a failed or missing cell, a shard is missing, or PREV shows a lost claim or a metric
# regression; the report is rendered first, so it can be published all the same.
# 2: bad arguments. Anything else: the code of the command that failed.
set -euo pipefail

USAGE="usage: nightly.sh build | shard SUITE K N OUT | merge OUT [--compare PREV] SHARD_DIR..."
RUNNER=${RPG_BENCH_RUNNER:-docker}
IMAGE=${RPG_BENCH_IMAGE:-rpg-bench:nightly}
GPUS=${RPG_BENCH_GPUS-all}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

die_usage() {
    echo "nightly.sh: error: $1 ($USAGE)" >&2
    exit 2
}

case $RUNNER in
    docker | local) ;;
    *) die_usage "RPG_BENCH_RUNNER must be docker or local, not '$RUNNER'" ;;
esac

# Split on whitespace only: a glob character in an argument must reach rpg-bench as is.
read -r -a EXTRA <<<"${RPG_BENCH_ARGS:-}"

# Docker would create a missing bind-mount source owned by root, which the unprivileged
# container user then cannot write.
host_dir() {
    mkdir -p "$1"
    (cd "$1" && pwd)
}

# Files the container writes must belong to the runner's user (the workspace is theirs to
# clean); HOME=/tmp because that uid has no home in the image and matplotlib and torch
# want a writable cache. DIGEST is set by the caller, outside any `|| rc=$?`, so that a
# missing image stops the script instead of passing for rpg-bench's exit code.
docker_run() {
    docker run --rm --init --user "$(id -u):$(id -g)" -e HOME=/tmp \
        -e "RPG_BENCH_IMAGE_DIGEST=$DIGEST" "$@"
}

cmd_build() {
    [[ $# -eq 0 ]] || die_usage "build takes no arguments"
    if [[ $RUNNER == local ]]; then
        command -v rpg-bench >/dev/null || { echo "nightly.sh: no rpg-bench on PATH" >&2; exit 127; }
        echo "nightly.sh: local runner, nothing to build: using $(command -v rpg-bench)"
        return
    fi
    cd "$HERE/.."
    docker build --build-arg "GIT_COMMIT=$(git rev-parse HEAD)" -t "$IMAGE" .
}

cmd_shard() {
    [[ $# -eq 4 ]] || die_usage "shard takes SUITE K N OUT"
    local suite=$1 k=$2 n=$3 out=$4
    [[ $suite && $suite != -* ]] || die_usage "bad SUITE '$suite'"
    if ! [[ $k =~ ^[0-9]+$ && $n =~ ^[0-9]+$ ]] || ((10#$k < 1 || 10#$k > 10#$n)); then
        die_usage "shard $k of $n: K and N must be whole numbers with 1 <= K <= N"
    fi
    [[ $out && $out != -* ]] || die_usage "bad OUT '$out'"
    local args=(--suite "$suite" --shard "$k/$n" --no-open --no-progress)
    local cmd
    if [[ $RUNNER == local ]]; then
        cmd=(rpg-bench "${args[@]}" --out "$out")
        if [[ -n ${RPG_BENCH_DATA:-} ]]; then cmd+=(--data-root "$RPG_BENCH_DATA"); fi
    else
        local parent name
        parent=$(host_dir "$(dirname "$out")")
        name=$(basename "$out")
        DIGEST=$(docker image inspect --format '{{.Id}}' "$IMAGE")
        cmd=(docker_run)
        if [[ -n $GPUS ]]; then cmd+=(--gpus "$GPUS"); fi
        if [[ -n ${RPG_BENCH_DATA:-} ]]; then cmd+=(-v "$(cd "$RPG_BENCH_DATA" && pwd):/data:ro"); fi
        cmd+=(-v "$parent:/reports" "$IMAGE" "${args[@]}" --out "/reports/$name")
    fi
    local rc=0
    "${cmd[@]}" "${EXTRA[@]}" || rc=$?
    case $rc in
        0) ;;
        1) echo "nightly.sh: shard $k/$n of $suite: some cells failed; they are recorded in $out and merge will fail on them" ;;
        *) exit "$rc" ;;
    esac
}

# Prints the shard folders that hold a run (one a line) and, on stderr, the ones that do
# not (a job that died before writing run.json). A shard whose artifact never arrived is
# rpg-bench merge's to find: every shard lists the whole run's cells.
PY_SHARDS='
import json, sys
from pathlib import Path

incomplete = False
for folder in sys.argv[1:]:
    try:
        json.loads((Path(folder) / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        print(f"nightly.sh: {folder} holds no shard run, left out: {e}", file=sys.stderr)
        incomplete = True
        continue
    print(folder)
sys.exit(1 if incomplete else 0)
'

# Every cell the merged run lists must have an ok record: rpg-bench merge and report exit 0
# with failed cells (they are shown in the report), and a cell whose shard was killed has no
# record at all.
PY_CELLS='
import json, sys
from pathlib import Path

out = Path(sys.argv[1])
keys = json.loads((out / "run.json").read_text(encoding="utf-8")).get("keys", [])
bad = 0
for key in keys:
    path = out / "records" / f"{key}.json"
    if not path.is_file():
        print(f"nightly.sh: cell {key}: no record (its shard did not finish it)", file=sys.stderr)
        bad += 1
        continue
    record = json.loads(path.read_text(encoding="utf-8"))
    if record.get("status") != "ok":
        config = record.get("config", {})
        what = " ".join(str(config.get(f, "")) for f in ("experiment", "method", "budget", "seed"))
        status, error = record.get("status"), record.get("error", "")
        print(f"nightly.sh: cell {key} ({what}): {status}: {error}", file=sys.stderr)
        bad += 1
print(f"nightly.sh: {len(keys) - bad} of {len(keys)} cells ok")
sys.exit(1 if bad or not keys else 0)
'

cmd_merge() {
    local out="" prev="" shards=()
    while [[ $# -gt 0 ]]; do
        case $1 in
            --compare)
                [[ $# -ge 2 && -n $2 ]] || die_usage "--compare needs a folder"
                prev=$2
                shift 2
                ;;
            -*) die_usage "unknown option $1" ;;
            *)
                if [[ -z $out ]]; then out=$1; else shards+=("$1"); fi
                shift
                ;;
        esac
    done
    [[ -n $out ]] || die_usage "merge needs OUT"
    [[ ${#shards[@]} -gt 0 ]] || die_usage "merge needs at least one SHARD_DIR"
    local s
    for s in "${shards[@]}"; do
        [[ -d $s ]] || die_usage "shard folder $s does not exist"
    done
    # A first night has no previous report; anything else that is not a results folder
    # is worth a loud line, since it means nothing was compared.
    if [[ -n $prev && ! -d $prev/records ]]; then
        if [[ -e $prev ]]; then
            echo "nightly.sh: warning: $prev holds no rpg-bench records: not comparing" >&2
        else
            echo "nightly.sh: no previous results at $prev: not comparing"
        fi
        prev=""
    fi
    if [[ $RUNNER == docker ]]; then
        merge_in_docker "$out" "$prev" "${shards[@]}"
    else
        merge_local "$out" "$prev" "${shards[@]}"
    fi
}

# Merging runs this same script inside the image, so the merge, the comparison and the
# checks run with the image's rpg-bench and Python, exactly as the tests run them locally.
merge_in_docker() {
    local out=$1 prev=$2
    shift 2
    local parent name
    parent=$(host_dir "$(dirname "$out")")
    name=$(basename "$out")
    local mounts=(-v "$HERE/nightly.sh:/opt/nightly.sh:ro" -v "$parent:/reports")
    local args=(merge "/reports/$name")
    if [[ -n $prev ]]; then
        mounts+=(-v "$(cd "$prev" && pwd):/prev/$(basename "$prev"):ro")
        args+=(--compare "/prev/$(basename "$prev")")
    fi
    local i=0 s
    for s in "$@"; do
        i=$((i + 1))
        mounts+=(-v "$(cd "$s" && pwd):/shards/$i/$(basename "$s"):ro")
        args+=("/shards/$i/$(basename "$s")")
    done
    DIGEST=$(docker image inspect --format '{{.Id}}' "$IMAGE")
    docker_run -e RPG_BENCH_RUNNER=local --entrypoint bash "${mounts[@]}" "$IMAGE" /opt/nightly.sh "${args[@]}"
}

merge_local() {
    local out=$1 prev=$2
    shift 2
    local problems=0 listing rc
    listing=$(python3 -c "$PY_SHARDS" "$@") || problems=1
    local usable=()
    if [[ -n $listing ]]; then mapfile -t usable <<<"$listing"; fi
    if [[ ${#usable[@]} -eq 0 ]]; then
        echo "nightly.sh: no shard folder holds a run: nothing to merge" >&2
        exit 1
    fi
    # --partial: a missing shard still gets a report (rpg-bench merge names it); its cells
    # have no record, which the cell check below fails.
    rpg-bench merge --partial "${usable[@]}" --out "$out"
    if [[ -n $prev ]]; then
        rc=0
        rpg-bench report "$out" --compare "$prev" || rc=$?
        case $rc in
            0) echo "nightly.sh: no regression against $prev" ;;
            1)
                echo "nightly.sh: regressions against $prev (above; marked in the report)" >&2
                problems=1
                ;;
            *) exit "$rc" ;;
        esac
    fi
    python3 -c "$PY_CELLS" "$out" || problems=1
    echo "nightly.sh: report: $out/index.html"
    if ((problems)); then
        echo "nightly.sh: the nightly run of $out is not clean (see above)" >&2
        exit 1
    fi
}

[[ $# -ge 1 ]] || die_usage "no subcommand"
subcommand=$1
shift
case $subcommand in
    build) cmd_build "$@" ;;
    shard) cmd_shard "$@" ;;
    merge) cmd_merge "$@" ;;
    *) die_usage "unknown subcommand '$subcommand'" ;;
esac
