#!/bin/sh
# Runs the go command for the plugin's backend (pkg/, Magefile.go) from plugin/. Go 1.26 or later;
# machines of this project have it in /usr/local/go, which a fresh shell may not have on its PATH.
set -eu
PATH="$PATH:/usr/local/go/bin"
export PATH
if ! command -v go >/dev/null 2>&1; then
  echo "go not found: the plugin's backend needs Go 1.26 or later (https://go.dev/doc/install) on PATH or in /usr/local/go" >&2
  exit 1
fi
cd "$(dirname "$0")/.."
exec go "$@"
