#!/usr/bin/env bash
# Install the Debian packages among "$@" that are missing, as root where apt-get works; otherwise print a note
# naming them and what goes without them ($WITHOUT). Shared by scripts/install_*.sh. Idempotent.
#   WITHOUT="the recognizer's figures only" scripts/apt_install.sh tesseract-ocr tesseract-ocr-kor
set -euo pipefail
missing=$(for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
[ -z "$missing" ] && exit 0
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    # shellcheck disable=SC2086  # one word per package
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
else
    echo "note: install the Debian packages" $missing "(as root); without them: ${WITHOUT:-less}" >&2
fi
