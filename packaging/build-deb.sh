#!/usr/bin/env bash
# Build the kyoten Debian package with dpkg-deb (no debhelper needed):
#   bash packaging/build-deb.sh [OUTDIR]   -> OUTDIR (default ./dist)/kyoten_<version>-<rev>_<arch>.deb
# The package is a virtual environment under /opt/kyoten/venv made from Debian's python3.11,
# holding kyoten's wheel and its dependencies from PyPI (pip's cache makes rebuilds fast), with
# /usr/bin symlinks, the systemd units, sysusers/tmpfiles snippets, the generated Zabbix agent
# snippets and example configs. It prints the path of the .deb on stdout (last line).
# Needs: dpkg-deb (dpkg), python3-venv (Debian's venv with ensurepip), PyPI through pip.
# Environment: KYOTEN_DEB_REVISION (default 1), KYOTEN_DEB_PYTHON (default /usr/bin/python3.11).
set -euo pipefail
umask 022
OUT=$(mkdir -p "${1:-dist}" && cd "${1:-dist}" && pwd)  # relative to where it is run from
cd "$(dirname "$0")/.."
PY=${KYOTEN_DEB_PYTHON:-/usr/bin/python3.11}
REVISION=${KYOTEN_DEB_REVISION:-1}
PREFIX=/opt/kyoten/venv

log() { printf '[build-deb %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { echo "build-deb: $*" >&2; exit 1; }

[[ -x $PY ]] || die "$PY not found: apt-get install python3 python3-venv"
command -v dpkg-deb >/dev/null || die "dpkg-deb not found (package dpkg)"
pyver=$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
version=$("$PY" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
arch=$(dpkg --print-architecture)
deb="$OUT/kyoten_${version}-${REVISION}_${arch}.deb"

work=$(mktemp -d "${TMPDIR:-/tmp}/kyoten-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
venv=$root$PREFIX

# 1. a clean copy of the sources: the build never writes into the working tree
log "sources"
mkdir -p "$work/src"
tar -C . --exclude=__pycache__ --exclude='*.pyc' -cf - \
  pyproject.toml setup.py README.md agent alerting hardware shell common | tar -C "$work/src" -xf -

# 2. the venv, the wheel, its dependencies
log "venv ($PY) at $PREFIX"
"$PY" -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check --quiet)
log "wheel"
"${pip[@]}" wheel --no-deps --wheel-dir "$work/wheel" "$work/src"
log "install the wheel and its dependencies"
"${pip[@]}" install --no-compile "$work"/wheel/kyoten-*.whl
"${pip[@]}" uninstall --yes pip setuptools
rm -rf "$venv"/lib/python*/site-packages/kyoten-*.dist-info/direct_url.json

# 3. relocate: the venv was made under $root, it runs from $PREFIX
log "relocate to $PREFIX"
grep -rlI --null -F "$venv" "$venv/bin" "$venv/pyvenv.cfg" | xargs -0 -r sed -i "s|$venv|$PREFIX|g"
# the UserParameters' command (kyoten.agent.launcher): `kyoten get` run with python -IS, which pip
# cannot write (it drops the options of the #! lines it writes)
"$venv/bin/python" -m kyoten.shell.cli export launcher --python "$PREFIX/bin/python" >"$venv/bin/kyoten-get"
chmod 0755 "$venv/bin/kyoten-get"
# byte-code compiled now, recorded with its installed path, so `kyoten get` (a new process per
# Zabbix poll) never compiles and never needs a writable site-packages
"$PY" -m compileall -q -j 0 -s "$root" -p / "$venv/lib" >/dev/null
if left=$(grep -rl -F "$root" "$root"); then
  die "build paths left in: $left"
fi

# 4. everything else
log "files"
install -d "$root/usr/bin"
ln -s "$PREFIX/bin/kyoten" "$root/usr/bin/kyoten"
ln -s "$PREFIX/bin/kyoten-agent2-plugin" "$root/usr/bin/kyoten-agent2-plugin"
install -D -m 0644 packaging/systemd/kyoten-bridge.service "$root/lib/systemd/system/kyoten-bridge.service"
install -D -m 0644 packaging/systemd/kyoten-health@.service "$root/lib/systemd/system/kyoten-health@.service"
install -D -m 0644 packaging/sysusers.d/kyoten.conf "$root/usr/lib/sysusers.d/kyoten.conf"
install -D -m 0644 packaging/tmpfiles.d/kyoten.conf "$root/usr/lib/tmpfiles.d/kyoten.conf"
install -D -m 0644 packaging/deb/kyoten-health.default "$root/etc/default/kyoten-health"
share=$root/usr/share/kyoten
for f in zabbix_agentd.d/kyoten.conf zabbix_agent2.d/kyoten.conf zabbix_agent2.d/plugins.d/kyoten.conf; do
  install -D -m 0644 "packaging/zabbix/$f" "$share/zabbix/$f"
done
install -D -m 0644 packaging/udev/99-kyoten-patlite.rules "$share/udev/99-kyoten-patlite.rules"
install -D -m 0644 packaging/etc/kyoten.toml.example "$share/examples/kyoten.toml.example"
install -D -m 0644 packaging/etc/bridge.yaml.example "$share/examples/bridge.yaml.example"
install -D -m 0644 packaging/deb/copyright "$root/usr/share/doc/kyoten/copyright"
install -D -m 0644 packaging/deb/README.Debian "$root/usr/share/doc/kyoten/README.Debian"

# 5. control data
log "control"
install -d "$root/DEBIAN"
for script in postinst prerm postrm; do
  install -m 0755 "packaging/deb/$script" "$root/DEBIAN/$script"
done
echo /etc/default/kyoten-health >"$root/DEBIAN/conffiles"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z |
  xargs -0 md5sum) >"$root/DEBIAN/md5sums"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<EOF
Package: kyoten
Version: ${version}-${REVISION}
Architecture: ${arch}
Maintainer: kyoten developers <kyoten@localhost>
Installed-Size: ${size}
Depends: python${pyver}, passwd
Recommends: systemd
Suggests: pgpool2, zabbix-agent2 | zabbix-agent
Section: net
Priority: optional
Description: monitoring and alerting for cross-site Zabbix deployments
 kyoten watches PostgreSQL streaming replication, Pgpool-II and Zabbix server HA
 across two sites (Zabbix agent UserParameters or an agent 2 plugin, templates
 generated from one catalogue), bridges Zabbix alerts to mail, Slack and PATLITE
 signal towers, and serves a site health endpoint for a GSLB.
 .
 Python ${pyver} virtual environment under ${PREFIX}; commands in /usr/bin.
EOF

log "dpkg-deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
log "$(du -h "$deb" | cut -f1) $deb"
echo "$deb"
