# rpg-bench: docker run --gpus all -v DATA:/data -v OUT:/reports rpg-bench --suite cifar
# (docker stop -t 60 gives a GPU suite's running cells the time to write their checkpoints)
# torch 2.14.1's Linux wheels from PyPI carry their own CUDA libraries, so a slim Python
# base is enough: the host needs only the NVIDIA driver (and the container toolkit).
FROM python:3.11-slim-bookworm

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    RPG_BENCH_DATA_ROOT=/data \
    RPG_BENCH_REPORTS=/reports

# PID 1 is tini (Debian's), with rpg-bench its child. A container's PID 1 gets no default
# signal actions from the kernel and inherits every orphaned process. tini passes docker
# stop's SIGTERM (and Ctrl-C's SIGINT) on to rpg-bench, which stops as it does anywhere:
# each running cell writes its checkpoint, exit 143 (README, Reliability); and it reaps what
# a killed worker leaves. rpg-bench's own handler as PID 1 would stop cleanly too, but only
# once Python has started (a SIGTERM before that is ignored: docker stop waits its 10 s and
# kills), and no process would reap the orphans.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini=0.19.0-1+b3 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/rpg-bench
# Dependencies first, exactly as CI tested them (requirements.lock: every version and hash),
# so code edits reuse this layer; then the package alone, with the [gpu] and [report] extras
# already in the lock.
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY rpg ./rpg
COPY baselines ./baselines
COPY suite ./suite
RUN pip install --no-deps . && pip check

RUN useradd --create-home --uid 1000 bench \
    && mkdir -p /data /reports \
    && chown bench:bench /data /reports
USER 1000:1000
WORKDIR /home/bench
VOLUME ["/data", "/reports"]

# The image holds no .git: the build passes the commit (docker/nightly.sh build does), and
# every record's fingerprint carries it; docker run -e RPG_BENCH_IMAGE_DIGEST adds the image's.
ARG GIT_COMMIT=""
ENV RPG_BENCH_GIT_COMMIT=${GIT_COMMIT}

# -s: where tini is not PID 1 (docker run --init, as docker/nightly.sh runs it, puts
# Docker's own init there) it registers as the orphans' reaper instead of warning that it
# cannot reap them.
ENTRYPOINT ["/usr/bin/tini", "-s", "--", "rpg-bench"]
CMD ["--suite", "digits", "--no-open"]
