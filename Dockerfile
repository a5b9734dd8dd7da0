# evote: multi-stage image running `evote serve` as a non-root user.
# Build: docker build -t evote .   Run: docker run -p 8080:8080 -e EVOTE_DATABASE_URL=... evote
# Without EVOTE_DATABASE_URL the embedded PostgreSQL runs under /data (mount a volume there).

FROM python:3.11-slim AS build
WORKDIR /src
RUN python -m venv /opt/evote
COPY pyproject.toml README.md ./
COPY server ./server
COPY miniapp_api_spec ./miniapp_api_spec
RUN /opt/evote/bin/pip install --no-cache-dir .

FROM python:3.11-slim AS runtime
RUN useradd --create-home --uid 10001 evote \
 && mkdir -p /data && chown evote:evote /data
COPY --from=build /opt/evote /opt/evote
ENV PATH=/opt/evote/bin:$PATH \
    EVOTE_HOST=0.0.0.0 \
    EVOTE_PORT=8080 \
    EVOTE_DATA_DIR=/data \
    PYTHONUNBUFFERED=1
USER evote
WORKDIR /data
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)" || exit 1
ENTRYPOINT ["evote"]
CMD ["serve"]
