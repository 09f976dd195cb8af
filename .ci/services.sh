#!/usr/bin/env bash
# Everything the test suite needs on a machine of this kind, beyond the Python venv: PostgreSQL and MariaDB
# running on loopback, and Debian's Chromium with a CJK font for the HTML report's browser test.
# Idempotent and quiet: a server that answers is left alone; PostgreSQL is installed (trust on loopback) and its
# `test` database made when missing. Needs root to install packages (CI is root).
set -euo pipefail
cd "$(dirname "$0")/.."

wait_for() {  # wait_for SECONDS COMMAND...: poll until COMMAND succeeds
  local limit="$1"; shift
  for _ in $(seq 1 "$limit"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  "$@"
}

apt_install() {  # apt_install PACKAGE...: Debian's packages, non-interactive (needs root)
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq -o Dpkg::Use-Pty=0 "$@" >/dev/null
}

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  echo "PostgreSQL is not installed: installing it (apt-get), trust auth on loopback for the tests"
  apt_install postgresql
  hba="$(ls -d /etc/postgresql/*/main | head -n 1)/pg_hba.conf"
  sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
fi
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  echo "PostgreSQL is down: starting it"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start
fi
wait_for 60 pg_isready -h 127.0.0.1 -p 5432 -q
# the tests' database (each test works in a schema of its own inside it)
if ! psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1; then
  createdb -h 127.0.0.1 -U postgres test
fi

if ! command -v mysqladmin >/dev/null 2>&1; then
  echo "MariaDB is not installed: installing it (apt-get), root without a password on loopback for the tests"
  apt_install mariadb-server
fi
# (mysqladmin ping succeeds when the server answers, even if it refuses the login)
if ! mysqladmin -h127.0.0.1 -uroot ping >/dev/null 2>&1; then
  echo "MariaDB is down: starting it"
  (nohup mysqld_safe >/dev/null 2>&1 &)
fi
wait_for 60 mysqladmin -h127.0.0.1 -uroot ping
# the tests' user (tests/myutil.py): root over TCP on 127.0.0.1 without a password, allowed to create and drop
# databases (each test works in a database of its own). Debian's root@localhost logs in by the unix socket only.
if ! mysql -h127.0.0.1 -uroot -e "CREATE DATABASE IF NOT EXISTS regsync_ci_probe; DROP DATABASE regsync_ci_probe" \
    >/dev/null 2>&1; then
  echo "MariaDB: letting root in over TCP on 127.0.0.1 without a password (the tests' server only)"
  mysql -uroot -e "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
                   GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;"
fi

bash .ci/chromium.sh
