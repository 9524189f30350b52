#!/usr/bin/env bash
# Tools `make lint` needs beyond the venv: promtool (Debian package `prometheus`) to check the alert
# rules and the scrape config. Installed with apt when missing.
set -euo pipefail
if ! command -v promtool >/dev/null 2>&1; then
  echo "installing promtool (Debian package prometheus)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
