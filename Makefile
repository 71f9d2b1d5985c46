# sipmote: the two commands a newcomer needs are `make demo` and `make test`.
# Every target sets itself up: .venv is created or refreshed from pyproject.toml as needed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEBS := sip-tester kamailio baresip espeak-ng sox iproute2

.PHONY: help venv debs test test-quick lint bench demo fuzz netlab soak firmware bundle romfs deploy flash clean

help:
	@echo "make demo    run the simulated device calling the relay (the main job)"
	@echo "make test    set up and run the whole test suite (CPython + MicroPython unix port)"
	@echo "make lint    ruff"
	@echo "make bench   benchmark figures (ratios against references measured in the same run)"
	@echo "make firmware|flash|deploy BOARD=...  put sipmote on a board (docs/flashing.md)"
	@echo "make bundle ARCH=xtensawin|rv32imc|x64, make romfs BOARD=...  .mpy bundles, ROMFS"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# Debian packages for the interop tests: installed when we are root and apt is there;
# elsewhere the tests that need them skip, naming the package.
debs:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  fi; \
	else echo "not root or no apt: interop tests will skip where their peers are missing"; fi

test: venv debs
	host_tools/netns-run $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .

bench: venv
	host_tools/netns-run $(BIN)/python tests/bench/run.py

# Long fuzzing, bounded: atheris FUZZ_SECONDS per target, then hypothesis and MicroPython runs.
FUZZ_SECONDS ?= 60
fuzz: venv
	host_tools/netns-run $(BIN)/python tests/fuzz/run_fuzz.py --seconds $(FUZZ_SECONDS)

# Calls across impaired links (root: network namespaces), figures per profile; NETLAB_ARGS
# e.g. "--seconds 60 --profiles loss5,outage2s --peers device".
netlab: venv
	host_tools/netns-run $(BIN)/python tests/netlab/run_netlab.py $(NETLAB_ARGS)

# Hundreds of sequential calls (device -> relay -> fake AI, then SIPp -> relay), each side's
# heap, RSS, sockets, tasks and RTP ports flat from first to last; SOAK_ARGS e.g.
# "--device-calls 500 --relay-calls 0". About 15 minutes with the defaults.
soak: venv
	host_tools/netns-run $(BIN)/python tests/soak/run_soak.py $(SOAK_ARGS)

# The offline demo runs in the loopback-only namespace; with OPENAI_API_KEY it needs the network.
demo: venv
	@if [ -n "$$OPENAI_API_KEY" ]; then $(BIN)/sipmote demo $(DEMO_ARGS); \
	else host_tools/netns-run $(BIN)/sipmote demo $(DEMO_ARGS); fi

# Firmware and deployment (docs/flashing.md). BOARD is a folder of boards/, ARCH one of
# xtensawin (ESP32, S3), rv32imc (C3, C6), x64 (unix port); PORT defaults to the one board
# plugged in. The logic is in host_tools/sipmote/firmware and sipmote/device.
need = @test -n "$($(1))" || { echo "make $@ needs $(1)=$(2)"; exit 2; }

firmware: venv
	$(call need,BOARD,<name> (atom_echo esp32_devkit esp32s3_devkitc))
	$(BIN)/python -m sipmote.firmware firmware --board $(BOARD) $(if $(MICROPY_DIR),--micropython $(MICROPY_DIR))

bundle: venv
	$(call need,ARCH,xtensawin|rv32imc|x64)
	$(BIN)/python -m sipmote.firmware bundle --arch $(ARCH)

romfs: venv
	$(call need,BOARD,<name> (atom_echo esp32_devkit esp32s3_devkitc))
	$(BIN)/python -m sipmote.firmware romfs --board $(BOARD)

deploy: venv
	$(BIN)/sipmote device deploy $(if $(PORT),--port $(PORT)) $(if $(BOARD),--board $(BOARD)) $(DEPLOY_ARGS)

flash: venv
	$(BIN)/sipmote device flash $(if $(PORT),--port $(PORT)) $(if $(FIRMWARE),--firmware $(FIRMWARE)) $(if $(BOARD),--board $(BOARD)) $(if $(CHIP),--chip $(CHIP))

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache .mypy_cache
