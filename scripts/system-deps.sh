#!/usr/bin/env bash
# Installs the system packages the project needs, or explains what is missing and stops.
#   - a CJK font (contracts are Chinese PDFs) and Pango (WeasyPrint)
#   - with WITH_BROWSER=1: Debian's Chromium for the browser tests
set -euo pipefail

need=()
if ! fc-list :lang=zh 2>/dev/null | grep -q .; then need+=(fonts-wqy-microhei fontconfig); fi
if ! ldconfig -p 2>/dev/null | grep -q libpangoft2-1.0; then need+=(libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0); fi
if [ "${WITH_BROWSER:-0}" = "1" ] && [ ! -x /usr/bin/chromium ]; then need+=(chromium); fi
[ ${#need[@]} -eq 0 ] && exit 0

echo "Installing system packages: ${need[*]}"
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "These system packages are missing: ${need[*]}" >&2
    echo "Install them as root:  apt-get install -y ${need[*]}" >&2
    exit 1
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "No apt-get here. Install these packages (or your system's equivalents): ${need[*]}" >&2
  echo "A CJK font is required: contracts are rendered in Chinese." >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq || true
if ! $SUDO apt-get install -y -qq "${need[@]}" >/dev/null; then
  echo "Could not install: ${need[*]}. Install them and run the command again." >&2
  exit 1
fi
