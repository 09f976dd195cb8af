#!/usr/bin/env bash
# Everything the test suite needs on a machine of this kind, beyond the Python venv: PostgreSQL and MariaDB
# running on loopback, and Debian's Chromium with a CJK font for the HTML report's browser test.
# Idempotent and quiet: a server that answers is left alone. Needs root to install Chromium (CI is root).
set -euo pipefail
cd "$(dirname "$0")/.."

wait_for() {  # wait_for SECONDS COMMAND...: poll until COMMAND succeeds
  local limit="$1"; shift
  for _ in $(seq 1 "$limit"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  "$@"
}

if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  echo "PostgreSQL is down: starting it"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start
fi
wait_for 60 pg_isready -h 127.0.0.1 -p 5432 -q

if command -v mysqladmin >/dev/null 2>&1; then
  if ! mysqladmin -h127.0.0.1 -uroot ping >/dev/null 2>&1; then
    echo "MariaDB is down: starting it"
    (nohup mysqld_safe >/dev/null 2>&1 &)
  fi
  wait_for 60 mysqladmin -h127.0.0.1 -uroot ping
fi

bash .ci/chromium.sh
