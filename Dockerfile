# shadowpi: caching proxy and private index for Python packages.
# Build: docker build -t shadowpi .
# Run:   docker run -d -p 8080:8080 -v shadowpi-data:/data shadowpi
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY proxy ./proxy
# With the `scale` extra (asyncpg, aiobotocore): the same image runs alone or as a replica on PostgreSQL + S3.
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[scale]"

FROM python:3.12-slim
LABEL org.opencontainers.image.title="shadowpi" \
      org.opencontainers.image.description="Caching proxy and private overlay index for Python packages"
# SHADOWPI_SERVER_DATA_DIR: every shadowpi command in the container (docker exec … token create) uses the volume.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SHADOWPI_SERVER_DATA_DIR=/data
COPY --from=build /wheels /wheels
# Every wheel built above: shadowpi, its dependencies and the `scale` extra's.
RUN pip install --no-cache-dir --no-index /wheels/*.whl \
    && rm -rf /wheels \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin shadowpi \
    && mkdir -p /data /etc/shadowpi \
    && chown shadowpi:shadowpi /data
USER 10001
VOLUME ["/data"]
EXPOSE 8080
# Liveness through the same endpoint orchestrators use; python is in the image, curl is not.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=4).status != 200)"]
# Configure with a mounted file (--config /etc/shadowpi/shadowpi.toml), SHADOWPI_<SECTION>_<KEY> environment
# variables (e.g. SHADOWPI_UPSTREAM_URL), or flags appended to `docker run`.
ENTRYPOINT ["shadowpi", "serve", "--host", "0.0.0.0", "--port", "8080", "--data-dir", "/data"]
