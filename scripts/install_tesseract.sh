#!/usr/bin/env bash
# Tesseract 5 with its Korean, vertical Korean and English models: the independent judge of make pretrain-draw,
# make bench and make pretrain --tesseract (as root, where apt-get works). Idempotent; without it those
# benchmarks print the recognizer's figures only.
set -euo pipefail
PACKAGES="tesseract-ocr tesseract-ocr-kor tesseract-ocr-kor-vert tesseract-ocr-eng"
missing=$(for p in $PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
if [ -n "$missing" ]; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
    else
        echo "note: install the Debian packages $missing (as root) to have Tesseract judge beside the recognizer" >&2
    fi
fi
