# The two quick-start commands are `make run` and `make test`; both set up .venv on their own.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATABASE_URL ?= sqlite://data/mailaccounts.sqlite3
SPF_SUITE_CACHE := .cache/pyspf-2.0.14/test

.PHONY: run test lint schema spf-suite clean

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

clean:
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache
