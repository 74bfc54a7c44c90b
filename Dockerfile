# One image for every process: the web app (the default command), the scheduler and the workers (compose.yaml
# gives each its command). The wheel is built in a throwaway stage, so the image holds no sources or build tools.
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md scheduler.py ./
COPY newsletter newsletter
COPY subscribers subscribers
COPY templates templates
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /wheels /wheels
RUN pip install /wheels/*.whl && rm -rf /wheels \
    && useradd --system --uid 10001 --create-home --home-dir /var/lib/newsletter newsletter \
    && install -d -o newsletter -g newsletter /var/lib/newsletter/outbox
USER newsletter
WORKDIR /var/lib/newsletter
EXPOSE 8000 9100
# The process answers; /readyz (database and schema) is for the load balancer, not for restarting the container.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/healthz', timeout=4)"]
# On its own (docker run), the image migrates and then serves; compose runs the migration once, as its own service.
CMD ["sh", "-c", "newsletter db upgrade && exec newsletter serve --host ${HOST:-0.0.0.0} --port ${PORT:-8000} --workers ${WEB_WORKERS:-2}"]
