# SPDX-License-Identifier: MIT
# Debian packages for the scripts that install what they need (sourced, not run).
#
# pkgs_missing PKG...: prints those of PKG... that are not installed, one a line.
# pkgs_install [--no-recommends] PKG...: installs PKG... with apt-get, non-interactive, through
#   sudo when not root, waiting up to 300 s for another dpkg to finish; returns its status.
pkgs_missing() {
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
    done
}

pkgs_install() {
    local opts=() sudo=
    [ "${1:-}" = --no-recommends ] && { opts+=(--no-install-recommends); shift; }
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${opts[@]}" \
        -o DPkg::Lock::Timeout=300 "$@"
}
