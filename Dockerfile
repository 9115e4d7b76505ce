# rnnserve: the three ONNX models behind LitServe. Serving dependencies only (no torch).
# Build: docker build -t rnnserve .    Run: docker run -p 8000:8000 rnnserve
# tests/test_container.py lints this file and replays its pip install and CMD in a fresh virtual environment.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 10001 --user-group rnnserve
WORKDIR /app

# Only the torch-free packages; pyproject.toml pins onnxruntime and litserve.
COPY pyproject.toml README.md /src/
COPY rnntext /src/rnntext
COPY service /src/service
RUN pip install --no-cache-dir /src && rm -rf /src

COPY artifacts /app/artifacts

ENV RNNSERVE_HOST=0.0.0.0 \
    RNNSERVE_PORT=8000 \
    RNNSERVE_ARTIFACTS=/app/artifacts

USER 10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=90s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)"]

# python is PID 1: it receives SIGTERM from `docker stop` and shuts the workers down (service/server.py).
CMD ["python", "-m", "service.server"]
