# Every target creates or reuses .venv/ and installs requirements.txt into it first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Keeps glibc from handing big activation buffers back to the OS between steps (up to 2.4x on conv batches).
export MALLOC_MMAP_MAX_ := 0
export MALLOC_TRIM_THRESHOLD_ := 2147483647
export WANDB_MODE ?= offline
export TOKENIZERS_PARALLELISM ?= false

.PHONY: setup test test-all demo bench pretrain pretrain-draw serve clean

setup: $(STAMP)

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

demo: $(STAMP)
	$(PY) -m scripts.demo

bench: $(STAMP)
	scripts/install_tesseract.sh
	$(PY) -m scripts.bench

# make pretrain ARGS="--chunks 4 --publish": the shipped recognizer, trained in resumable chunks (scripts/pretrain.py)
pretrain: $(STAMP)
	scripts/install_pretrain_fonts.sh
	scripts/install_tesseract.sh
	$(PY) -m scripts.pretrain $(or $(ARGS),--chunks 2 --publish)

# make pretrain-draw ARGS="--minutes 85 --publish": the shipped drawing model, on crops it renders clean (scripts/pretrain_draw.py)
pretrain-draw: $(STAMP)
	scripts/install_pretrain_fonts.sh
	scripts/install_tesseract.sh
	$(PY) -m scripts.pretrain_draw $(or $(ARGS),--publish)

# make serve ARGS="--model DIR --draw-model DIR --port 8000": the local web page at http://127.0.0.1:8000/
serve: $(STAMP)
	$(PY) -m scripts.serve $(ARGS)

clean:
	rm -rf outputs/demo .pytest_cache
