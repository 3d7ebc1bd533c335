#!/usr/bin/env bash
# The project's test command (README, and CI through .ci/run): every Rust
# test (the browser end-to-end tests among them, in headless Chromium), then
# the browser client's type check and unit tests.
#
# Needs redis-server and chromium (Debian: apt-get install redis-server
# chromium) and Node.js 20 with npm; the browser client's npm packages are
# installed from web/package-lock.json when web/node_modules is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d web/node_modules ]; then
  npm ci --prefix web --no-audit --no-fund
fi
cargo test --workspace --locked
npm --prefix web run --silent typecheck
npm --prefix web test
