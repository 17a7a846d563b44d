#!/usr/bin/env bash
# The broad font set of make pretrain (scripts/broad_fonts.py): pip fonts into the project's .venv, and the
# Debian Hangul fonts (as root, where apt-get works). Idempotent; make pretrain runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m pip install -q -r requirements-pretrain.txt
DEBIAN_FONTS="fonts-alee fonts-lexi-gulim fonts-lexi-saebom fonts-naver-d2coding fonts-woowa-bm fonts-wqy-microhei"
# shellcheck disable=SC2086  # one word per package
WITHOUT="fewer Korean fonts and no held-out Korean family" scripts/apt_install.sh $DEBIAN_FONTS
