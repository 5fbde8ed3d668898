#!/usr/bin/env bash
# Install what is needed and run the main job: the web app on http://127.0.0.1:5000 with an embedded
# SQLite database under instance/, the shipped processes deployed and the demo data loaded.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
export ELDERCARE_INSTANCE="${ELDERCARE_INSTANCE:-$ROOT/instance}"
.venv/bin/eldercare init-db --demo
exec .venv/bin/eldercare serve --host 127.0.0.1 --port "${PORT:-5000}"
