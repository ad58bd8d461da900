#!/usr/bin/env bash
# The nightly reproduction's steps: .github/workflows/nightly.yml runs nothing else, so the
# tests (tests/test_nightly.py) run what the workflow runs.
#
#   nightly.sh plan PROFILE SUITES ARGS        the shard matrix (GitHub step outputs)
#   nightly.sh baselines PROFILE ARGS SUITE... each suite's baseline run, or why there is none
#   nightly.sh build                           build the image
#   nightly.sh shard SUITE K N OUT             run shard K of N of SUITE into OUT
#   nightly.sh merge OUT [--compare PREV [--if-missing REASON]] DIR...
#                                              merge the shard runs found under the DIRs (at
#                                              any depth) into OUT, compare with the baseline
#                                              PREV, check every cell, summarise the night
#   nightly.sh agree OUT NIGHT                 the weekly check of the nightly's premise:
#                                              rpg-bench agree NIGHT OUT into OUT/agree.json,
#                                              a warning annotation when tau < 0.8 or a
#                                              headline claim changed (never a failure)
#   nightly.sh history [--keep DIR] STORE SITE keep the runs under DIR (tonight's reports) in
#                                              STORE, and build SITE/SUITE-PROFILE/ with
#                                              rpg-bench history from each suite's and
#                                              profile's newest 60 nights there
#   nightly.sh site DIR SITE [HISTORY]         the Pages site from the reports under DIR, with
#                                              the history sites under HISTORY beside them and
#                                              the documentation $RPG_BENCH_SITE_DOCS (if built)
#   nightly.sh accept RUN SUITE PROFILE DEST   run RUN's report of SUITE, checked, into DEST
#                                              (the workflow keeps it as the new baseline)
#   nightly.sh notify passed|failed RUN_URL    open, update or close the one issue about
#                                              failing nights
#
# merge --compare PREV: PREV holding no run is a first night (nothing compared, not a
# failure) unless --if-missing gives the reason a baseline was due and is not there (the
# workflow's plan job gives one whenever a baseline exists or expired): then nothing is
# compared, loudly (OUT/compare.json and the summary say why).
#
# history with RPG_BENCH_HISTORY_BRANCH set (the workflow sets it): STORE, which must not
# exist, is made a work tree of that branch of origin (a branch of its own on the first
# night), and tonight's kept nights are committed and pushed to it, whatever happens to the
# build; a night that keeps nothing new pushes nothing.
#
# Environment:
#   RPG_BENCH_RUNNER  docker (default), or local: the same steps with the rpg-bench on PATH
#                     and no container, which is how tests/test_nightly.py runs them
#   RPG_BENCH_IMAGE   the image's tag (default rpg-bench:nightly)
#   RPG_BENCH_DATA    the data root: mounted read-only at /data (docker), --data-root (local)
#   RPG_BENCH_GPUS    docker run --gpus (default all; empty for a host without GPUs)
#   RPG_BENCH_ARGS    more rpg-bench arguments for shards, e.g. "--profile smoke --seeds 1"
#   RPG_BENCH_RUN_ID, RPG_BENCH_RUN_URL   merge records them in OUT/run.json: the report
#                     compared with OUT tomorrow names its baseline by them
#   GITHUB_STEP_SUMMARY, GITHUB_OUTPUT, GITHUB_ACTIONS   set by Actions: merge appends the
#                     night's summary, sets the output baseline=yes|no, and annotates
#   GH_TOKEN, GH_REPO the gh CLI's (baselines, accept, notify)
#   RPG_BENCH_HISTORY_BRANCH  history: the branch the nights are kept on (unset: STORE is
#                     a plain folder, nothing committed)
#   RPG_BENCH_HISTORY_NIGHTS  history: how many of the newest nights a site shows (default 60)
#   RPG_BENCH_SITE_DOCS  site: the built documentation (mkdocs' output folder), published
#                     under the site's docs/ and linked from its index (unset or unbuilt: not)
#
# Exit codes: 0 all well. shard: 1 from rpg-bench (some cells failed) is not a failure here,
# since the failures are recorded and merge reports them. merge: 1 when a cell failed or has
# no record (a shard missing, say) or a row or claim regressed against PREV; 3 when every
# cell ran and nothing regressed but the comparison was not made or not made in full (a
# baseline due and missing, a profile or recipe that differs, rows short of seeds): the
# night fails, loudly, and its report may still become the baseline (baseline=yes on 0 and
# 3). The report is rendered first in every case. 2: bad arguments. Anything else: the
# code of the command that failed.
set -euo pipefail

USAGE="usage: nightly.sh plan|baselines|build|shard|merge|agree|history|site|accept|notify ... (see the script's header)"
RUNNER=${RPG_BENCH_RUNNER:-docker}
IMAGE=${RPG_BENCH_IMAGE:-rpg-bench:nightly}
GPUS=${RPG_BENCH_GPUS-all}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=(python3 "$HERE/nightly.py")
HISTORY_PY=(python3 "$HERE/nightly_history.py")
ISSUE_TITLE="Nightly reproduction is failing"

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

cmd_plan() {
    [[ $# -eq 3 ]] || die_usage "plan takes PROFILE SUITES ARGS (SUITES and ARGS may be empty)"
    "${PY[@]}" plan "$@"
}

cmd_baselines() {
    [[ $# -ge 3 ]] || die_usage "baselines takes PROFILE ARGS SUITE..."
    "${PY[@]}" baselines "$@"
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

cmd_merge() {
    local out="" prev="" if_missing="" compare=0 dirs=()
    while [[ $# -gt 0 ]]; do
        case $1 in
            --compare)
                [[ $# -ge 2 && -n $2 ]] || die_usage "--compare needs a folder"
                prev=$2 compare=1
                shift 2
                ;;
            --if-missing)
                [[ $# -ge 2 ]] || die_usage "--if-missing needs a reason (may be empty)"
                if_missing=$2
                shift 2
                ;;
            -*) die_usage "unknown option $1" ;;
            *)
                if [[ -z $out ]]; then out=$1; else dirs+=("$1"); fi
                shift
                ;;
        esac
    done
    [[ -n $out ]] || die_usage "merge needs OUT"
    [[ ${#dirs[@]} -gt 0 ]] || die_usage "merge needs at least one folder of shard runs"
    [[ $compare -eq 1 || -z $if_missing ]] || die_usage "--if-missing goes with --compare"
    local d
    for d in "${dirs[@]}"; do
        [[ -d $d ]] || die_usage "folder $d does not exist"
    done
    local rc=0
    if [[ $RUNNER == docker ]]; then
        merge_in_docker "$out" "$compare" "$prev" "$if_missing" "${dirs[@]}" || rc=$?
    else
        merge_local "$out" "$compare" "$prev" "$if_missing" "${dirs[@]}" || rc=$?
    fi
    # On the host, whatever ran the merge: what Actions reads.
    local summary="${out%/}.summary.md"
    if [[ -n ${GITHUB_STEP_SUMMARY:-} && -f $summary ]]; then cat "$summary" >>"$GITHUB_STEP_SUMMARY"; fi
    if [[ -n ${GITHUB_OUTPUT:-} ]]; then
        if [[ $rc -eq 0 || $rc -eq 3 ]]; then echo "baseline=yes" >>"$GITHUB_OUTPUT"; else echo "baseline=no" >>"$GITHUB_OUTPUT"; fi
    fi
    exit "$rc"
}

# Merging runs this same script inside the image, so the merge, the comparison and the
# checks run with the image's rpg-bench and Python, exactly as the tests run them locally.
merge_in_docker() {
    local out=$1 compare=$2 prev=$3 if_missing=$4
    shift 4
    local parent name
    parent=$(host_dir "$(dirname "$out")") || return
    name=$(basename "$out")
    local mounts=(-v "$HERE:/opt/nightly:ro" -v "$parent:/reports")
    local args=(merge "/reports/$name")
    if [[ $compare -eq 1 ]]; then
        if [[ -d $prev ]]; then mounts+=(-v "$(cd "$prev" && pwd):/prev/$(basename "$prev"):ro"); fi
        args+=(--compare "/prev/$(basename "$prev")" --if-missing "$if_missing")
    fi
    local i=0 s
    for s in "$@"; do
        i=$((i + 1))
        mounts+=(-v "$(cd "$s" && pwd):/shards/$i/$(basename "$s"):ro")
        args+=("/shards/$i/$(basename "$s")")
    done
    DIGEST=$(docker image inspect --format '{{.Id}}' "$IMAGE") || return
    docker_run -e RPG_BENCH_RUNNER=local -e RPG_BENCH_RUN_ID -e RPG_BENCH_RUN_URL -e GITHUB_ACTIONS \
        --entrypoint bash "${mounts[@]}" "$IMAGE" /opt/nightly/nightly.sh "${args[@]}"
}

# Functions called as `f || rc=$?` run without errexit (bash ignores set -e inside them), so
# the two below check every command themselves.

# rpg-bench report's exit 1 as the night reads it: 3 when OUT/compare.json says the
# comparison was not made (in full), 1 otherwise (a regression, or a report that crashed).
not_compared() {
    case $("${PY[@]}" outcome "$1") in
        incomplete | "not compared") return 3 ;;
        *) return 1 ;;
    esac
}

# Compares OUT with PREV; adds the night's comparison line to NOTES and returns 0 (compared
# clean, or nothing due), 1 (regressed) or 3 (not compared, or not in full).
compare_with() {
    local out=$1 compare=$2 prev=$3 if_missing=$4 rc=0 err why
    if [[ $compare -eq 0 ]]; then
        NOTES+=("no baseline given: nothing compared")
        return 0
    fi
    if [[ ! -d $prev/records ]]; then
        why=$if_missing
        if [[ -e $prev && -z $why ]]; then why="$prev holds no rpg-bench records"; fi
        if [[ -z $why ]]; then
            NOTES+=("no baseline at $prev, and none was due (a first night, or a run with extra arguments): nothing compared")
            echo "nightly.sh: ${NOTES[-1]}"
            return 0
        fi
        rpg-bench report "$out" --no-baseline "$why" || rc=$?
        [[ $rc -eq 1 ]] || return "$rc"
        not_compared "$out"
        return
    fi
    err=$(mktemp) || return
    rpg-bench report "$out" --compare "$prev" 2>"$err" || rc=$?
    cat "$err" >&2
    if [[ $rc -eq 2 ]]; then
        # Refused (another profile or recipe): said in one line; the night still gets its
        # cell check, and compare.json says why nothing was compared.
        why="refused: $(tail -n 1 "$err" | sed 's/^rpg-bench: error: //')"
        rc=0
        rpg-bench report "$out" --no-baseline "$why" || rc=$?
    fi
    if [[ $rc -eq 1 ]]; then
        rc=0
        not_compared "$out" || rc=$?
    fi
    rm -f "$err"
    return "$rc"
}

merge_local() {
    local out=$1 compare=$2 prev=$3 if_missing=$4
    shift 4
    local listing usable=() incomplete=0 rc=0
    NOTES=()
    listing=$("${PY[@]}" shards "$@") || incomplete=1
    if [[ -n $listing ]]; then mapfile -t usable <<<"$listing"; fi
    if [[ ${#usable[@]} -eq 0 ]]; then
        echo "nightly.sh: no shard run under $*: nothing to merge" >&2
        return 1
    fi
    if ((incomplete)); then NOTES+=("a shard's folder held no run: left out (the job log says which)"); fi
    # --partial: a missing shard still gets a report (rpg-bench merge names it); its cells
    # have no record, which the cell check below fails.
    rpg-bench merge --partial "${usable[@]}" --out "$out" || return
    "${PY[@]}" label "$out" || return
    local compared=0 cells=0 checked
    compare_with "$out" "$compare" "$prev" "$if_missing" || compared=$?
    case $compared in
        0 | 1 | 3) ;;
        *) return "$compared" ;;
    esac
    checked=$("${PY[@]}" cells "$out") || cells=1
    echo "$checked"
    NOTES+=("${checked#nightly.sh: }")
    echo "nightly.sh: report: $out/index.html"
    "${PY[@]}" summary "$out" "${out%/}.summary.md" "${NOTES[@]}" || return
    if ((cells || compared == 1)); then
        echo "nightly.sh: the nightly run of $out is not clean (see above)" >&2
        rc=1
    elif ((compared == 3)); then
        echo "nightly.sh: every cell ran and nothing regressed, but the comparison was not made in full (above): not a pass" >&2
        rc=3
    fi
    return "$rc"
}

# The full run's agreement with the week's last good night (the nightly profile's baseline):
# does the cheap profile still rank the methods, and judge the claims, as the paper's recipe
# does? Said, and warned about, never failed on.
cmd_agree() {
    [[ $# -eq 2 ]] || die_usage "agree takes OUT NIGHT"
    local out=$1 night=$2 rc=0
    [[ -d $out/records ]] || { echo "nightly.sh: $out holds no run: nothing to agree with" >&2; exit 1; }
    rm -f "$out/agree.json"
    if [[ -d $night/records ]]; then
        if [[ $RUNNER == docker ]]; then
            DIGEST=$(docker image inspect --format '{{.Id}}' "$IMAGE")
            docker_run -v "$(cd "$night" && pwd):/night:ro" -v "$(cd "$out" && pwd):/out:ro" "$IMAGE" \
                agree /night /out --json >"$out/agree.json.tmp" || rc=$?
        else
            rpg-bench agree "$night" "$out" --json >"$out/agree.json.tmp" || rc=$?
        fi
        if [[ $rc -eq 0 ]]; then mv "$out/agree.json.tmp" "$out/agree.json"; else rm -f "$out/agree.json.tmp"; fi
        [[ $rc -eq 0 ]] || echo "nightly.sh: rpg-bench agree exited $rc: the premise was not checked" >&2
    fi
    "${PY[@]}" agreement "$out"
}

# The history: each night's records kept where they outlive artifacts (STORE, the history
# branch's work tree in CI), and a site per suite and profile from its newest nights.
cmd_history() {
    local keep="" paths=()
    while [[ $# -gt 0 ]]; do
        case $1 in
            --keep)
                [[ $# -ge 2 && -n $2 ]] || die_usage "--keep needs a folder"
                keep=$2
                shift 2
                ;;
            -*) die_usage "unknown option $1" ;;
            *)
                paths+=("$1")
                shift
                ;;
        esac
    done
    [[ ${#paths[@]} -eq 2 ]] || die_usage "history takes [--keep DIR] STORE SITE"
    local store=${paths[0]} site=${paths[1]} branch=${RPG_BENCH_HISTORY_BRANCH:-} rc=0
    [[ -n $store && -n $site ]] || die_usage "STORE and SITE must not be empty"
    [[ ${RPG_BENCH_HISTORY_NIGHTS:-60} =~ ^[1-9][0-9]*$ ]] || die_usage "RPG_BENCH_HISTORY_NIGHTS must be a whole number of nights"
    if [[ -n $branch ]]; then
        [[ ! -e $store ]] || die_usage "$store exists: with RPG_BENCH_HISTORY_BRANCH, STORE is made a work tree of the branch"
        history_checkout "$store" "$branch" || exit 1
    fi
    mkdir -p "$store" "$site"
    if [[ $RUNNER == docker ]]; then
        history_in_docker "$keep" "$store" "$site" || rc=$?
    else
        history_local "$keep" "$store" "$site" || rc=$?
    fi
    if [[ -n $branch ]]; then history_push "$store" "$branch" || rc=1; fi
    exit "$rc"
}

# STORE as a work tree of BRANCH at origin's tip (HISTORY_PARENT), or, when origin has no
# such branch yet, an empty one whose first commit will have no parent.
history_checkout() {
    local store=$1 branch=$2 found=0
    HISTORY_PARENT=""
    git worktree prune || return
    git ls-remote --exit-code --heads origin "$branch" >/dev/null || found=$?
    case $found in
        0)
            git fetch --quiet --depth=1 origin "$branch" || return
            HISTORY_PARENT=$(git rev-parse FETCH_HEAD) || return
            git worktree add --quiet --detach "$store" "$HISTORY_PARENT" || return
            echo "nightly.sh: history: the $branch branch at ${HISTORY_PARENT:0:7} in $store"
            ;;
        2)
            git worktree add --quiet --detach "$store" HEAD || return
            git -C "$store" rm -r -f --quiet . || return
            echo "nightly.sh: history: origin has no $branch branch yet: this night starts it"
            ;;
        *)
            echo "nightly.sh: history: the $branch branch could not be looked up (git ls-remote exited $found): nothing kept" >&2
            return 1
            ;;
    esac
}

# Commits what STORE holds now on top of HISTORY_PARENT (plumbing: no local branch is made)
# and pushes it to BRANCH; nothing when nothing changed.
history_push() {
    local store=$1 branch=$2 tree commit parent=()
    git -C "$store" add -A . || return
    tree=$(git -C "$store" write-tree) || return
    if [[ -n $HISTORY_PARENT ]]; then
        if [[ $tree == "$(git -C "$store" rev-parse "$HISTORY_PARENT^{tree}")" ]]; then
            echo "nightly.sh: history: nothing new to keep on the $branch branch"
            return 0
        fi
        parent=(-p "$HISTORY_PARENT")
    elif [[ -z $(git -C "$store" ls-files) ]]; then
        echo "nightly.sh: history: nothing to keep: the $branch branch is not started"
        return 0
    fi
    commit=$(git -C "$store" -c user.name="github-actions[bot]" \
        -c user.email="41898282+github-actions[bot]@users.noreply.github.com" \
        commit-tree "$tree" "${parent[@]}" -m "Keep the nights of run ${RPG_BENCH_RUN_ID:-local}") || return
    if ! git -C "$store" push --quiet origin "$commit:refs/heads/$branch"; then
        echo "nightly.sh: history: tonight's nights could not be pushed to the $branch branch: they are not kept" >&2
        return 1
    fi
    echo "nightly.sh: history: kept on the $branch branch as ${commit:0:7}"
}

history_local() {
    local keep=$1 store=$2 site=$3 listing fields group nights built=0 failed=0
    if [[ -n $keep ]]; then "${HISTORY_PY[@]}" keep "$keep" "$store" || return; fi
    listing=$("${HISTORY_PY[@]}" nights "$store" "${RPG_BENCH_HISTORY_NIGHTS:-60}") || return
    if [[ -z $listing ]]; then
        echo "nightly.sh: history: no night kept in $store yet: no history to build"
        return 0
    fi
    while IFS=$'\t' read -r -a fields; do
        group=${fields[0]}
        nights=("${fields[@]:1}")
        if rpg-bench history "${nights[@]/#/$store/}" --out "$site/$group" </dev/null; then
            built=$((built + 1))
        else
            echo "nightly.sh: history: the history of $group could not be built (above)" >&2
            failed=1
        fi
    done <<<"$listing"
    echo "nightly.sh: history: $built sites in $site"
    return "$failed"
}

# The keeping and the building run this same script inside the image (its rpg-bench and
# Python), as merge does; the branch's git stays on the host.
history_in_docker() {
    local keep=$1 store=$2 site=$3
    local mounts=(-v "$HERE:/opt/nightly:ro" -v "$(cd "$store" && pwd):/store" -v "$(cd "$site" && pwd):/site")
    local args=(history)
    if [[ -n $keep && -d $keep ]]; then
        mounts+=(-v "$(cd "$keep" && pwd):/keep:ro")
        args+=(--keep /keep)
    elif [[ -n $keep ]]; then
        echo "nightly.sh: no report under $keep: nothing kept tonight"
    fi
    DIGEST=$(docker image inspect --format '{{.Id}}' "$IMAGE") || return
    docker_run -e RPG_BENCH_RUNNER=local -e RPG_BENCH_HISTORY_NIGHTS --entrypoint bash "${mounts[@]}" "$IMAGE" \
        /opt/nightly/nightly.sh "${args[@]}" /store /site
}

cmd_site() {
    [[ $# -eq 2 || $# -eq 3 ]] || die_usage "site takes DIR SITE [HISTORY]"
    [[ -d $1 ]] || { echo "nightly.sh: no report was downloaded ($1 does not exist): the site keeps the last one" >&2; exit 1; }
    "${PY[@]}" site "$@"
}

cmd_accept() {
    [[ $# -eq 4 ]] || die_usage "accept takes RUN SUITE PROFILE DEST"
    local run=$1 suite=$2 profile=$3 dest=$4
    [[ $run =~ ^[0-9]+$ ]] || die_usage "RUN must be a workflow run's id (digits), not '$run'"
    if ! gh run download "$run" --name "report-$suite" --dir "$dest"; then
        echo "nightly.sh: run $run has no report-$suite artifact to accept (expired, or that suite did not run)" >&2
        exit 1
    fi
    "${PY[@]}" accepted "$dest" "$run" "$suite" "$profile"
}

cmd_notify() {
    [[ $# -eq 2 && ($1 == passed || $1 == failed) ]] || die_usage "notify takes passed|failed RUN_URL"
    local result=$1 url=$2 number
    number=$(gh issue list --state open --search "\"$ISSUE_TITLE\" in:title" --json number,title \
        --jq "[.[] | select(.title == \"$ISSUE_TITLE\")][0].number // empty")
    if [[ $result == failed ]]; then
        local body="The nightly run $url failed: its job summaries say which suite, cell, regression or skip. This issue is closed by the first night that passes."
        if [[ -n $number ]]; then
            gh issue comment "$number" --body "$body"
            echo "nightly.sh: issue #$number updated"
        else
            gh issue create --title "$ISSUE_TITLE" --body "$body"
        fi
    elif [[ -n $number ]]; then
        gh issue close "$number" --comment "The nightly run $url passed."
        echo "nightly.sh: issue #$number closed"
    else
        echo "nightly.sh: the night passed; no open issue to close"
    fi
}

[[ $# -ge 1 ]] || die_usage "no subcommand"
subcommand=$1
shift
case $subcommand in
    plan) cmd_plan "$@" ;;
    baselines) cmd_baselines "$@" ;;
    build) cmd_build "$@" ;;
    shard) cmd_shard "$@" ;;
    merge) cmd_merge "$@" ;;
    agree) cmd_agree "$@" ;;
    history) cmd_history "$@" ;;
    site) cmd_site "$@" ;;
    accept) cmd_accept "$@" ;;
    notify) cmd_notify "$@" ;;
    *) die_usage "unknown subcommand '$subcommand'" ;;
esac
