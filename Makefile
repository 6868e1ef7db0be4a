# softdpu: `make run` sets up and runs the default experiment (with plots); `make test` sets up
# and runs the tests. Both create .venv and install the package (editable) on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test campaign sanitize bench bench-record bench-compare golden clean

$(STAMP): pyproject.toml setup.py
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -c "from dataplane.build import rebuild_inplace; rebuild_inplace()"
	$(BIN)/softdpu run incast

test: $(STAMP)
	$(BIN)/python -m pytest -q

# generated inputs (scenario dicts from the JSON Schema, pcap filters, command lines) for 10 minutes,
# each case under a 60 s timeout: counts in results/campaign/summary.json, findings' inputs in findings.jsonl
campaign: $(STAMP)
	$(BIN)/python -c "from dataplane.build import rebuild_inplace; rebuild_inplace()"
	$(BIN)/python -m tests.campaign --minutes 10 --out results/campaign

# rewrite the golden scenarios' stored results (tests/golden/): only on purpose, and say why in the commit
golden: $(STAMP)
	$(BIN)/python -c "from dataplane.build import rebuild_inplace; rebuild_inplace()"
	$(BIN)/python tests/golden/scenarios.py

# the data plane built with AddressSanitizer + UndefinedBehaviorSanitizer, under the tests
sanitize: $(STAMP)
	SOFTDPU_SANITIZE=1 $(BIN)/python -c "from dataplane.build import rebuild_inplace; rebuild_inplace()"
	SOFTDPU_SANITIZE=1 LD_PRELOAD=$$(gcc -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 \
	  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 $(BIN)/python -m pytest -q -m "not plots and not rss"
	$(BIN)/python -c "from dataplane.build import rebuild_inplace; rebuild_inplace()"

bench: $(STAMP)
	$(BIN)/softdpu bench permutation-1024 --cc-impl c --cc-impl python
	$(BIN)/softdpu bench cc-callback

# the benchmark history (benchmarks/history.jsonl): permutation-1024 and `softdpu bench scale` up to
# k = BENCH_MAX_K (16 by default; BENCH_MAX_K=32 for the full set, ~1 min more), one line per
# benchmark with the commit, date, machine, compiler and flags; BENCH_NOTE says how the machine was
BENCH_MAX_K ?= 16
BENCH_NOTE ?=
bench-record: $(STAMP)
	$(BIN)/python -c "from dataplane.build import rebuild_inplace; rebuild_inplace()"
	$(BIN)/softdpu bench record --max-k $(BENCH_MAX_K) --note "$(BENCH_NOTE)"

# the last entries of the history per benchmark, each figure with its ratio to the entry before
bench-compare: $(STAMP)
	$(BIN)/softdpu bench history

clean:
	rm -rf build $(VENV) dataplane/_native*.so dataplane/_native.flags *.egg-info results
