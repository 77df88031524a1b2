# syntax=docker/dockerfile:1
#
# One image for every Mailwright service; the command picks the role:
#
#   docker build -t mailwright:dev .
#   docker run --rm -p 50051:50051 -p 8080:8080 mailwright:dev serve ingest
#   docker run --rm mailwright:dev migrate
#
# Stage `build` installs the whole uv workspace (SDK, services, plugins) from uv.lock into
# a virtual environment at its final path, non-editable, without dev dependencies. The
# final stage is the same Python base with that environment copied in and nothing else:
# no uv, no compilers, no sources. It runs as a fixed non-root user and writes only under
# /var/lib/mailwright and /tmp, so it runs with a read-only root filesystem when both are
# volumes (the Kubernetes manifests mount emptyDirs there). See docs/operations.md.
#
# Base images are pinned to exact versions; the uv version is the Makefile's UV_VERSION.
# Pin them by digest too where your registry policy asks for it (`docker buildx imagetools
# inspect python:3.11.14-slim-bookworm` prints it).

FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

FROM python:3.11.14-slim-bookworm AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/opt/mailwright
WORKDIR /src

# Third-party dependencies first, from the lock alone: this layer is rebuilt only when
# uv.lock or the workspace root changes, not on every code change.
COPY uv.lock pyproject.toml ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --all-packages --no-install-workspace

# Then the workspace members themselves, installed as wheels (not editable), so the
# environment does not need /src at run time.
COPY sdk sdk
COPY services services
COPY plugins plugins
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --all-packages --no-editable


FROM python:3.11.14-slim-bookworm AS runtime

ARG UID=10001
ARG GID=10001
RUN groupadd --system --gid "${GID}" mailwright \
 && useradd --system --uid "${UID}" --gid "${GID}" --no-create-home \
      --home-dir /var/lib/mailwright --shell /usr/sbin/nologin mailwright \
 && install -d -o "${UID}" -g "${GID}" -m 0750 /var/lib/mailwright

COPY --from=build /opt/mailwright /opt/mailwright

# Writable paths: the data directory (HOME too) and /tmp. Nothing else is written at run
# time; bytecode was compiled at build time.
ENV PATH=/opt/mailwright/bin:$PATH \
    VIRTUAL_ENV=/opt/mailwright \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/var/lib/mailwright \
    TMPDIR=/tmp \
    MAILWRIGHT_DATA_DIR=/var/lib/mailwright \
    MAILWRIGHT_GRPC_HOST=0.0.0.0 \
    MAILWRIGHT_HTTP_HOST=0.0.0.0 \
    MAILWRIGHT_LOG_FORMAT=json
VOLUME ["/var/lib/mailwright", "/tmp"]
WORKDIR /var/lib/mailwright

USER 10001:10001
EXPOSE 50051 8080
ENTRYPOINT ["mailwright"]
CMD ["serve", "ingest"]
