# Sourced by the scripts: puts cargo on PATH when rustup installed it.
if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
fi
cd "$(dirname "${BASH_SOURCE[0]}")/.."
