# One image for every VP Mission Control service; docker-compose.yml picks the
# console script (vp-registry, vp-dispatcher, vp-worker) per service and
# configures it through environment variables only.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Only what `pip install .` needs (README.md is the package's readme); the
# runtime dependencies come from pyproject.toml, never the [dev] extra.
WORKDIR /build
COPY pyproject.toml README.md ./
COPY services ./services
RUN pip install . && cd / && rm -rf /build

# Non-root. /var/lib/vp holds the shared worker workspaces and the handoff
# root; compose's named volumes take this ownership on first use.
RUN groupadd --system --gid 10001 vp \
    && useradd --system --uid 10001 --gid vp --home-dir /var/lib/vp --no-create-home --shell /usr/sbin/nologin vp \
    && mkdir -p /var/lib/vp/workspaces /var/lib/vp/handoff \
    && chown -R vp:vp /var/lib/vp
USER vp:vp
WORKDIR /var/lib/vp

# gRPC: registry 50051, dispatcher 50052; Prometheus metrics: 9101-9104.
EXPOSE 50051 50052 9101 9102 9103 9104
CMD ["vp-registry"]
