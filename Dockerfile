# Every service's image, from the repository root:
#   docker build --build-arg SERVICE=leads -t crm-leads .
# SERVICE is one of console, customers, gateway, leads, notifications, orders, reporting, sales,
# support. BASE_IMAGE is any Debian bookworm with its Python 3.11 (`make images` builds one from
# Debian's own packages); UV_IMAGE supplies only the uv binary to the build stage.
ARG BASE_IMAGE=python:3.11-slim-bookworm
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9

FROM ${UV_IMAGE} AS uv

FROM ${BASE_IMAGE} AS build
ARG SERVICE
COPY --from=uv /uv /usr/local/bin/uv
# The system certificate store (ca-certificates), so a build behind an inspecting proxy can add its CA.
ENV UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1 UV_PYTHON_DOWNLOADS=never UV_PROJECT_ENVIRONMENT=/app/.venv \
    UV_SYSTEM_CERTS=1
WORKDIR /src
COPY pyproject.toml uv.lock ./
COPY libs/kit libs/kit
COPY libs/contracts libs/contracts
COPY services/${SERVICE} services/${SERVICE}
# Only this service and what it imports (contracts and the chassis), non-editable: the code
# (migrations included) is copied into the venv; no source tree, tests or dev dependencies reach
# the final image, nor uv's world-writable lock file. crm-service is the service's own command.
RUN --mount=type=cache,target=/root/.cache/uv \
    test -n "${SERVICE}" \
    && uv sync --frozen --no-dev --no-editable --package "crm-${SERVICE}" \
    && rm /app/.venv/.lock \
    && ln -s "crm-${SERVICE}" /app/.venv/bin/crm-service

FROM ${BASE_IMAGE}
ARG SERVICE VERSION=0.1.0 REVISION=unknown SOURCE=https://github.com/example/crm PORTS="50051 9100"
LABEL org.opencontainers.image.title="crm-${SERVICE}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.version="${VERSION}"
# sales' quote PDFs and reporting's mailed reports (WeasyPrint): Pango + HarfBuzz for shaping and
# subsetting, and the Noto faces the stylesheets name (Latin, Hebrew, Arabic script); the rest of
# fonts-noto-core (~40 MB) goes. Versions come from the Debian release the base is (bookworm);
# pinning each package too would break the build at every Debian security update of it.
# hadolint ignore=DL3008
RUN if [ "${SERVICE}" = sales ] || [ "${SERVICE}" = reporting ]; then \
        apt-get update \
        && apt-get install -y --no-install-recommends \
            libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-noto-core \
        && find /usr/share/fonts/truetype/noto -type f ! -name 'NotoSans-*' ! -name 'NotoSansHebrew-*' \
            ! -name 'NotoSansArabic-*' ! -name 'NotoNaskhArabic-*' -delete \
        && rm -rf /var/lib/apt/lists/*; \
    fi
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin crm
WORKDIR /app
# Owned by root and read-only to the runtime user: the process cannot change its own code.
COPY --from=build /app/.venv /app/.venv
# The console reads CRM_CONSOLE_* only, the others CRM_*; production refuses development secrets.
ENV PATH=/app/.venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    CRM_ENVIRONMENT=production CRM_CONSOLE_ENVIRONMENT=production
USER 10001
# gRPC and metrics for the backends; the gateway 8080 and 9100, the console 8081 and 9108.
EXPOSE ${PORTS}
ENTRYPOINT ["crm-service"]
CMD ["serve"]
