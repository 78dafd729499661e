# imr-packet: two commands set everything up: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Debian packages the service needs at run time and the tests need to look at outputs.
SYSTEM_PACKAGES := libreoffice-writer-nogui poppler-utils qpdf fonts-dejavu-core chromium chromium-driver
# Fonts for the language-assistance taglines in their own scripts (packet/mailings/taglines.py SCRIPT_FONTS).
# OCR of pages without a text layer (packet/intake/ocr.py): Tesseract with English, Spanish and orientation data.
SYSTEM_PACKAGES += tesseract-ocr tesseract-ocr-eng tesseract-ocr-spa tesseract-ocr-osd
SYSTEM_PACKAGES += fonts-noto-core fonts-wqy-zenhei fonts-ipafont-gothic fonts-nanum fonts-tlwg-loma-ttf fonts-khmeros
TAGLINE_FONTS := /usr/share/fonts/truetype/noto/NotoSansGurmukhi-Regular.ttf /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc \
  /usr/share/fonts/opentype/ipafont-gothic/ipag.ttf /usr/share/fonts/truetype/nanum/NanumGothic.ttf \
  /usr/share/fonts/truetype/tlwg/Loma.ttf /usr/share/fonts/truetype/khmeros/KhmerOS.ttf
SYSTEM_COMMANDS := soffice pdftotext pdftoppm qpdf tesseract

# apt-get says once, on a machine without apt-utils, that debconf delays configuring; that line alone
# is left out, everything else apt-get says (and its exit status) comes through.
APT_NOISE := debconf: delaying package configuration, since apt-utils is not installed

.PHONY: setup system-deps bytecode run test test-fast bench bench-deps soak fuzz clean

setup: system-deps $(VENV)/.installed bytecode

system-deps:
	@missing=""; for c in $(SYSTEM_COMMANDS); do command -v $$c >/dev/null 2>&1 || missing="$$missing $$c"; done; \
	[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing="$$missing fonts"; \
	for lang in eng spa osd; do ls /usr/share/tesseract-ocr/*/tessdata/$$lang.traineddata >/dev/null 2>&1 || missing="$$missing tesseract-$$lang"; done; \
	for f in $(TAGLINE_FONTS); do [ -f $$f ] || missing="$$missing $$(basename $$f)"; done; \
	if [ "$$(id -u)" = "0" ]; then for c in chromium chromedriver; do command -v $$c >/dev/null 2>&1 || missing="$$missing $$c"; done; fi; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing system packages (missing:$$missing)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(SYSTEM_PACKAGES) >/dev/null 2> >(grep -v -F '$(APT_NOISE)' >&2); \
	  else \
	    echo "Missing:$$missing. Install them with: sudo apt-get install --no-install-recommends $(SYSTEM_PACKAGES)"; exit 1; \
	  fi; \
	fi

# A machine whose pip configuration names a local package index that lacks some projects makes pip
# warn once per project ("Location ... is ignored: it is neither a file nor a directory"); that
# warning alone is left out, everything else pip says (and its exit status) comes through.
PIP_NOISE := is ignored: it is neither a file nor a directory
$(VENV)/.installed: pyproject.toml constraints.txt
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	@echo "Installing imr-packet and its Python packages into $(VENV) (pins: constraints.txt)"
	@$(BIN)/python -m pip install -q --upgrade pip 2> >(grep -v -F '$(PIP_NOISE)' >&2)
	@$(BIN)/python -m pip install -q -c constraints.txt -e '.[test]' 2> >(grep -v -F '$(PIP_NOISE)' >&2)
	@touch $@

# The package's compiled modules, written now: every command-line run, conversion and render worker is
# a fresh interpreter, and where PYTHONDONTWRITEBYTECODE is set (or __pycache__ is read-only) each one
# would compile the modules it imports again (about 0.1 s of CPU per process). Only changed files are
# compiled; a stale file is never used (Python checks each source's time and size).
# The mailings' and the board's templates are compiled the same way (packet.mailings.templates
# COMPILED_DIR): about 0.05 s of CPU a fresh build would spend compiling them. The package's own
# templates, whatever an imr.toml or IMR_* says (a folder of a plan's own is compiled where it is used).
# The tagline fonts' subsets are made the same way (packet/mailings/fontsubset.py): the CJK fonts cut to
# the taglines' characters, which every process that draws a tagline would otherwise make or read whole.
COMPILED := packet
bytecode: $(VENV)/.installed
	@$(BIN)/python -m compileall -q -j 0 $(COMPILED)
	@$(BIN)/python -c "from packet.config import Config; from packet.service.board import write_compiled; write_compiled(Config())"

# The watcher and, once a desk account exists, the review desk beside it (Ctrl-C stops both).
run: setup
	@desk=""; if $(BIN)/imr-packet user list 2>/dev/null | grep -q .; then \
	  $(BIN)/imr-packet serve & desk=$$!; \
	else \
	  echo "Review desk: not started (no account yet). Create one with: $(BIN)/imr-packet user add NAME --role supervisor"; \
	fi; \
	trap '[ -n "$$desk" ] && kill $$desk 2>/dev/null' EXIT; \
	$(BIN)/imr-packet watch

# Three test processes (pytest-xdist) on the two cores: part of many tests is waiting (a time limit
# running out, a file settling, a browser), which a third process fills. A test file stays on one
# process (--dist loadfile), so module-scoped fixtures (built cases, the corpus pass) are made once.
# Files go out in the order tests/conftest.py collects them, longest first (tests/durations.json);
# --no-loadscope-reorder keeps pytest-xdist from putting the files with the most tests first instead,
# which left the fuzz and load tests to the end, one process busy and the others done.
# `make test-fast` leaves out the tests marked slow (kill, corpus, fuzz, load), for a quick check;
# TEST_WORKERS=0 runs everything in one process.
TEST_WORKERS ?= 3
PYTEST_ARGS = -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder
test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# 2,000 mutated PDFs and images through whole case builds (bench/fuzz.py); figures in bench/fuzz.json.
fuzz: setup
	$(BIN)/python -m bench.fuzz --count 2000 --json bench/fuzz.json

test-fast: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS) -m "not slow"

# Every row of issues 7 and 17, the 20-minute soak included (about 50 minutes on the 2-core machine).
bench: setup bench-deps
	$(BIN)/python -m bench

# The OCR row's reference, `ocrmypdf --jobs 2` (Debian's package brings Ghostscript); the service never
# runs it. Without it (not root) the row measures Tesseract alone and says the goal was not measured.
BENCH_PACKAGES := ocrmypdf
bench-deps:
	@command -v ocrmypdf >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing the benchmark's reference tools: $(BENCH_PACKAGES)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(BENCH_PACKAGES) >/dev/null 2> >(grep -v -F '$(APT_NOISE)' >&2); \
	  else \
	    echo "The OCR row's reference is not installed; for it: sudo apt-get install --no-install-recommends $(BENCH_PACKAGES)"; \
	  fi; }

soak: setup
	$(BIN)/python -m bench.soak

clean:
	rm -rf $(VENV) *.egg-info
