#!/usr/bin/env bash
# The HTML report's browser test drives Debian's Chromium (tests/reports/test_html_browser.py): install it, with
# its driver and a CJK font for the screenshots, when missing. Non-interactive and quiet; needs root (CI is root).
set -euo pipefail

fonts="$(fc-list 2>/dev/null || true)"
if [ ! -x /usr/bin/chromium ] || ! grep -qi "wenquanyi\|noto sans cjk" <<<"$fonts"; then
  echo "installing chromium, chromium-driver and fonts-wqy-microhei (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq -o Dpkg::Use-Pty=0 chromium chromium-driver fonts-wqy-microhei >/dev/null
fi
/usr/bin/chromium --version 2>/dev/null || { echo "chromium did not install" >&2; exit 1; }
