#!/usr/bin/env bash
# One command on a fresh Debian machine: install everything, then run the demo.
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
"$here/install.sh"
"$here/demo.sh"
