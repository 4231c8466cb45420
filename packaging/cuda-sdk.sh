#!/usr/bin/env bash
# Fetches what building the cuda flavour needs without the CUDA toolkit, once
# per machine, and prints the folder (SDK/include/cuda.h, SDK/lib/libcuda.so,
# the link stub): Debian 12 non-free's nvidia-cuda-dev (CUDA 11.8; 774 MB,
# of which two files are kept), through a private source list (the system's
# apt configuration is never touched). gorgonia.org/cu compiles against that
# cuda.h and links against the stub; the real libcuda.so.1 comes with the
# NVIDIA driver on the GPU host.
#
# $STREAMQC_CUDA_SDK, when set, is used as it is (a machine with the toolkit:
# point it at a folder holding include/cuda.h and lib/libcuda.so).
set -euo pipefail

if [ -n "${STREAMQC_CUDA_SDK:-}" ]; then
	[ -f "$STREAMQC_CUDA_SDK/include/cuda.h" ] || { echo "cuda-sdk.sh: no include/cuda.h in $STREAMQC_CUDA_SDK" >&2; exit 1; }
	echo "$STREAMQC_CUDA_SDK"
	exit 0
fi
cache=${XDG_CACHE_HOME:-$HOME/.cache}/streamqc
sdk=$cache/cuda-sdk-11.8
if [ -f "$sdk/.done" ]; then
	echo "$sdk"
	exit 0
fi
mkdir -p "$cache"
exec 9>"$cache/.cuda-sdk.lock"
flock 9
if [ -f "$sdk/.done" ]; then
	echo "$sdk"
	exit 0
fi
d=$(mktemp -d "$cache/cuda-apt.XXXXXX")
trap 'rm -rf "$d"' EXIT
mkdir -p "$d/lists/partial" "$d/cache/archives/partial"
uri=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
[ -n "$uri" ] || uri=$(awk '$1=="deb"{for(i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$uri" ] || uri=http://deb.debian.org/debian
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri bookworm non-free" >"$d/sources.list"
o=(-o "Dir::Etc::SourceList=$d/sources.list" -o "Dir::Etc::SourceParts=/dev/null" -o "Dir::State::Lists=$d/lists"
	-o "Dir::Cache=$d/cache" -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root")
echo "cuda-sdk.sh: fetching nvidia-cuda-dev (Debian non-free, 774 MB) into a private cache" >&2
apt-get "${o[@]}" update -qq >&2
(cd "$d" && apt-get "${o[@]}" download -qq nvidia-cuda-dev >&2)
rm -rf "$sdk.tmp"
mkdir -p "$sdk.tmp/include" "$sdk.tmp/lib" "$d/x"
dpkg-deb --fsys-tarfile "$d"/nvidia-cuda-dev_*.deb | tar -x -C "$d/x" ./usr/include/cuda.h ./usr/lib/x86_64-linux-gnu/stubs/libcuda.so
cp "$d/x/usr/include/cuda.h" "$sdk.tmp/include/"
cp "$d/x/usr/lib/x86_64-linux-gnu/stubs/libcuda.so" "$sdk.tmp/lib/"
dpkg-deb -f "$d"/nvidia-cuda-dev_*.deb Version >"$sdk.tmp/version"
touch "$sdk.tmp/.done"
mv "$sdk.tmp" "$sdk"
echo "$sdk"
