#!/usr/bin/env bash
# Install the test dependencies and run the whole suite: lint, architecture contracts, and every test on
# SQLite and on a throw-away PostgreSQL cluster (or DATABASE_URL when it names PostgreSQL), with the
# browser tests in Debian's chromium.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh" test

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && [[ "${DATABASE_URL:-}" != postgres* ]]; then
  echo "installing PostgreSQL (Debian package) ..."
  apt_install postgresql
fi
# grep reads all of fc-list's output (no -q): stopping early would kill fc-list by SIGPIPE under pipefail.
if [ ! -x /usr/bin/chromium ] || ! fc-list 2>/dev/null | grep -i "noto.*cjk" >/dev/null \
   || ! ls /usr/lib/chromium/locales/zh-CN.pak >/dev/null 2>&1; then
  echo "installing Chromium, its Chinese locale and CJK fonts (Debian packages) for the browser tests ..."
  apt_install chromium chromium-l10n fonts-noto-cjk
fi

if ! command -v pdftotext >/dev/null 2>&1 || ! command -v pdffonts >/dev/null 2>&1; then
  echo "installing poppler-utils (Debian package) to read the PDFs back in the tests ..."
  apt_install poppler-utils
fi

if [[ "${DATABASE_URL:-}" == postgres* ]]; then
  export ELDERCARE_TEST_PG_URL="$DATABASE_URL"
else
  PGDIR="$(mktemp -d /tmp/eldercare-test-pg.XXXXXX)"
  trap '.venv/bin/python -m bench.pgcluster stop "$PGDIR"; rm -rf "$PGDIR"' EXIT
  export ELDERCARE_TEST_PG_URL="$(.venv/bin/python -m bench.pgcluster start "$PGDIR")"
fi
unset DATABASE_URL  # the app under test uses the databases the tests create

.venv/bin/ruff check .
.venv/bin/lint-imports
.venv/bin/pytest -q -p no:cacheprovider "$@"
