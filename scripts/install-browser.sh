#!/usr/bin/env bash
# Install the headless browser that tests/test_report_html.py drives to render the HTML report.
# Idempotent: does nothing when chromium is already on PATH. Uses the distribution's packages
# only (never downloads a browser build). Needs root for apt-get; otherwise says what to run.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
    echo "install-browser: chromium present ($(command -v chromium))"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-browser: chromium is missing; as root run: apt-get install -y chromium chromium-driver" >&2
    echo "install-browser: without it the HTML rendering tests are skipped (unless BACKPROP_VERIFY_REQUIRE_BROWSER=1)" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-browser: chromium is missing and there is no apt-get here; install chromium by hand" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
echo "install-browser: installed $(chromium --version 2>/dev/null || echo chromium)"
