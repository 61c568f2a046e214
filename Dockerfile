# otel-langsmith gateway: OTLP traces in (HTTP on 4318, gRPC on 4317), LangSmith runs out.
#
#   docker build -t otel-langsmith-gateway .
#   docker run -d --name otel-langsmith-gateway --restart unless-stopped --stop-timeout 40 \
#     -p 4318:4318 -p 4317:4317 -e LANGSMITH_API_KEY -e LANGSMITH_PROJECT=my-project \
#     -v otel-langsmith-spool:/var/spool/otel-langsmith otel-langsmith-gateway
#
# Settings: the exporter's environment variables (docs/gateway.md). --stop-timeout covers the
# 30-second drain SIGTERM starts.
FROM python:3.12-slim

RUN useradd --system --uid 10001 --no-create-home gateway \
    && install -d -m 0700 -o gateway /var/spool/otel-langsmith

WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY otel_langsmith ./otel_langsmith
RUN pip install --no-cache-dir '.[gateway]' && rm -rf /src

USER gateway
ENV OTEL_EXPORTER_LANGSMITH_SPOOL_DIR=/var/spool/otel-langsmith \
    PYTHONUNBUFFERED=1
VOLUME /var/spool/otel-langsmith
EXPOSE 4318 4317
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=3s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:4318/healthz', timeout=2)"
ENTRYPOINT ["otel-langsmith", "gateway", "--host", "0.0.0.0", "--port", "4318", "--grpc-port", "4317"]
