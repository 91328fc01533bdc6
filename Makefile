# hashguard: `make demo` and `make test` set everything up on a fresh machine with Python 3.11.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
BENCH_STAMP := $(VENV)/.installed-bench
FUZZ_STAMP := $(VENV)/.installed-fuzz
# Executions per fuzz target (fuzz/run.py): `make fuzz-parsers FUZZ_RUNS=10000` for a quick look.
FUZZ_RUNS ?= 1000000

.PHONY: install demo test test-hma fuzz fuzz-api fuzz-crash fuzz-parsers lint bench bench-hashing bench-matching bench-lists bench-parts bench-service bench-device bench-cli bench-video bench-hasher bench-hotline bench-takedown bench-exchanges bench-accuracy bench-scale bench-soak bench-uploads clean

install: $(STAMP)

$(STAMP): pyproject.toml scripts/ensure-system-packages
	@scripts/ensure-system-packages $(PYTHON)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev,ray,s3]'
	@touch $@

demo: install
	@$(BIN)/hashguard demo --serve

lint: install
	@$(BIN)/ruff check src tests bench fuzz
	@$(BIN)/ruff format --check src tests bench fuzz
	@$(BIN)/mypy
	@$(BIN)/lint-imports --no-cache --no-logo

# The PostgreSQL tests run against HASHGUARD_TEST_POSTGRES_URL, or else a throwaway server of this
# run's own, stopped at the end (scripts/with-postgresql); skipped, and said why, when none can start.
test: install lint
	@scripts/ensure-system-packages $(PYTHON) --test
	@PYTHON=$(PYTHON) scripts/with-postgresql $(BIN)/python -m pytest -n 2 --dist loadgroup

# HMA's own API tests, ported (tests/conformance/hma): a real `hashguard serve` per database,
# SQLite and PostgreSQL, as HMA clients call it. `make test` runs them too.
test-hma: install
	@PYTHON=$(PYTHON) scripts/with-postgresql $(BIN)/python -m pytest -n 2 --dist loadgroup tests/conformance/hma

# Everything that hunts for defects by generating input or killing processes (issue 23).
fuzz: fuzz-api fuzz-parsers fuzz-crash

# Schemathesis against a real `hashguard serve` (tests/api/test_schemathesis.py), with many more
# generated requests per operation than `make test` sends: HASHGUARD_FUZZ_EXAMPLES (default 300),
# and 10 times as many stateful chains along the document's links.
fuzz-api: install
	@HASHGUARD_FUZZ_EXAMPLES=$${HASHGUARD_FUZZ_EXAMPLES:-300} $(BIN)/python -m pytest -p no:cacheprovider tests/api/test_schemathesis.py

# Crash consistency (tests/support/crash.py): every command that changes state killed with SIGKILL
# at random moments and at its commits and renames, HASHGUARD_CRASH_TRIALS times (30) each on
# SQLite and PostgreSQL; prints the table, fails on any state between before and after.
fuzz-crash: install
	@PYTHON=$(PYTHON) HASHGUARD_CRASH_TRIALS=$${HASHGUARD_CRASH_TRIALS:-30} PYTHONPATH=tests \
		scripts/with-postgresql $(BIN)/python -m support.crash

$(FUZZ_STAMP): $(STAMP)
	@$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev,ray,s3,fuzz]'
	@touch $@

# atheris (coverage-guided) over every parser of untrusted input: fuzz/targets, seeds in
# fuzz/corpus, each crash kept in fuzz/regressions (which `make test` replays: tests/fuzz).
fuzz-parsers: $(FUZZ_STAMP)
	@$(BIN)/python fuzz/run.py --runs $(FUZZ_RUNS)

$(BENCH_STAMP): $(STAMP)
	@scripts/ensure-system-packages $(PYTHON) --bench
	@$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev,ray,s3,bench]'
	@touch $@

bench: bench-hashing bench-matching bench-lists bench-parts bench-service bench-device bench-cli bench-video bench-hasher bench-hotline bench-takedown bench-exchanges bench-accuracy bench-scale bench-uploads

bench-hashing: $(BENCH_STAMP)
	@$(BIN)/python bench/hashing.py

bench-matching: $(BENCH_STAMP)
	@$(BIN)/python bench/matching.py

bench-lists: $(BENCH_STAMP)
	@$(BIN)/python bench/lists.py

bench-parts: $(BENCH_STAMP)
	@$(BIN)/python bench/parts.py

bench-service: $(BENCH_STAMP)
	@$(BIN)/python bench/service.py

bench-device: $(BENCH_STAMP)
	@$(BIN)/python bench/device.py

bench-cli: $(BENCH_STAMP)
	@$(BIN)/python bench/cli.py

bench-video: $(BENCH_STAMP)
	@$(BIN)/python bench/video.py

bench-hotline: $(BENCH_STAMP)
	@$(BIN)/python bench/hotline.py

bench-takedown: $(BENCH_STAMP)
	@$(BIN)/python bench/takedown.py

bench-exchanges: $(BENCH_STAMP)
	@$(BIN)/python bench/exchanges.py

bench-accuracy: $(BENCH_STAMP)
	@$(BIN)/python bench/accuracy.py

bench-uploads: $(BENCH_STAMP)
	@$(BIN)/python bench/uploads.py

bench-scale: $(BENCH_STAMP)
	@PYTHON=$(PYTHON) scripts/with-postgresql $(BIN)/python bench/scale.py

# An hour at 1,000 match requests/s on 10M hashes with list changes and webhooks (not in `bench`).
bench-soak: $(BENCH_STAMP)
	@$(BIN)/python bench/soak.py

bench-hasher: $(BENCH_STAMP)
	@scripts/ensure-system-packages $(PYTHON) --test
	@$(BIN)/python bench/hasher.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
