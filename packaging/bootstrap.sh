#!/usr/bin/env bash
# kyoten bootstrap for a fresh Debian 12 (run as root):
#   bash packaging/bootstrap.sh install   system packages + .venv with kyoten and its test extras
#   bash packaging/bootstrap.sh demo      install, then bring up the local demo lab (kyoten demo)
#   bash packaging/bootstrap.sh test      install, then lint, type-check, drift-check, pytest
# Nothing here starts a system service: the lab and the tests run every server themselves, on
# 127.0.0.1 only, from Debian's binaries.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  # php-cgi/php-cli first, so apt satisfies php8.2's web-server dependency without apache2
  php-cgi php-cli php-pgsql php-gd php-mbstring php-bcmath php-xml php-ldap
  postgresql-15 postgresql-client-15 pgpool2
  zabbix-server-pgsql zabbix-frontend-php zabbix-agent2
  python3 python3-venv
  debootstrap debian-archive-keyring ca-certificates curl procps iproute2 util-linux
  systemd   # systemd-analyze verify/security for the packaged units (no service is started)
  locales   # the Zabbix frontend's default language en_US needs its locale (generated below)
  chromium chromium-driver   # the browser tests drive headless Chromium over chromedriver
)

log() { printf '[bootstrap %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

install_system() {
  [[ $(id -u) -eq 0 ]] || { echo "bootstrap: run as root (it installs Debian packages)" >&2; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  # package scripts must not start services: the lab starts its own, on loopback ports
  local own_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  log "apt-get update"
  apt-get update -q
  log "apt-get install ${APT_PACKAGES[*]}"
  apt-get install -y -q --no-install-recommends "${APT_PACKAGES[@]}"
  [[ $own_policy == 1 ]] && rm -f /usr/sbin/policy-rc.d
  # without it every frontend page shows 'Locale for language "en_US" is not found'
  if ! locale -a 2>/dev/null | grep -qix 'en_US.utf8'; then
    log "locale en_US.UTF-8 (the Zabbix frontend's default language)"
    sed -i 's/^# *\(en_US.UTF-8 UTF-8\)/\1/' /etc/locale.gen
    grep -qx 'en_US.UTF-8 UTF-8' /etc/locale.gen || echo 'en_US.UTF-8 UTF-8' >>/etc/locale.gen
    locale-gen
  fi
  return 0
}

install_venv() {
  # Debian's python3, not a per-user interpreter: the agent runs kyoten as user 'zabbix'
  if [[ ! -x .venv/bin/python ]]; then
    log "python venv .venv (/usr/bin/python3)"
    /usr/bin/python3 -m venv .venv
  fi
  log "pip install -e .[test]"
  .venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
  log "installed: $(.venv/bin/kyoten --version)"
}

run_tests() {
  log "ruff"
  .venv/bin/ruff check .
  log "mypy (strict)"
  PYTHON=.venv/bin/python .ci/typecheck
  log "layer contracts (import-linter, pyproject.toml [tool.importlinter])"
  PYTHONPATH=build/typecheck .venv/bin/lint-imports --no-cache
  log "generated files match the catalogue"
  .venv/bin/kyoten export all --check
  log "pytest"
  set +e
  .venv/bin/pytest "$@"
  local rc=$?
  set -e
  [[ $rc == 5 ]] && { echo "bootstrap: pytest collected no tests" >&2; exit 1; }
  return $rc
}

case ${1:-} in
  install) install_system; install_venv ;;
  demo) shift; install_system; install_venv; exec .venv/bin/kyoten demo up "$@" ;;
  test) shift; install_system; install_venv; run_tests "$@" ;;
  *) sed -n '2,7p' "$0"; exit 2 ;;
esac
