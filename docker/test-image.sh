#!/usr/bin/env bash
# The image, tested: build it from the repository's Dockerfile, run the digits suite's smoke
# profile inside it as uid 1000 with /reports mounted, and check the report, that every
# record carries this commit, and that nothing in /reports was written as another user.
#
# With a Docker engine: docker build and docker run. Without one: podman/buildah (Debian's
# packages) with chroot isolation, on a stand-in base image, since such a machine may reach
# no image registry: a Debian bookworm root file system made by debootstrap (Python 3.11,
# pip, venv, from the apt mirror this machine's own sources name), imported with podman and
# given to the build in place of python:3.11-slim-bookworm. The stand-in is cached (see
# CACHE below), so later runs rebuild only the image.
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

reports=$(mktemp -d)
trap 'rm -rf "$reports"' EXIT
chmod 0777 "$reports"
start=$(date +%s)
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    echo "test-image: docker build"
    docker build --build-arg GIT_COMMIT="$COMMIT" -t "$TAG" . || fail "docker build"
    built=$(date +%s)
    docker run --rm --user 1000:1000 -v "$reports:/reports" "$TAG" --suite digits --profile smoke --no-open --no-progress ||
        fail "rpg-bench in the image"
else
    for tool in podman buildah debootstrap; do
        command -v "$tool" >/dev/null 2>&1 || skip "no Docker engine, and no $tool to build with (apt-get install podman buildah debootstrap)"
    done
    [ "$(id -u)" = 0 ] || skip "no Docker engine; podman with a debootstrapped base needs root here"
    standin
    echo "test-image: buildah build (chroot isolation, base $BASE)"
    buildah build --isolation chroot --from "$BASE" --build-arg GIT_COMMIT="$COMMIT" -t "$TAG" . ||
        fail "buildah build"
    built=$(date +%s)
    # podman run needs CAP_SYS_RESOURCE for its rlimits here; buildah run in chroot isolation
    # runs the image's command as its user with the folder mounted.
    container=$(buildah from "$TAG")
    trap 'buildah rm "$container" >/dev/null 2>&1 || true; rm -rf "$reports"' EXIT
    buildah run --isolation chroot --user 1000:1000 -v "$reports:/reports" "$container" -- \
        rpg-bench --suite digits --profile smoke --no-open --no-progress || fail "rpg-bench in the image"
fi
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
