#!/usr/bin/env bash
# Links the portable streamqc: FFmpeg of our own (packaging/portable/ffmpeg.sh,
# static, cached) inside, nothing but glibc outside.
#
#   packaging/portable/build.sh OUT VERSION [TAGS]
#   FFMPEG_PREFIX=DIR packaging/portable/build.sh ...   relink with another FFmpeg
#
# OUT is written anew (cmd/go may skip relinking when only the FFmpeg archives
# changed, and its cache does not see pkg-config output: this flavour keeps a
# GOCACHE of its own). The binary is position-independent, stripped, full
# RELRO, without build paths or build id, and is checked before it is left in
# OUT: its NEEDED entries are glibc's (plus libcuda.so.1 with TAGS=cuda), and
# it needs no glibc newer than GLIBC_MAX (2.34: Amazon Linux 2023).
set -euo pipefail

if [ $# -lt 2 ]; then
	echo "usage: $0 OUT VERSION [TAGS]" >&2
	exit 2
fi
out=$1 version=$2 tags=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
go=${GO:-go}
glibc_max=${GLIBC_MAX:-2.34}
cache=${STREAMQC_PORTABLE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/streamqc/portable}

# FFMPEG_PREFIX relinks against another FFmpeg 5.1 (a static install of
# one's own: what the LGPL's relinking clause needs); else ours, cached.
prefix=${FFMPEG_PREFIX:-$("$here/ffmpeg.sh" | tail -1)}
[ -f "$prefix/lib/pkgconfig/libavcodec.pc" ] || { echo "build.sh: no FFmpeg at '$prefix'" >&2; exit 1; }

# Symbols newer than glibc 2.34 that the static archives bring in go to
# internal/glibccompat (the build tag portable compiles it in).
cgo_ldflags="-static-libgcc -Wl,--wrap=hypot -Wl,--wrap=arc4random -Wl,--wrap=_dl_find_object"
tags="portable${tags:+ $tags}"
if [[ " $tags " == *" cuda "* ]]; then
	sdk=$("$here/../cuda-sdk.sh" | tail -1)
	export CGO_CFLAGS="-I$sdk/include"
	cgo_ldflags+=" -L$sdk/lib"
fi

# cmd/go keeps the cgo link flags of a cached package (go-astiav's) without
# asking pkg-config again: one GOCACHE per FFmpeg prefix, never Debian's.
gocache=$cache/gocache-$(printf '%s' "$prefix" | sha256sum | cut -c1-12)
mkdir -p "$(dirname "$out")"
rm -f "$out" "$out.tmp"
(
	cd "$repo"
	PKG_CONFIG_LIBDIR=$prefix/lib/pkgconfig PKG_CONFIG_PATH= PKG_CONFIG_SYSROOT_DIR= \
		CGO_LDFLAGS="$cgo_ldflags" GOCACHE="$gocache" GOFLAGS= \
		"$go" build -trimpath -buildmode=pie -tags "$tags" \
		-ldflags "-s -w -buildid= -X main.version=$version -extldflags '-Wl,-z,relro,-z,now'" \
		-o "$out.tmp" ./cmd/streamqc
)

# What the binary asks of the host: glibc (and the NVIDIA driver's libcuda
# for the cuda flavour), nothing else.
allowed="libc.so.6 libm.so.6 libdl.so.2 libpthread.so.0 ld-linux-x86-64.so.2"
[[ " $tags " == *" cuda "* ]] && allowed+=" libcuda.so.1"
bad=
for n in $(readelf -d "$out.tmp" | awk '/NEEDED/{gsub(/[][]/, "", $5); print $5}'); do
	[[ " $allowed " == *" $n "* ]] || bad+=" $n"
done
if [ -n "$bad" ]; then
	echo "build.sh: $out needs libraries a host may lack:$bad" >&2
	exit 1
fi
newest=$(objdump -T "$out.tmp" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)
if [ "$(printf '%s\n%s\n' "GLIBC_$glibc_max" "$newest" | sort -V | tail -1)" != "GLIBC_$glibc_max" ]; then
	echo "build.sh: $out needs $newest (at most GLIBC_$glibc_max): $(objdump -T "$out.tmp" | grep "$newest" | awk '{print $NF}' | tr '\n' ' ')" >&2
	exit 1
fi
mv "$out.tmp" "$out"
echo "build.sh: $out ($(du -h "$out" | cut -f1), needs $(readelf -d "$out" | awk '/NEEDED/{gsub(/[][]/, "", $5); printf "%s ", $5}')and $newest at most)" >&2
