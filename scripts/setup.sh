#!/usr/bin/env bash
# Shared set-up for run.sh and test.sh: a virtualenv with the project, and the front-end packages.
# Usage: source scripts/setup.sh [extras]   (extras: "test" adds the test tools)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
if [ -n "${1:-}" ]; then
  .venv/bin/pip install -q -e ".[$1]" 2>&1 | grep -v "^WARNING: Location" || true
else
  .venv/bin/pip install -q -e . 2>&1 | grep -v "^WARNING: Location" || true
fi
.venv/bin/python -c "import workflows, webapp" || { echo "Python packages failed to install" >&2; exit 1; }
if [ -f package.json ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "npm is needed for the diagram viewer (bpmn-js); install Node.js/npm first" >&2; exit 1
  fi
  if [ -f package-lock.json ]; then npm ci --silent --no-audit --no-fund; else npm install --silent --no-audit --no-fund; fi
  npm run --silent build  # the studio's bundle: webapp/static/studio/dist/ (about a second)
fi

# Install Debian packages by name when a command is missing (root, or sudo without a password).
apt_install() {
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo -n"
  if [ -z "${APT_UPDATED:-}" ]; then
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null
    APT_UPDATED=1
  fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" </dev/null >/dev/null
}

# Case-file and notice PDFs: WeasyPrint's system libraries (pango, harfbuzz's subsetter) and the CJK font the
# PDFs are set in (WenQuanYi Micro Hei; see casefiles/pdf.py for why this one), from Debian.
if ! fc-list 2>/dev/null | grep -qi "WenQuanYi Micro Hei" \
   || ! ldconfig -p 2>/dev/null | grep -q "libpangoft2-1.0.so.0" \
   || ! ldconfig -p 2>/dev/null | grep -q "libharfbuzz-subset.so.0"; then
  echo "installing the PDF libraries and the CJK font (Debian packages) ..."
  apt_install libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fontconfig fonts-wqy-microhei
fi
