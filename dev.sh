#!/usr/bin/env bash
# asa-wizard developer entry point (Debian 12 / Python 3.11).
#
#   ./dev.sh lab [SCENARIO]   install into .venv (once) and open the wizard on the embedded training lab
#   ./dev.sh test [ARGS...]   install everything (apt: Samba AD DC, MIT Kerberos; pip: the project with its
#                             test extras), run ruff (pyproject.toml [tool.ruff]) and the whole test suite;
#                             ARGS go to pytest
#   ./dev.sh install          only the installation part of `test`
#
# Everything the project needs is installed by this script; nothing is expected on the machine beforehand
# but python3 (with venv) and, for the tests, root or sudo for apt.
set -euo pipefail
cd "$(dirname "$0")"
VENV=${VENV:-.venv}
PY=${PYTHON:-python3}

APT_PACKAGES=(samba samba-ad-provision samba-dsdb-modules samba-vfs-modules krb5-user libkrb5-dev gcc python3-dev python3-venv)

sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
    local missing=()
    for p in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "dev.sh: installing ${missing[*]}" >&2
    # No init system on CI machines, but the samba packages would still try to start services:
    # a policy-rc.d that says no keeps them from touching /etc/samba.
    local made=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        sudo_ sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d'; made=1
    fi
    sudo_ env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
    [ "$made" = 1 ] && sudo_ rm -f /usr/sbin/policy-rc.d
    return 0
}

venv() {
    if [ ! -x "$VENV/bin/python" ]; then "$PY" -m venv "$VENV"; fi
    "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
}

case "${1:-}" in
    lab)
        shift
        venv
        "$VENV/bin/python" -m pip install -q -e .
        if [ $# -gt 0 ]; then exec "$VENV/bin/asa-wizard" lab --scenario "$1"; else exec "$VENV/bin/asa-wizard" lab; fi
        ;;
    install)
        apt_install; venv; "$VENV/bin/python" -m pip install -q -e '.[test]'
        ;;
    test)
        shift
        apt_install; venv; "$VENV/bin/python" -m pip install -q -e '.[test]'
        "$VENV/bin/python" -m ruff check .
        set +e
        "$VENV/bin/python" -m pytest -p no:cacheprovider "$@"
        rc=$?
        set -e
        if [ "$rc" = 5 ]; then echo "dev.sh: pytest collected no tests: that is a failure" >&2; exit 1; fi
        exit "$rc"
        ;;
    *)
        sed -n '2,12p' "$0"; exit 2 ;;
esac
