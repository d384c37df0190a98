# One image for every Python service; docker-compose picks the command.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
COPY schemas ./schemas
RUN pip install --no-cache-dir .
RUN useradd --create-home --uid 10001 app
USER app
