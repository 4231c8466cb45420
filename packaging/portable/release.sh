#!/usr/bin/env bash
# The release of the portable binary (make release):
#
#   packaging/portable/release.sh OUTDIR VERSION BINARY
#
#   OUTDIR/streamqc-<version>-linux-amd64.tar.gz   binary, unit, sample agent.yaml,
#                                                  README, LICENSES/
#   OUTDIR/streamqc-portable_<debversion>_amd64.deb  (no FFmpeg dependency)
#   OUTDIR/streamqc-<rpmversion>-1.x86_64.rpm
#   OUTDIR/SHA256SUMS
#
# Reproducible: every file's time is the commit's (SOURCE_DATE_EPOCH), owners
# are root, archives are sorted and gzip -n; nfpm takes the same epoch. The
# binary is built without paths or build id (build.sh).
set -euo pipefail

if [ $# -ne 3 ]; then
	echo "usage: $0 OUTDIR VERSION BINARY" >&2
	exit 2
fi
out=$1 version=$2 bin=$3
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
go=${GO:-go}
nfpm=${NFPM:-$go run github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.43.1}
maint=${DEB_MAINTAINER:-streamqc maintainers <maintainers@streamqc.invalid>}
cache=${STREAMQC_PORTABLE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/streamqc/portable}

[ -x "$bin" ] || { echo "release.sh: $bin: no binary (make portable)" >&2; exit 1; }
debver=$("$repo/packaging/deb/version.sh" "$version")
# RPM versions take no '-' and sort '~' before, as Debian's do.
rpmver=$debver
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s)}

prefix=$("$here/ffmpeg.sh" | tail -1)
ffdir=$(dirname "$prefix")
src=$cache/src
srt_version=$(sed -n 's/.*; srt \([^;]*\);.*/\1/p' "$ffdir/key.txt")

name=streamqc-${version#v}-linux-amd64
work=$out/.work
rm -rf "$work"
mkdir -p "$work/$name/LICENSES" "$work/x"

# ---- licenses -----------------------------------------------------------------
lic=$work/$name/LICENSES
tar -xJf "$src/ffmpeg_5.1.9.orig.tar.xz" -C "$work/x" ffmpeg-5.1.9/COPYING.LGPLv2.1 ffmpeg-5.1.9/LICENSE.md
cp "$work/x/ffmpeg-5.1.9/COPYING.LGPLv2.1" "$lic/FFmpeg-COPYING.LGPLv2.1"
cp "$work/x/ffmpeg-5.1.9/LICENSE.md" "$lic/FFmpeg-LICENSE.md"
dpkg-deb -x "$(compgen -G "$src/libsrt-openssl-dev_${srt_version#*:}_*.deb")" "$work/x/srt"
dpkg-deb -x "$(compgen -G "$src/libffmpeg-nvenc-dev_*.deb" | head -1)" "$work/x/nvenc"
cp "$work/x/srt/usr/share/doc/libsrt-openssl-dev/copyright" "$lic/SRT-copyright"
cp "$work/x/nvenc/usr/share/doc/libffmpeg-nvenc-dev/copyright" "$lic/nv-codec-headers-copyright"
cp /usr/share/doc/libssl3/copyright "$lic/OpenSSL-copyright"
cp /usr/share/doc/zlib1g/copyright "$lic/zlib-copyright"
orig_sha=$(sha256sum "$src/ffmpeg_5.1.9.orig.tar.xz" | cut -d' ' -f1)
cat >"$lic/NOTICE-static-libraries" <<EOF
FFmpeg and the C libraries linked into this streamqc binary
===========================================================

FFmpeg 5.1.9 (libavcodec, libavformat, libavutil, libavfilter, libavdevice,
libswscale, libswresample) is linked in statically, under the GNU Lesser
General Public License version 2.1 or later (FFmpeg-COPYING.LGPLv2.1,
FFmpeg-LICENSE.md). It was built without GPL or non-free parts, from Debian's
unmodified source tarball:

  ffmpeg_5.1.9.orig.tar.xz (Debian 12, ffmpeg 7:5.1.9-0+deb12u1)
  sha256 $orig_sha

configured with:

  $(cat "$ffdir/configure.txt")

What the LGPL asks of a static link (section 6), and how it is met:
- The library's complete source: the tarball above, unmodified, and the
  configure line; packaging/portable/ffmpeg.sh of the streamqc source rebuilds
  it exactly.
- Relinking with a modified FFmpeg: packaging/portable/build.sh links streamqc
  against any FFmpeg 5.1 prefix (FFMPEG_PREFIX=DIR), so a user holding the
  streamqc source or its object files can replace FFmpeg. The streamqc
  maintainers offer, for at least three years from this release, the object
  code of streamqc needed to relink it (LGPL 2.1, section 6(c)), for no more
  than the cost of providing it.
- No term of streamqc's restricts modifying FFmpeg or reverse engineering for
  debugging such modifications.

Also linked in statically, each under its own license (files beside this one):
- OpenSSL 3 (libssl, libcrypto) from Debian's libssl-dev: Apache License 2.0
  (OpenSSL-copyright). TLS for https, rtmps, rtsps and HLS over https.
- SRT $srt_version from Debian's libsrt-openssl-dev: Mozilla Public
  License 2.0 (SRT-copyright), unmodified; its source is Debian's srt package.
- zlib from Debian's zlib1g-dev: zlib license (zlib-copyright).
- libstdc++ and libgcc (for SRT): GPL 3 with the GCC Runtime Library
  Exception, which permits this use.
- nv-codec-headers 11.1.5.2 (FFmpeg's loader of the NVIDIA driver's CUDA and
  NVDEC libraries, opened at run time only when asked for): MIT
  (nv-codec-headers-copyright).
EOF

# ---- the tarball --------------------------------------------------------------
install -m 0755 "$bin" "$work/$name/streamqc"
"$bin" service unit --executable /usr/bin/streamqc --config /etc/streamqc/agent.yaml >"$work/$name/streamqc.service"
install -m 0644 "$repo/packaging/agent.yaml" "$work/$name/agent.yaml"
install -m 0644 "$repo/README.md" "$work/$name/README.md"
GO=$go DOCS_STATIC_NOTICES="$lic/NOTICE-static-libraries" "$repo/packaging/deb/docs.sh" \
	"$work/docs" streamqc-portable "$bin" "$debver" "$maint" -tags portable
cp "$work/docs/copyright" "$lic/COPYRIGHT"
find "$work/$name" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
mkdir -p "$out"
tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
	--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
	-C "$work" -cf - "$name" | gzip -9n >"$out/$name.tar.gz"

# ---- .deb and .rpm ------------------------------------------------------------
common=(PKG_BIN="$work/$name/streamqc" PKG_UNIT="$work/$name/streamqc.service"
	PKG_AGENT_YAML="$repo/packaging/agent.yaml" PKG_DOCS="$work/docs"
	PKG_VERSION="$debver" PKG_MAINTAINER="$maint")
(
	cd "$repo"
	env "${common[@]}" PKG_NAME=streamqc-portable PKG_UNIT_DIR=/lib/systemd/system \
		$nfpm package --packager deb --config packaging/portable/nfpm.yaml \
		--target "$out/streamqc-portable_${debver}_amd64.deb" >&2
	env "${common[@]}" PKG_NAME=streamqc PKG_UNIT_DIR=/usr/lib/systemd/system PKG_VERSION="$rpmver" \
		$nfpm package --packager rpm --config packaging/portable/nfpm.yaml \
		--target "$out/streamqc-${rpmver}-1.x86_64.rpm" >&2
)
rm -rf "$work"
(cd "$out" && sha256sum "$name.tar.gz" "streamqc-portable_${debver}_amd64.deb" "streamqc-${rpmver}-1.x86_64.rpm" >SHA256SUMS)
cat "$out/SHA256SUMS" >&2
