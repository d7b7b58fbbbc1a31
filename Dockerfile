# Dynamolog services image (router, storage node, auto-admin). Kafka runs in its own container.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY dynamolog ./dynamolog
COPY services ./services
COPY schemas ./schemas
RUN pip install --no-cache-dir -e .
ENV PYTHONUNBUFFERED=1
EXPOSE 8000
CMD ["python", "-m", "services.router", "--host", "0.0.0.0", "--port", "8000"]
