#!/usr/bin/env bash
# Installs what the VS Code end-to-end test needs: code-server (VS Code 1.100.3's web build)
# and puppeteer-core, which drives Debian's Chromium (apt package `chromium`) and downloads no
# browser. code-server's install fetches ripgrep from GitHub, which this machine cannot reach:
# its cache is seeded from Debian's rg (apt package `ripgrep`) instead.
set -euo pipefail
cd "$(dirname "$0")"
command -v rg >/dev/null || { echo "setup.sh: ripgrep is missing: apt-get install ripgrep" >&2; exit 2; }
cache="${TMPDIR:-/tmp}/vscode-ripgrep-cache-1.15.11"
tarball="$cache/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz"
if [ ! -f "$tarball" ]; then
  mkdir -p "$cache"
  staging=$(mktemp -d)
  cp "$(command -v rg)" "$staging/rg"
  tar czf "$tarball" -C "$staging" rg
  rm -r "$staging"
fi
# code-server's postinstall builds its bundled VS Code's native modules: npm 11 runs it because
# package.json's allowScripts names it, and it refuses to run as root unless unsafe-perm is set.
npm_config_yes=true npm_config_unsafe_perm=true npm ci --no-audit --no-fund
test -x node_modules/.bin/code-server || { echo "setup.sh: code-server did not install" >&2; exit 2; }
