# Shared set-up for scripts/demo and scripts/test: a virtualenv with Sentio's dependencies and the
# Debian packages it needs. Sourced, not run.
set -euo pipefail
REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_DIR"
PYTHON="${PYTHON:-python3}"
VENV="${SENTIO_VENV:-$REPO_DIR/.venv}"

log() { printf '\033[1m[sentio]\033[0m %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root to run: $*"; return 1; fi
}

apt_ensure() {
  # apt_ensure <command-to-check> <debian-package>...
  local check="$1"; shift
  if ! command -v "$check" >/dev/null 2>&1; then
    log "installing Debian packages: $*"
    as_root apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  fi
}

venv_ensure() {
  # venv_ensure <extras>: create the virtualenv and install Sentio's dependencies into it.
  local extras="${1:-}"
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtualenv in $VENV"
    "$PYTHON" -m venv "$VENV"
  fi
  # shellcheck disable=SC1091
  . "$VENV/bin/activate"
  local stamp="$VENV/.sentio-installed-${extras:-base}"
  # llama-cpp-python (test and llm extras) compiles llama.cpp: CPU only, portable, without the multimodal
  # library Sentio does not use. pip keeps the built wheel in its cache, so only the first install compiles.
  export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF}"
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    log "installing Python dependencies ($extras)"
    python -m pip install -q --upgrade pip
    if [ -n "$extras" ]; then python -m pip install -q -e ".[$extras]"; else python -m pip install -q -e .; fi
    touch "$stamp"
  fi
  export PYTHONPATH="$REPO_DIR:$REPO_DIR/platform${PYTHONPATH:+:$PYTHONPATH}"
}
