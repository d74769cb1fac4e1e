# The two commands a newcomer needs: `make run` and `make test`. Everything else is a part of them.
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
PYTEST := $(UV) run --frozen pytest
STATE_DIR ?= .state

.PHONY: help install deploy-tools client-tools run test test-unit test-integration test-e2e test-browser test-deploy test-chaos test-images images proto proto-check lint bench bench-console bench-acquisition bench-search bench-support bench-cross-sell bench-churn bench-report-builder bench-report-mail token

help:
	@echo "make run    - install and start the whole CRM on this machine (gateway on http://localhost:8080)"
	@echo "make test   - install and run every test layer (unit, integration, e2e, deploy, chaos, images)"
	@echo "make token ROLE=sales_rep [AS=rep-moshe TEAM=team-media] - a development bearer token for make run"
	@echo "make test-unit | test-integration | test-e2e | test-browser | test-deploy | test-chaos | test-images | images | proto | lint | bench"

install:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	@$(UV) sync --frozen --quiet
	@scripts/system-packages.sh

# helm, kubectl, checkov, promtool and prometheus for the deploy layer and the Prometheus e2e test.
deploy-tools:
	@scripts/deploy-tools.sh

# openapi-typescript and tsc (locked) for the generated-clients e2e test.
client-tools:
	@cd tests/clients && npm ci --no-audit --no-fund --silent

run: install
	$(UV) run --frozen python -m crm_devstack run --state-dir $(STATE_DIR)

# The image layer runs on its own after the others (it builds every image first).
test: install deploy-tools client-tools
	PATH="$(CURDIR)/.tools/bin:$$PATH" $(PYTEST) -m "unit or integration or e2e or deploy or chaos" -q
	@$(MAKE) --no-print-directory test-images

test-unit: install
	$(PYTEST) -m unit -q

test-integration: install
	$(PYTEST) -m integration -q

test-e2e: install deploy-tools client-tools
	PATH="$(CURDIR)/.tools/bin:$$PATH" $(PYTEST) -m e2e -q

# The console in headless Chromium (Playwright; the distribution's chromium from make install).
test-browser: install client-tools
	$(PYTEST) -m browser -q

test-deploy: install deploy-tools
	PATH="$(CURDIR)/.tools/bin:$$PATH" $(PYTEST) -m deploy -q

# The service images on a base built from Debian's packages (mmdebstrap, podman; no daemon, no
# registry): sizes, SBOMs and report.json in .state/images (docs/operations.md, "Images").
images: install
	@scripts/image-tools.sh
	$(UV) run --frozen python -m crm_devstack.images build

# Builds every image as `make images` does, checks what each holds, then runs the whole system from
# them under bubblewrap and sends a lead through it (tests/images).
test-images: install
	@scripts/image-tools.sh
	$(PYTEST) -m images -q

# A few minutes: kill -9 under load (docs/reliability.md); CRM_CHAOS_SEED=<seed> replays a run.
test-chaos: install
	$(PYTEST) -m chaos -q -s

# Prints only the token: TOKEN=$$(make -s token ROLE=sales_rep). Roles: admin, sales_manager,
# sales_rep, orders_clerk, service_agent, marketing. (AS, not USER: make sees the login's USER.)
# AS is also make's built-in name of the assembler ("as"): only an AS given by the caller counts.
TOKEN_USER = $(if $(filter command line environment,$(origin AS)),--user $(AS),)
token: install
	@$(UV) run --frozen --quiet crm-admin token --role $(or $(ROLE),admin) $(TOKEN_USER) $(if $(TEAM),--team $(TEAM),) --key-file $(STATE_DIR)/dev-issuer/signing-key.pem

proto: install
	$(UV) run --frozen python scripts/gen_proto.py

proto-check: install
	$(UV) run --frozen python scripts/gen_proto.py --check
	npx --yes @bufbuild/buf lint

# Layer rules in .importlinter; mypy runs once per source tree, so one failing tree hides no other.
lint: install
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen lint-imports --no-cache
	@status=0; for src in libs/kit/src libs/devstack/src libs/admin/src services/*/src; do \
		echo "mypy --strict $$src"; \
		$(UV) run --frozen mypy --strict --ignore-missing-imports $$src || status=1; \
	done; exit $$status

bench: install
	$(UV) run --frozen python bench/run.py $(if $(FULL),--full,) $(if $(PROFILE),--profile,)

# The console in Chromium: first screen, list pages, a 1,000-card board (bench/README.md, ~3 min).
bench-console: install
	$(UV) run --frozen python bench/console.py --out bench/results/console-latest.json

# Issue 18's search: a name in any spelling, a phone in any format, at 100k and 1M customers (~6 min).
bench-search: install
	$(UV) run --frozen python bench/search.py $(if $(SIZES),--sizes $(SIZES),)

# Issue 20's cross-sell: learning the rules from 50k and 200k buyers, and one customer's suggestions (~3 min).
bench-cross-sell: install
	$(UV) run --frozen python bench/cross_sell.py $(if $(SIZES),--sizes $(SIZES),)

# Issue 20's churn model: relearning it and scoring every customer at 20k and 100k customers (SIZES=1000000 for the million).
bench-churn: install
	$(UV) run --frozen python bench/churn.py $(if $(SIZES),--sizes $(SIZES),)

# Issue 20's report builder: its common shapes at 1M leads (SIZES=1000000,10000000 for the issue's 10M).
bench-report-builder: install
	$(UV) run --frozen python bench/report_builder.py $(if $(SIZES),--sizes $(SIZES),)

# Issue 20's scheduled reports: rendering the e-mailed chart and PDF for 1, 30 and 200 rows (~1 min).
bench-report-mail: install
	$(UV) run --frozen python bench/report_mail.py

# Issue 18's service desk: ticket lists and board at 100k and 500k tickets, the SLA scan over the open ones (~25 min, most of it the all-due scan).
bench-support: install
	$(UV) run --frozen python bench/support.py $(if $(SIZES),--sizes $(SIZES),)

# Issue #7's benchmark: duplicate check at 10k/100k/1M existing leads, capture at 200/s (~10 min).
bench-acquisition: install
	$(UV) run --frozen python bench/acquisition.py
