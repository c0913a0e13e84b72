# One image for every calbook process: migrate, api, worker, beat (see docker-compose.yml).
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    CALBOOK_DATA_DIR=/var/lib/calbook

WORKDIR /app

# Dependencies first, so code changes do not reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir -p booking_engine connectors worker api config \
    && pip install --upgrade pip \
    && pip install .

COPY booking_engine ./booking_engine
COPY connectors ./connectors
COPY worker ./worker
COPY api ./api
COPY config ./config
RUN pip install --no-deps . \
    && useradd --system --uid 10001 --home-dir /var/lib/calbook --create-home calbook

USER calbook
EXPOSE 8000 9101
ENTRYPOINT ["calbook"]
CMD ["api"]
