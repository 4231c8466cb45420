#!/usr/bin/env bash
# make gpu-check: one folder and one tarball for a GPU host that has the
# NVIDIA driver and nothing else (no Go, no FFmpeg, no network):
#
#   OUT/gpu-check/run.sh           the one command to run there (writes report.txt)
#   OUT/gpu-check/streamqc         the portable binary (CPU detectors)
#   OUT/gpu-check/streamqc-cuda    the portable cuda binary (GPU detectors)
#   OUT/gpu-check/gpu.test         gpu/'s tests and benchmark (go test -c -tags cuda, portable FFmpeg)
#   OUT/gpu-check/media/           clips: a 20 s 1080p30 H.264 bench clip made here, the labeled
#                                  corpus's, and a few of ../shared/media (H.264, HEVC, MPEG-2)
#   OUT/gpu-check.tar.xz           all of it, under 60 MiB
#
#   packaging/gpu-check/bundle.sh OUT VERSION
set -euo pipefail
out=$1 version=$2
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
go=${GO:-go}
dir=$out/gpu-check
rm -rf "$dir" "$out/gpu-check.tar.xz"
mkdir -p "$dir/media"

"$repo/packaging/portable/build.sh" "$dir/streamqc" "$version"
"$repo/packaging/portable/build.sh" "$dir/streamqc-cuda" "$version" cuda

# The test binary: the same flags as the portable cuda binary.
cache=${STREAMQC_PORTABLE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/streamqc/portable}
prefix=$("$repo/packaging/portable/ffmpeg.sh" | tail -1)
sdk=$("$repo/packaging/cuda-sdk.sh" | tail -1)
(
	cd "$repo"
	PKG_CONFIG_LIBDIR=$prefix/lib/pkgconfig PKG_CONFIG_PATH= CGO_CFLAGS="-I$sdk/include" \
		CGO_LDFLAGS="-static-libgcc -Wl,--wrap=hypot -Wl,--wrap=arc4random -Wl,--wrap=_dl_find_object -L$sdk/lib" \
		GOCACHE="$cache/gocache-$(printf '%s' "$prefix" | sha256sum | cut -c1-12)" \
		"$go" test -c -trimpath -tags 'cuda portable' -ldflags '-s -w' -o "$dir/gpu.test" ./gpu
)
# Nothing but glibc and the driver, as for the binaries (the GPU host has no FFmpeg).
for n in $(readelf -d "$dir/gpu.test" | awk '/NEEDED/{gsub(/[][]/, "", $5); print $5}'); do
	case $n in
	libc.so.6 | libm.so.6 | libdl.so.2 | libpthread.so.0 | ld-linux-x86-64.so.2 | libcuda.so.1) ;;
	*) echo "gpu-check: gpu.test needs $n, which the GPU host lacks" >&2; exit 1 ;;
	esac
done

# Media: the bench clip (1080p30 H.264 High, 6 Mbit/s, 20 s: the figures of
# shared/docs/gpu.md were taken on such a clip), made from the Sintel trailer
# when ../shared/media has it, else from a synthetic pattern with noise.
shared=$repo/../shared/media
src=()
if [ -f "$shared/sintel_trailer_excerpt_720p_h264_aac.mp4" ]; then
	src=(-stream_loop -1 -i "$shared/sintel_trailer_excerpt_720p_h264_aac.mp4")
else
	src=(-f lavfi -i "testsrc2=s=1920x1080:r=30,noise=alls=8:allf=t" -f lavfi -i "sine=f=440:r=48000")
fi
ffmpeg -hide_banner -loglevel error -y "${src[@]}" -t 20 -vf "scale=1920:1080,fps=30" \
	-c:v libx264 -profile:v high -preset veryfast -b:v 6M -maxrate 6M -bufsize 12M -g 60 -pix_fmt yuv420p \
	-c:a aac -b:a 128k "$dir/media/bench_1080p30_h264.mp4"
# A 10-bit HEVC clip (NVDEC's P010 path) and the labeled corpus's broadcast TS.
ffmpeg -hide_banner -loglevel error -y -f lavfi -i "testsrc2=s=1280x720:r=25,noise=alls=6:allf=t" -f lavfi -i "sine=f=1000:r=48000" \
	-t 6 -c:v libx265 -x265-params log-level=error -pix_fmt yuv420p10le -c:a aac "$dir/media/hevc_main10_720p.mp4"
for f in tsduck072_ru_channel1_576p_h264_aac.ts tsduck064_bbb_1080p_h264_mp2.ts exoplayer_bbb_1080p_mpeg2_mp2.ts \
	corrupt/tsduck093_franceinfo_576i_h264_eac3_CORRUPT.ts squirrel_pexels_720p_h264_silentaac.mp4; do
	[ -f "$shared/$f" ] && cp "$shared/$f" "$dir/media/"
done
cp "$here/run.sh" "$dir/run.sh"
chmod +x "$dir/run.sh"
tar -C "$out" -cf - gpu-check | xz -6 -T0 >"$out/gpu-check.tar.xz"
size=$(stat -c %s "$out/gpu-check.tar.xz")
echo "gpu-check: $out/gpu-check.tar.xz ($((size / 1048576)) MiB; the folder: $(du -sh "$dir" | cut -f1))" >&2
if [ "$size" -gt $((60 * 1048576)) ]; then
	echo "gpu-check: the bundle is over 60 MiB" >&2
	exit 1
fi
