# The two quick-start commands are `make run` and `make test`; both set up .venv on their own.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATABASE_URL ?= sqlite://data/mailaccounts.sqlite3
SPF_SUITE_CACHE := .cache/pyspf-2.0.14/test

.PHONY: run test lint schema texts screenshots spf-suite bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

data/secret.key:
	mkdir -p data
	umask 077 && $(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(48))' > $@

run: $(STAMP) data/secret.key
	DATABASE_URL=$(DATABASE_URL) $(BIN)/mailaccounts migrate
	DATABASE_URL=$(DATABASE_URL) SECRET_KEY="$$(cat data/secret.key)" $(BIN)/mailaccounts serve --demo

# The RFC 7208 conformance suite: ../shared/conformance/spf when present, else pyspf's sdist from PyPI.
spf-suite: $(STAMP)
	@if [ ! -f ../shared/conformance/spf/rfc7208-tests.yml ] && [ ! -f $(SPF_SUITE_CACHE)/rfc7208-tests.yml ] \
	   && [ -f tests/domaincheck/fetch_suite.py ]; then \
	  $(BIN)/python tests/domaincheck/fetch_suite.py $(SPF_SUITE_CACHE) || echo "could not fetch the SPF suite"; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

test: $(STAMP) spf-suite lint
	$(BIN)/pytest

schema: $(STAMP)
	$(BIN)/python -c 'from schema import schema; print(schema.as_str())' > schema.graphql

# Re-extract every text (texts/locale/messages.pot) and update the .po files, as [tool.babel.*] in
# pyproject.toml says; then translate what is new or fuzzy in texts/locale/de/LC_MESSAGES/messages.po.
# pybabel stamps the time into every catalogue; the line is dropped so that an unchanged source leaves no diff.
texts: $(STAMP)
	$(BIN)/pybabel -q extract
	$(BIN)/pybabel -q update
	sed -i '/^"POT-Creation-Date: /d' texts/locale/messages.pot texts/locale/*/LC_MESSAGES/messages.po

# The README's and docs/DASHBOARD.md's screenshots, from the last run of tests/dashboard/test_layout.py.
SHOTS := test-artifacts/dashboard/layout
screenshots:
	@test -f $(SHOTS)/accounts-spf-summary-1280-screen.png || { echo "run: .venv/bin/pytest tests/dashboard/test_layout.py"; exit 1; }
	mkdir -p docs/screenshots
	cp $(SHOTS)/accounts-spf-summary-1280-screen.png docs/screenshots/accounts-1280.png
	cp $(SHOTS)/accounts-spf-summary-390-screen.png docs/screenshots/accounts-390.png
	cp $(SHOTS)/account-spf-problem-1280-screen.png docs/screenshots/account-1280.png
	cp $(SHOTS)/account-spf-problem-390-screen.png docs/screenshots/account-390.png
	cp $(SHOTS)/message-390-screen.png docs/screenshots/message-390.png

# The benchmarks of docs/PERFORMANCE.md, one after the other: about 17 minutes on this machine's 2 cores.
# Bulk SPF through the running service vs pyspf (about 5 minutes per database: pyspf at 20 ms per DNS answer,
# run serially, is most of it; PostgreSQL at BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/postgres),
# the SPF engine alone (domaincheck only, about 20 seconds), SMTP intake (about a minute per database), a merge of a
# million messages as one transaction and as the batched job (about a minute; seeding the messages is most of it).
BENCH_SPF_VENV := .cache/bench-spf
$(BENCH_SPF_VENV)/.installed: bench/spf/requirements.txt
	$(PYTHON) -m venv $(BENCH_SPF_VENV)
	$(BENCH_SPF_VENV)/bin/pip install --quiet -r bench/spf/requirements.txt
	touch $@

bench: $(STAMP) $(BENCH_SPF_VENV)/.installed
	$(BIN)/python -m bench.spf.product --db sqlite
	$(BIN)/python -m bench.spf.product --db postgres
	$(BIN)/python bench/spf/bench_spf.py --skip-baselines --output .cache/bench-spf-engine.json
	$(BIN)/python -m bench.smtp.run --db sqlite
	$(BIN)/python -m bench.smtp.run --db postgres
	$(BIN)/python -m bench.merge.run --db postgres --messages 1000000
	$(BIN)/python -m bench.merge.run --db sqlite --messages 200000

clean:
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache
