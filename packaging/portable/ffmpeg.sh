#!/usr/bin/env bash
# Builds the FFmpeg that the portable streamqc links in, once per FFmpeg
# version and configure line, and prints its prefix (PREFIX/lib/pkgconfig
# holds its .pc files) as the last line of stdout. Everything else goes to
# stderr and to the build's log.
#
#   packaging/portable/ffmpeg.sh            build (or reuse) and print the prefix
#   packaging/portable/ffmpeg.sh --key      print the cache key only
#   packaging/portable/ffmpeg.sh --configure print the configure line only
#
# Sources are Debian 12's own packages, fetched with a private source list in
# the cache (the system's apt configuration is never touched):
#   ffmpeg 7:5.1.9-0+deb12u1        the .orig tarball (Debian's one patch is
#                                   for ffv1/snow, which are not built)
#   libffmpeg-nvenc-dev 11.1.5.2-1   nv-codec-headers (NVDEC's dlopen loader);
#                                   its source tarball is missing on the mirror,
#                                   the binary package holds the same headers
#   libsrt-openssl-dev              libsrt.a (Debian builds no static GnuTLS,
#                                   so TLS is OpenSSL's libssl.a/libcrypto.a
#                                   from libssl-dev, and SRT its OpenSSL flavour)
#   libssl-dev, zlib1g-dev, nasm    installed with apt (root or sudo)
#
# The cache: $STREAMQC_PORTABLE_CACHE, else ${XDG_CACHE_HOME:-~/.cache}/streamqc/portable,
# one folder per key (the FFmpeg version, the configure line, the versions of
# the static libraries linked in and this script's recipe revision): a change
# to any of them builds anew, nothing else does.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# Bump when the recipe changes in a way the configure line does not show.
recipe=6

ffmpeg_version=5.1.9
ffmpeg_deb=7:5.1.9-0+deb12u1
nvenc_deb=11.1.5.2-1
jobs=${JOBS:-$(nproc)}
cache=${STREAMQC_PORTABLE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/streamqc/portable}

log() { echo "ffmpeg.sh: $*" >&2; }
die() { log "$*"; exit 1; }

# What streamqc supports, and nothing else. A component missing here is a
# test failure (media.TestPortableComponents), never a runtime surprise.
decoders=(
	# video of broadcast and contribution chains; av1 decodes on NVDEC only
	# (FFmpeg 5.1 has no software AV1 decoder of its own, and Debian ships no
	# static libdav1d)
	h264 hevc mpeg1video mpeg2video mpeg4 h263 vp8 vp9 av1 dnxhd prores dvvideo mjpeg
	# audio
	aac aac_latm ac3 eac3 mp1 mp2 mp3 opus vorbis flac alac s302m
	pcm_s16le pcm_s16be pcm_s24le pcm_s24be pcm_s32le pcm_s32be pcm_f32le pcm_f32be
	pcm_f64le pcm_bluray pcm_dvd pcm_alaw pcm_mulaw pcm_u8 pcm_s8
	# subtitles probed in broadcast TS (never decoded by streamqc; probing
	# without them reads those streams differently from Debian's build)
	dvbsub dvdsub
)
parsers=(
	h264 hevc mpegvideo mpeg4video h263 vp8 vp9 av1 dnxhd dvbsub dvdsub mjpeg
	aac aac_latm ac3 mpegaudio opus vorbis flac dca
)
# The agent's file whitelist (agent/fleet FileFormats), the raw streams MPEG-TS
# probing falls back on, and the live inputs: HLS, RTSP/RTP/SDP, RTMP (flv).
demuxers=(
	mpegts mpegtsraw mov matroska flv live_flv avi wav w64 mp3 aac ac3 eac3 loas
	h264 hevc mpegvideo m4v mpegps mxf gxf lxf dv ogg flac aiff asf yuv4mpegpipe ivf nut
	hls rtsp rtp sdp
)
protocols=(
	file udp rtp tcp tls http https httpproxy crypto hls libsrt rtmp rtmps rtmpt rtmpts
)
bsfs=(extract_extradata)
hwaccels=(h264_nvdec hevc_nvdec mpeg1_nvdec mpeg2_nvdec mpeg4_nvdec vp8_nvdec vp9_nvdec av1_nvdec)

join() { local IFS=,; echo "$*"; }

configure_args=(
	--enable-static --disable-shared --enable-pic
	--disable-programs --disable-doc --disable-debug --disable-autodetect
	--enable-pthreads --enable-zlib --enable-openssl --enable-libsrt
	--enable-ffnvcodec --enable-nvdec
	--disable-everything
	--enable-decoder="$(join "${decoders[@]}")"
	--enable-parser="$(join "${parsers[@]}")"
	--enable-demuxer="$(join "${demuxers[@]}")"
	--enable-protocol="$(join "${protocols[@]}")"
	--enable-bsf="$(join "${bsfs[@]}")"
	--enable-hwaccel="$(join "${hwaccels[@]}")"
	--pkg-config-flags=--static
)

if [ "${1:-}" = --configure ]; then
	echo "${configure_args[*]}"
	exit 0
fi

# ---- build dependencies ---------------------------------------------------------
need=(nasm libssl-dev zlib1g-dev xz-utils pkg-config gcc g++ make)
missing=()
for p in "${need[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	log "installing: ${missing[*]}"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The file apt-get download wrote into $src for NAME=VERSION (no epoch in the
# name; amd64 or all), or nothing.
debfile() { local v=${1#*=}; compgen -G "$src/${1%%=*}_${v#*:}_*.deb" | head -1; }
pkgver() { dpkg-query -W -f='${Version}' "$1"; }

# ---- a private apt for Debian's source and -dev packages --------------------------
apt_dir=$cache/apt
apt_opts=(-o "Dir::State::Lists=$apt_dir/lists"
	-o "Dir::Etc::SourceParts=$apt_dir/etc" -o "Dir::Etc::SourceList=$apt_dir/bookworm.list" -o "Dir::Cache=$apt_dir/cache"
	-o "Debug::NoLocking=1" -o "APT::Sandbox::User=root")
private_apt() {
	if [ -f "$apt_dir/lists/.updated" ] && [ -z "$(find "$apt_dir/lists/.updated" -mmin +1440)" ]; then
		return
	fi
	mkdir -p "$apt_dir/lists/partial" "$apt_dir/etc" "$apt_dir/cache/archives/partial"
	# The system's own mirrors (deb822 or one-line lists; security updates
	# included), with deb-src and non-free added; else Debian's own mirror.
	: >"$apt_dir/etc/bookworm.sources"
	: >"$apt_dir/bookworm.list"
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk 'BEGIN { RS = ""; ORS = "\n\n" }
			/(^|\n)Suites:[^\n]*bookworm/ {
				sub(/Types:[^\n]*/, "Types: deb deb-src")
				sub(/Components:[^\n]*/, "Components: main non-free")
				print
			}' "$f" >>"$apt_dir/etc/bookworm.sources"
	done
	if [ -f /etc/apt/sources.list ]; then
		awk '$1 == "deb" && / bookworm/ {
			sub(/ main.*$/, " main non-free"); print; sub(/^deb /, "deb-src "); print
		}' /etc/apt/sources.list >"$apt_dir/bookworm.list"
	fi
	if ! grep -q . "$apt_dir/etc/bookworm.sources" "$apt_dir/bookworm.list" 2>/dev/null; then
		printf 'Types: deb deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main non-free\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
			>"$apt_dir/etc/bookworm.sources"
	fi
	log "apt update (private lists in $apt_dir)"
	apt-get "${apt_opts[@]}" update -qq >&2 || die "apt-get update failed (the Debian mirror must answer)"
	touch "$apt_dir/lists/.updated"
}
candidate() { apt-cache "${apt_opts[@]}" policy "$1" | awk '/Candidate:/{print $2}'; }

# ---- the key -------------------------------------------------------------------
# Versions of the static libraries that end up in the binary.
ssl_version=$(pkgver libssl-dev)
zlib_version=$(pkgver zlib1g-dev)
srt_version_file=$cache/srt-version
if [ "${1:-}" = --key ] && [ -f "$srt_version_file" ]; then
	srt_version=$(cat "$srt_version_file")
else
	private_apt
	srt_version=$(candidate libsrt-openssl-dev)
	[ -n "$srt_version" ] || die "libsrt-openssl-dev not found in the private lists"
	mkdir -p "$cache"
	echo "$srt_version" >"$srt_version_file"
fi
key_text="ffmpeg $ffmpeg_deb; nvenc $nvenc_deb; srt $srt_version; ssl $ssl_version; zlib $zlib_version; recipe $recipe; ${configure_args[*]}"
key=$(printf '%s' "$key_text" | sha256sum | cut -c1-16)
if [ "${1:-}" = --key ]; then
	echo "$key"
	exit 0
fi

dir=$cache/ffmpeg-$ffmpeg_version-$key
prefix=$dir/prefix
# FFmpeg keeps its configure line (avutil_configuration) and source paths
# (assertions) in the binary: both name fixed paths, not the cache's, so the
# same inputs give the same bytes wherever the cache is.
install_prefix=/opt/streamqc-ffmpeg
if [ -f "$dir/.done" ]; then
	log "cached: $dir"
	echo "$prefix"
	exit 0
fi

# One build at a time per cache (two make targets, or CI and a developer).
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if [ -f "$dir/.done" ]; then
	echo "$prefix"
	exit 0
fi
rm -rf "$dir"
mkdir -p "$dir"
printf '%s\n' "$key_text" >"$dir/key.txt"
start=$(date +%s)

# ---- sources and static libraries ----------------------------------------------------
src=$cache/src
mkdir -p "$src"
private_apt
(
	cd "$src"
	if [ ! -f "ffmpeg_$ffmpeg_version.orig.tar.xz" ]; then
		log "fetching the source of ffmpeg $ffmpeg_deb"
		apt-get "${apt_opts[@]}" source --download-only -qq "ffmpeg=$ffmpeg_deb" >&2
	fi
	for p in "libffmpeg-nvenc-dev=$nvenc_deb" "libsrt-openssl-dev=$srt_version"; do
		[ -n "$(debfile "$p")" ] && continue
		log "fetching $p"
		apt-get "${apt_opts[@]}" download -qq "$p" >&2
	done
)

# The sysroot holds the static archives only (no .so beside them), so the
# linker can only take those, and .pc files pointing at them.
sysroot=$dir/sysroot
mkdir -p "$sysroot/lib/pkgconfig" "$sysroot/include" "$dir/x"
dpkg-deb -x "$(debfile "libffmpeg-nvenc-dev=$nvenc_deb")" "$dir/x"
dpkg-deb -x "$(debfile "libsrt-openssl-dev=$srt_version")" "$dir/x"
cp -r "$dir/x/usr/include/ffnvcodec" "$dir/x/usr/include/srt" "$sysroot/include/"
cp "$dir/x/usr/lib/x86_64-linux-gnu/libsrt.a" "$sysroot/lib/"
for a in libssl.a libcrypto.a libz.a; do
	cp "/usr/lib/x86_64-linux-gnu/$a" "$sysroot/lib/" || die "$a missing (libssl-dev, zlib1g-dev)"
done
ffnv_version=$(awk -F': ' '/^Version:/{print $2}' "$dir/x/usr/share/pkgconfig/ffnvcodec.pc")
cat >"$sysroot/lib/pkgconfig/ffnvcodec.pc" <<EOF
prefix=$sysroot
includedir=\${prefix}/include
Name: ffnvcodec
Description: FFmpeg version of Nvidia Codec SDK headers
Version: $ffnv_version
Cflags: -I\${includedir}
EOF
for pc in libcrypto:"-lcrypto -ldl -pthread": libssl:"-lssl":libcrypto zlib:"-lz":; do
	name=${pc%%:*} rest=${pc#*:} libs=${rest%%:*} req=${rest#*:}
	cat >"$sysroot/lib/pkgconfig/$name.pc" <<EOF
prefix=$sysroot
Name: $name
Description: static $name for the portable build
Version: $(case $name in zlib) echo "${zlib_version#*:}" | sed 's/[-.]dfsg.*//' ;; *) echo "${ssl_version%%-*}" ;; esac)
Requires: $req
Libs: -L\${prefix}/lib $libs
Cflags:
EOF
done
cp "$sysroot/lib/pkgconfig/libssl.pc" "$sysroot/lib/pkgconfig/openssl.pc"
sed -i 's/^Requires: libcrypto$/Requires: libssl libcrypto/; s/^Libs: .*$/Libs:/' "$sysroot/lib/pkgconfig/openssl.pc"
# libsrt is C++: libstdc++ goes in statically, libgcc_s not at all (the
# binary needs nothing but glibc).
cat >"$sysroot/lib/pkgconfig/srt.pc" <<EOF
prefix=$sysroot
Name: srt
Description: SRT library set (static, OpenSSL flavour)
Version: ${srt_version%%-*}
Requires: libcrypto
Libs: -L\${prefix}/lib -lsrt -l:libstdc++.a -lm
Cflags: -I\${prefix}/include -I\${prefix}/include/srt
EOF

# ---- FFmpeg --------------------------------------------------------------------
build=$dir/build
mkdir -p "$build"
tar -xJf "$src/ffmpeg_$ffmpeg_version.orig.tar.xz" -C "$build" --strip-components=1
cd "$build"
log "configure (log: $dir/build.log)"
if ! PKG_CONFIG_LIBDIR=$sysroot/lib/pkgconfig PKG_CONFIG_PATH= ./configure --prefix="$install_prefix" \
	"${configure_args[@]}" >"$dir/build.log" 2>&1; then
	tail -30 ffbuild/config.log >&2 || true
	die "configure failed (log: $dir/build.log, $build/ffbuild/config.log)"
fi
# configure adds -latomic wherever libatomic exists; x86-64 needs none, and it
# would make libatomic.so.1 a runtime dependency.
sed -i 's/ -latomic//g' ffbuild/config.mak
log "make -j$jobs"
if ! make -j"$jobs" ECFLAGS="-ffile-prefix-map=$build=ffmpeg-$ffmpeg_version" >>"$dir/build.log" 2>&1 ||
	! make install DESTDIR="$dir/root" >>"$dir/build.log" 2>&1; then
	tail -30 "$dir/build.log" >&2
	die "build failed (log: $dir/build.log)"
fi
mv "$dir/root$install_prefix" "$prefix"
rm -rf "$dir/root"
# The static .pc files name their own dependencies; make them findable
# without the sysroot on the pkg-config path, and without -latomic.
for pc in "$prefix"/lib/pkgconfig/*.pc; do
	sed -i "s#$install_prefix#$prefix#g; s# -latomic##g; s#^Libs: -L\${libdir} #Libs: -L\${libdir} -L$sysroot/lib #; s#^Requires.private:.*#Requires.private:#" "$pc"
done
cp "$sysroot"/lib/pkgconfig/{libcrypto,libssl,openssl,zlib,srt,ffnvcodec}.pc "$prefix/lib/pkgconfig/"
# Name every archive by its full path: another package's -L (gorgonia.org/cu
# adds -L/usr/lib/x86_64-linux-gnu, where Debian keeps its own libavformat.a
# and .so) must not win over ours.
for pc in "$prefix"/lib/pkgconfig/*.pc; do
	sed -i -E "/^Libs/ { s#-l(avformat|avcodec|avdevice|avfilter|avutil|swscale|swresample)( |\$)#$prefix/lib/lib\1.a\2#g;
		s#-l(ssl|crypto|z|srt)( |\$)#$sysroot/lib/lib\1.a\2#g }" "$pc"
done
cp "$build/COPYING.LGPLv2.1" "$build/COPYING.LGPLv3" "$build/LICENSE.md" "$dir/" 2>/dev/null || true
echo "${configure_args[*]}" >"$dir/configure.txt"
rm -rf "$build" "$dir/x"
echo "$(($(date +%s) - start))" >"$dir/build-seconds"
touch "$dir/.done"
log "built in $(cat "$dir/build-seconds") s: $dir"
# Keep this build and the one before it (another branch may still want it);
# older ones and their Go caches go.
for old in $(ls -1dt "$cache"/ffmpeg-*/ 2>/dev/null | tail -n +3); do
	rm -rf "$old" "$cache/gocache-$(printf '%s' "${old%/}/prefix" | sha256sum | cut -c1-12)"
done
echo "$prefix"
