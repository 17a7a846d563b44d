#!/usr/bin/env bash
# The broad font set of make pretrain (scripts/broad_fonts.py): pip fonts into the project's .venv, and the
# Debian Hangul fonts (as root, where apt-get works). Idempotent; make pretrain runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m pip install -q -r requirements-pretrain.txt
DEBIAN_FONTS="fonts-alee fonts-lexi-gulim fonts-lexi-saebom fonts-naver-d2coding fonts-woowa-bm fonts-wqy-microhei"
missing=$(for p in $DEBIAN_FONTS; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
if [ -n "$missing" ]; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
    else
        echo "note: install the Debian packages $missing (as root) for the Hangul fonts; pretraining without them" \
             "has fewer Korean fonts and no held-out Korean family" >&2
    fi
fi
