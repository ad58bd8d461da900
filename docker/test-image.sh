#!/usr/bin/env bash
# The image, tested: build it from the repository's Dockerfile, run the digits suite's smoke
# profile inside it as uid 1000 with /reports mounted, stop it mid-training as docker stop
# does (exit 143, checkpoints written), run it again to its end, and check the report, that
# it resumed, that every record carries this commit, and that nothing in /reports was
# written as another user.
#
# With a Docker engine: docker build and docker run. Without one: podman/buildah (Debian's
# packages) with chroot isolation, on a stand-in base image, since such a machine may reach
# no image registry: a Debian bookworm root file system made by debootstrap (Python 3.11,
# pip, venv, from the apt mirror this machine's own sources name), imported with podman and
# given to the build in place of python:3.11-slim-bookworm. The stand-in is cached (see
# CACHE below), so later runs rebuild only the image. buildah keeps no layer cache here, so
# each build is a whole new image of about 7 GB: the test removes it when it ends, and its
# build's working container even when the build fails (--force-rm, which buildah takes
# only beside --no-cache or --layers), so runs leave nothing behind.
#
# Exit 0: the image passed, or this machine cannot build images (one line says why);
# 1: it was built and failed a check. RPG_BENCH_IMAGE_REQUIRED=1 turns the skip into a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

TAG=localhost/rpg-bench:test
BASE=localhost/rpg-bench-base:bookworm
CACHE=${RPG_BENCH_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rpg-bench/image}
COMMIT=$(git rev-parse HEAD 2>/dev/null || echo "")

skip() {
    echo "test-image: skipped: $*"
    if [ "${RPG_BENCH_IMAGE_REQUIRED:-0}" = 1 ]; then exit 1; fi
    exit 0
}
fail() {
    echo "test-image: FAILED: $*" >&2
    exit 1
}

# The apt mirror this machine already uses: the first URI of a deb822 source or a
# one-line "deb" entry (never a host written here).
mirror() {
    local uri
    uri=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -n 1 || true)
    if [ -z "$uri" ]; then
        uri=$(grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}' |
            grep -v security | head -n 1 || true)
    fi
    echo "$uri"
}

# The stand-in for python:3.11-slim-bookworm, imported into podman's store once.
standin() {
    if podman image exists "$BASE"; then return; fi
    mkdir -p "$CACHE"
    local tarball="$CACHE/bookworm-python.tar"
    if [ ! -s "$tarball" ]; then
        local url root
        url=$(mirror)
        [ -n "$url" ] || skip "no apt mirror in /etc/apt/sources* to debootstrap a base image from"
        root=$(mktemp -d)
        echo "test-image: debootstrap bookworm (minbase, python3) from the machine's apt mirror into $root"
        debootstrap --variant=minbase --include=python3,python3-pip,python3-venv,ca-certificates \
            bookworm "$root" "$url" >"$CACHE/debootstrap.log" 2>&1 ||
            skip "debootstrap failed (see $CACHE/debootstrap.log)"
        # As in the python image: `python` and `pip`, and pip free to install system-wide.
        ln -sf python3 "$root/usr/bin/python"
        ln -sf pip3 "$root/usr/bin/pip"
        rm -f "$root"/usr/lib/python3*/EXTERNALLY-MANAGED
        # The host's certificate bundle, where its pip needs one to reach the registry.
        cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/host-ca.crt"
        tar -C "$root" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
        rm -rf "$root"
    fi
    podman import --change "ENV PIP_CERT=/etc/ssl/certs/host-ca.crt" \
        --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
        "$tarball" "$BASE" >/dev/null
}

# buildah's commit holds the image's one big layer (the CUDA wheels, ~7 GB) about three times
# at once: the working container's files, the layer's tar in TMPDIR, the stored layer.
# Measured on the project's machine (disk use sampled each second): 26 GB above where the build
# started, at its peak; one more to spare.
# RPG_BENCH_IMAGE_NEED_GB sets another figure (a store on a disk that compresses, say).
NEED_GB=${RPG_BENCH_IMAGE_NEED_GB:-27}
free_gb() { df -P -k "$1" | awk 'NR == 2 {printf "%d", $4 / 1048576}'; }

reports=$(mktemp -d)
container=""
cleanup() {
    if [ -n "$container" ]; then
        buildah umount "$container" >/dev/null 2>&1 || true
        buildah rm "$container" >/dev/null 2>&1 || true
    fi
    if [ "${built_here:-0}" = 1 ]; then buildah rmi "$TAG" >/dev/null 2>&1 || true; fi
    rm -rf "$reports"
}
trap cleanup EXIT
chmod 0777 "$reports"
RUN=(--suite digits --profile smoke --no-open --no-progress)
start=$(date +%s)
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    echo "test-image: docker build"
    docker build --build-arg GIT_COMMIT="$COMMIT" -t "$TAG" . || fail "docker build"
    built=$(date +%s)
    start_run() { cid=$(docker run -d --user 1000:1000 -v "$reports:/reports" "$TAG" "${RUN[@]}"); }
    stop_run() {
        docker stop -t 10 "$cid" >/dev/null
        code=$(docker wait "$cid")
        docker rm "$cid" >/dev/null
    }
    run_to_end() { docker run --rm --user 1000:1000 -v "$reports:/reports" "$TAG" "${RUN[@]}"; }
else
    for tool in podman buildah debootstrap unshare; do
        command -v "$tool" >/dev/null 2>&1 || skip "no Docker engine, and no $tool to build with (apt-get install podman buildah debootstrap)"
    done
    [ "$(id -u)" = 0 ] || skip "no Docker engine; podman with a debootstrapped base needs root here"
    standin
    # A test image a killed run left behind (its cleanup never ran) goes first.
    if podman image exists "$TAG"; then buildah rmi "$TAG" >/dev/null; fi
    store=$(podman info --format '{{.Store.GraphRoot}}')
    free=$(free_gb "$store")
    [ "$free" -ge "$NEED_GB" ] || skip "the build needs ${NEED_GB} GB free in $store; $free GB are free"
    echo "test-image: buildah build (chroot isolation, base $BASE; $free GB free in $store)"
    built_here=1
    buildah build --isolation chroot --no-cache --force-rm --from "$BASE" --build-arg GIT_COMMIT="$COMMIT" \
        -t "$TAG" . || fail "buildah build"
    built=$(date +%s)
    # podman run needs CAP_SYS_RESOURCE for its rlimits here, and buildah run in chroot
    # isolation makes no PID namespace: the image's own entrypoint, user, folder and
    # environment are run here by hand as PID 1 of a PID namespace of their own, as docker
    # run does, in the image's root file system with the folder mounted at /reports.
    container=$(buildah from "$TAG")
    root=$(buildah mount "$container")
    inspect() { buildah inspect --type image --format "$1" "$TAG"; }
    mapfile -t entry < <(inspect '{{range .OCIv1.Config.Entrypoint}}{{println .}}{{end}}' | sed '/^$/d')
    mapfile -t envs < <(inspect '{{range .OCIv1.Config.Env}}{{println .}}{{end}}' | sed '/^$/d')
    user=$(inspect '{{.OCIv1.Config.User}}')
    workdir=$(inspect '{{.OCIv1.Config.WorkingDir}}')
    home=$(awk -F: -v uid="${user%%:*}" '$3 == uid {print $6}' "$root/etc/passwd")
    # Replaces the calling (sub)shell with unshare, whose one child is the container's PID 1
    # (the mounts live in its own mount namespace). Single quotes: the inner shells expand.
    in_container() {
        # shellcheck disable=SC2016
        exec unshare --pid --fork --mount --mount-proc="$root/proc" -- sh -c '
            root=$1 reports=$2 user=$3; shift 3
            mount --bind "$reports" "$root/reports" && mount --rbind /dev "$root/dev" &&
                exec chroot --userspec="$user" "$root" /usr/bin/env -i "$@"' \
            sh "$root" "$reports" "$user" "HOME=$home" "${envs[@]}" \
            /bin/sh -c 'cd "$1" && shift && exec "$@"' sh "$workdir" "${entry[@]}" "$@"
    }
    start_run() {
        (in_container "${RUN[@]}") &
        runner=$!
    }
    # docker stop's: SIGTERM to PID 1, and SIGKILL if it is still there 10 s later.
    stop_run() {
        local pid1 tick
        pid1=$(pgrep -P "$runner")
        kill -TERM "$pid1"
        for tick in $(seq 1 100); do
            kill -0 "$runner" 2>/dev/null || break
            sleep 0.1
        done
        [ "$tick" -lt 100 ] || kill -KILL "$pid1" 2>/dev/null || true
        code=0
        wait "$runner" || code=$?
    }
    run_to_end() { (in_container "${RUN[@]}"); }
fi

# docker stop mid-training: SIGTERM to the container's PID 1, tini, which passes it on to
# rpg-bench. Within docker stop's 10 s the run must exit 143 with the running cells'
# checkpoints written; the same command then resumes it, and the checks below are its.
start_run
for _ in $(seq 1 1200); do
    compgen -G "$reports/digits/checkpoints/*.pt" >/dev/null && break
    sleep 0.5
done
compgen -G "$reports/digits/checkpoints/*.pt" >/dev/null || fail "no cell checkpointed within 10 minutes"
sent=$(date +%s)
stop_run
[ "$code" = 143 ] || fail "docker stop: rpg-bench exited $code, not 143 (a clean stop within docker stop's 10 s)"
echo "test-image: docker stop: exit 143 after $(($(date +%s) - sent)) s," \
    "$(compgen -G "$reports/digits/checkpoints/*.pt" | wc -l) checkpoints"
run_to_end || fail "rpg-bench in the image"
grep -qs "resumed from" "$reports"/digits/logs/*.log || fail "the run after docker stop did not resume a checkpoint"
ran=$(date +%s)

# What the run inside wrote: a report, records of this commit, all of it uid 1000's.
[ -s "$reports/digits/index.html" ] || fail "no report at /reports/digits/index.html"
python3 - "$reports/digits" "$COMMIT" <<'EOF' || fail "the records"
import json, pathlib, sys
out, commit = pathlib.Path(sys.argv[1]), sys.argv[2]
records = [json.loads(p.read_text()) for p in sorted((out / "records").glob("*.json"))]
assert records, "no records"
assert all(r["status"] == "ok" for r in records), [r.get("error") for r in records]
commits = {r["env"]["git_commit"] for r in records}
assert commits == {commit or None}, f"records carry commit {commits}, not {commit}"
print(f"test-image: {len(records)} records, all ok, commit {commit[:12]}")
EOF
others=$(find "$reports" ! -uid 1000 ! -path "$reports" | head -n 5)
[ -z "$others" ] || fail "written as another user than 1000: $others"
echo "test-image: passed (build $((built - start)) s, run $((ran - built)) s)"
