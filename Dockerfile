# One image, four commands: `consumer run`, `enforcer run`, `notifier run`, `console run` (and `db migrate` for
# the one-off migration task). The consumer needs Java 17 for the KCL MultiLangDaemon.

# The console's browser scripts (htmx, Chart.js), exactly as console/web/package-lock.json pins them; no install
# scripts run. Only their dist/ folders reach the image, where the console serves them (never from a CDN).
FROM node:24-bookworm-slim AS web
WORKDIR /web
COPY console/web/package.json console/web/package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund

FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY requirements ./requirements
COPY bedrockctl ./bedrockctl
COPY audit ./audit
COPY bedrock_usage ./bedrock_usage
COPY console ./console
COPY consumer ./consumer
COPY enforcement ./enforcement
COPY notifier ./notifier
COPY producer_config ./producer_config
COPY provisioning ./provisioning
RUN pip install --no-cache-dir --prefix=/install . \
 && pip install --no-cache-dir --prefix=/install --no-deps --require-hashes -r requirements/kcl.txt

FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /app bedrock
COPY --from=build /install /usr/local
# bedrock_usage.migrate reads the migrations beside the package's parent (the repository's sql/).
COPY sql /usr/local/lib/python3.11/site-packages/sql
# …and the shipped price file beside them (loaded into a new database; `bedrockctl prices import` it later).
COPY infra/prices /usr/local/lib/python3.11/site-packages/infra/prices
# The console finds its scripts beside its package (console/web/node_modules/…).
COPY --from=web /web/node_modules/htmx.org/dist /usr/local/lib/python3.11/site-packages/console/web/node_modules/htmx.org/dist
COPY --from=web /web/node_modules/chart.js/dist /usr/local/lib/python3.11/site-packages/console/web/node_modules/chart.js/dist
WORKDIR /app
USER bedrock
ENV PYTHONUNBUFFERED=1
EXPOSE 9101 9102 9103 8080
ENTRYPOINT ["bedrockctl"]
CMD ["--help"]
