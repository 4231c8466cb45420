#!/usr/bin/env bash
# Installs what building and testing streamqc needs on Debian 12, and nothing
# that is already there. Used by `make deps` (and so by demo, test and bench).
set -euo pipefail

pkgs=(pkg-config gcc ffmpeg libavcodec-dev libavformat-dev libavutil-dev libavfilter-dev
      libavdevice-dev libswscale-dev libswresample-dev libpostproc-dev mosquitto systemd
      tstools   # tsreport: an independent MPEG-TS analyzer the transport tests compare with
      chromium) # headless, drives the dashboard's page in its tests (consumer/dashboard)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v go >/dev/null || { [ -x /usr/local/go/bin/go ] || { echo "Go is missing: install Go 1.26+ (https://go.dev/dl)" >&2; exit 1; }; }
