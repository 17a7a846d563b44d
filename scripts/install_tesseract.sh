#!/usr/bin/env bash
# Tesseract 5 with its Korean, vertical Korean and English models: the independent judge of make pretrain-draw,
# make bench and make pretrain --tesseract (as root, where apt-get works). Idempotent.
set -euo pipefail
WITHOUT="those benchmarks print the recognizer's figures only" "$(dirname "$0")/apt_install.sh" \
    tesseract-ocr tesseract-ocr-kor tesseract-ocr-kor-vert tesseract-ocr-eng
