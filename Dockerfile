# rnnserve: the three ONNX models behind LitServe. Serving dependencies only (no torch).
# Build: docker build -t rnnserve .    Run: docker run --read-only --tmpfs /tmp -p 8000:8000 rnnserve
# `make image` builds it (with buildah on a stand-in base where there is no Docker engine) and `make image-test` runs
# it as the README's container section does; tests/test_container.py lints this file and replays its install.
FROM python:3.11-slim

# OCI labels; `make image` passes the version from pyproject.toml and the git revision.
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=unknown
LABEL org.opencontainers.image.title="rnnserve" \
      org.opencontainers.image.description="Three small LSTM text models (generation, sentiment, NER) served by LitServe with onnxruntime" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="NOASSERTION"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 10001 --user-group rnnserve
WORKDIR /app

# Only the torch-free packages; pyproject.toml pins onnxruntime and litserve. In the same layer, so that nothing of it
# stays in the image: the packages' own test suites go (17 MB, mostly numpy's), as the official Python images remove
# the standard library's, and uvloop's library its debug symbols (13.6 MB, 1.6 MB stripped; only uvloop's: strip breaks
# the libraries that auditwheel repaired, such as numpy's OpenBLAS).
# tini is PID 1: it hands SIGTERM to the server and reaps orphaned processes, which Python as PID 1 would not.
COPY pyproject.toml README.md /src/
COPY rnntext /src/rnntext
COPY service /src/service
# hadolint ignore=DL3008
RUN pip install --no-cache-dir /src \
    && rm -rf /src \
    && apt-get update \
    && apt-get install -y --no-install-recommends tini binutils \
    && find /usr/local/lib/python3* -depth -type d -name tests -exec rm -rf {} + \
    && strip --strip-unneeded /usr/local/lib/python3*/*-packages/uvloop/*.so \
    && apt-get purge -y --auto-remove binutils \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* /var/log/apt /var/log/dpkg.log

COPY artifacts /app/artifacts

ENV RNNSERVE_HOST=0.0.0.0 \
    RNNSERVE_PORT=8000 \
    RNNSERVE_ARTIFACTS=/app/artifacts

USER 10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=90s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)"]

# Everything the server writes goes to /tmp (metrics files, Python's temporary files): the root filesystem may be
# read-only. SIGTERM (docker stop) reaches the server through tini and stops every worker (service/server.py).
ENTRYPOINT ["tini", "--"]
CMD ["python", "-m", "service.server"]
