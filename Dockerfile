# Dynamolog services image: the router (with the console and the REST gateway, whose front-end files
# are vendored under services/router/gateway/static), the storage node, the auto-admin, the indexer,
# the backup service, RepOut and RepIn, and the demo load generator; also `dynamolog regions add`, which
# links two regions (docker-compose.yml runs a second region). Kafka runs in its own containers.
# tests/unit/test_compose.py checks it against the launcher.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY dynamolog ./dynamolog
COPY services ./services
COPY schemas ./schemas
RUN pip install --no-cache-dir -e .
# the router's and storage node's hot modules compiled with mypyc (docs/decisions/0059); gcc only
# for the build
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && dynamolog native build \
    && apt-get purge -y --auto-remove gcc libc6-dev && rm -rf /var/lib/apt/lists/*
ENV PYTHONUNBUFFERED=1
EXPOSE 8000
CMD ["python", "-m", "services.router", "--host", "0.0.0.0", "--port", "8000"]
