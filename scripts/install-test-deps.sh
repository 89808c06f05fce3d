#!/usr/bin/env bash
# install-test-deps.sh: installs everything the test suite needs on a fresh
# Debian 12 machine with Go, idempotently. Safe to run again and again.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)

# Debian packages. Each is installed only when missing.
debs=(fuse3 rsync acl attr git)
missing=()
for p in "${debs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# npm packages (pinned in tools/package.json and package-lock.json), installed
# into tools/node_modules: Azurite, which the Azure storage tests start.
if [ -f "$here/tools/package.json" ]; then
  stamp="$here/tools/node_modules/.installed"
  if [ ! -f "$stamp" ] || [ "$here/tools/package.json" -nt "$stamp" ] ||
     { [ -f "$here/tools/package-lock.json" ] && [ "$here/tools/package-lock.json" -nt "$stamp" ]; }; then
    (cd "$here/tools" && npm install --no-audit --no-fund --loglevel=error && touch "$stamp")
  fi
fi
