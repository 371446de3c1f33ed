# alert-router container image.
#
#   docker build -t alert-router:0.1.0 .
#   docker build --build-arg BASE_IMAGE=my-registry/python:3.11-bookworm -t alert-router:0.1.0 .
#   docker run -p 8080:8080 -v alert-router-state:/var/lib/alert-router alert-router:0.1.0
#
# The build stage installs the dependencies only from the hashed lock files (and builds the
# package's wheel with a hashed setuptools) through scripts/build-venv.sh, the same script
# tests/test_shipping.py runs to prove the locks are complete. The final stage gets the
# virtualenv and nothing else: no compiler, no pip cache, no source tree.
#
# BASE_IMAGE is any Debian-like image with Python 3.11+ as `python3` (venv module included),
# groupadd and useradd: scripts/check_image.sh builds on a Debian bookworm made by mmdebstrap.
ARG BASE_IMAGE=python:3.11.14-slim-bookworm

FROM ${BASE_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
COPY requirements.lock requirements-build.lock pyproject.toml README.md ./
COPY scripts/build-venv.sh scripts/
COPY router/ router/
COPY templates/ templates/
RUN sh scripts/build-venv.sh /src /opt/venv


FROM ${BASE_IMAGE}

LABEL org.opencontainers.image.title="alert-router" \
      org.opencontainers.image.description="Routes Alertmanager and Argo CD notifications to Slack, email and webhooks" \
      org.opencontainers.image.version="0.1.0"

# ROUTER_STATE_URL is read by the shipped routes.yaml: the SQLite file lives on the volume.
# ROUTER_HOST: a container's loopback is unreachable from outside it, so the image listens
# on every interface even without credentials (serve then logs, and check prints, which
# surfaces answer anyone; the Helm chart sets webhook credentials).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ROUTER_HOST=0.0.0.0 \
    ROUTER_STATE_URL=sqlite:////var/lib/alert-router/alert-router.db

RUN groupadd --system --gid 10001 alert-router \
    && useradd --system --uid 10001 --gid alert-router --no-create-home \
       --home-dir /var/lib/alert-router --shell /usr/sbin/nologin alert-router \
    && mkdir -p /etc/alert-router /var/lib/alert-router \
    && chown alert-router:alert-router /var/lib/alert-router

COPY --from=build /opt/venv /opt/venv
COPY routes.yaml /etc/alert-router/routes.yaml

USER 10001:10001
WORKDIR /var/lib/alert-router
VOLUME ["/var/lib/alert-router"]
EXPOSE 8080

# No curl in a slim image: the venv's Python asks /healthz (ROUTER_PORT if it was changed).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('ROUTER_PORT', '8080'), timeout=4)"]

ENTRYPOINT ["alert-router"]
CMD ["serve", "--config", "/etc/alert-router/routes.yaml"]
