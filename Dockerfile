# syntax=docker/dockerfile:1
# One image for every Aetherius role: the role is the subcommand (watch, orchestrator, api, run…).
#
#   docker build -t aetherius/aetherius:0.1.0 .
#
# Stage 1 builds wheels for Aetherius and every dependency; stage 2 installs them with --no-index
# (nothing is fetched from the network there) into a virtualenv, and runs as uid 1000 on a root
# filesystem that Kubernetes mounts read-only: the only writable paths are the emptyDirs mounted at
# /tmp and /var/lib/aetherius.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --wheel-dir /wheels .

FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    VIRTUAL_ENV=/opt/aetherius \
    PATH=/opt/aetherius/bin:$PATH \
    HOME=/home/aetherius \
    TMPDIR=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    XDG_CONFIG_HOME=/tmp/.config \
    XDG_STATE_HOME=/tmp/.state \
    XDG_DATA_HOME=/var/lib/aetherius
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv --without-pip /opt/aetherius \
 && pip --python /opt/aetherius/bin/python install --no-index --find-links /wheels aetherius \
 && groupadd --gid 1000 aetherius \
 && useradd --uid 1000 --gid 1000 --no-create-home --home-dir /home/aetherius \
      --shell /usr/sbin/nologin aetherius \
 && install -d -m 0555 -o root -g root /home/aetherius \
 && install -d -m 0750 -o 1000 -g 1000 /var/lib/aetherius
WORKDIR /home/aetherius
USER 1000
EXPOSE 8080 9090
ENTRYPOINT ["aetherius"]
CMD ["--help"]
