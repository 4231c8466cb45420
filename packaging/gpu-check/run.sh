#!/usr/bin/env bash
# The GPU check: run on a GPU host from the unpacked bundle (make gpu-check),
# with nothing but the NVIDIA driver installed. Writes REPORT (default
# ./report.txt, or $OUT/report.txt when OUT is set) and finishes in under 6
# minutes on a 16-core host:
#
#   1. the host: GPUs, driver, `streamqc gpu info`
#   2. kernel parity: the CUDA kernels against the CPU reference on test
#      pictures (8/10 bit, odd sizes) and on pictures decoded from media/
#   3. NVDEC end to end: analyze on NVDEC with the GPU kernels gives the
#      events of software decoding with the CPU reference at full resolution
#   4. the bench: aggregate 1080p30 fps (and so real-time streams) with every
#      detector on, for all CPU, all NVDEC with host copies, NVDEC with GPU
#      kernels, and both at once; CPU seconds per stream-second; kernel time
#      per frame; bytes copied device to host per frame.
#
# The bench clip is 20 s (the bundle stays under 60 MiB); each process reads it
# once, not paced.
#
#   ./run.sh            everything
#   QUICK=1 ./run.sh    parity and end to end only
set -uo pipefail
cd "$(dirname "$0")"
report=${REPORT:-${OUT:+$OUT/}report.txt}
: >"$report"
say() { echo "$*" | tee -a "$report"; }
cores=$(nproc)
clip=media/bench_1080p30_h264.mp4
secs=${BENCH_SECONDS:-20}
fail=0

say "# streamqc gpu-check, $(date -u +%FT%TZ)"
say "host: $(uname -srm), $cores cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
if command -v nvidia-smi >/dev/null; then
	say "$(nvidia-smi --query-gpu=index,name,driver_version,memory.total,compute_cap --format=csv,noheader 2>&1 | sed 's/^/gpu: /')"
fi
say "streamqc: $(./streamqc version 2>&1 | head -1); cuda build: $(./streamqc-cuda version 2>&1 | head -1)"
./streamqc gpu info >>"$report" 2>&1 || say "(streamqc gpu info: exit $?)"

say ""
say "## kernel parity and NVDEC end to end (gpu.test)"
STREAMQC_GPU_MEDIA=$PWD/media timeout 240 ./gpu.test -test.v -test.run 'TestKernels|TestNVDEC' >gpu-test.log 2>&1
rc=$?
grep -E '^(--- |ok|PASS|FAIL)|^\s+--- ' gpu-test.log | tee -a "$report"
[ $rc -eq 0 ] || { say "gpu.test: exit $rc (log: gpu-test.log)"; fail=1; }
if [ -n "${QUICK:-}" ]; then
	say "QUICK: bench skipped"
	exit $fail
fi

say ""
say "## kernel time per 1080p frame (every feature, launch to counters on the host)"
timeout 60 ./gpu.test -test.run XXX -test.bench Kernels1080p -test.benchtime 2s -test.benchmem 2>&1 | grep -E 'Benchmark|ns/op' | tee -a "$report"

# bench MODE PROCS ARGS...: PROCS analyze processes at once on the bench
# clip, not paced; aggregate fps is frames / wall seconds, real-time streams
# that many fps / 30; CPU is the processes' user + system time.
bench() {
	local mode=$1 procs=$2
	shift 2
	local dir
	dir=$(mktemp -d)
	local start end
	start=$(date +%s.%N)
	(
		for i in $(seq "$procs"); do
			"$@" --format json --threads 1 --duration "$secs" --id "s$i" "$clip" >"$dir/$i.json" 2>"$dir/$i.err" &
		done
		wait
		times >"$dir/times"
	)
	end=$(date +%s.%N)
	local frames cpu decoders
	# No bc on a bare host: awk does the arithmetic.
	frames=$(cat "$dir"/*.json | grep -o '"type":"summary","stream":"[^"]*","frames":[0-9]*' | grep -o '[0-9]*$' | awk '{s += $1} END {print s + 0}')
	# `times`: the second line is the children's user and system time.
	cpu=$(sed -n 2p "$dir/times" | awk '{ n = split($0, f, " "); s = 0; for (i = 1; i <= n; i++) { split(f[i], t, "m"); s += t[1] * 60 + t[2] } print s }')
	decoders=$(cat "$dir"/*.json | grep -o '"decoder":"[^"]*"' | sort | uniq -c | tr -s ' ' | tr '\n' ';')
	say "$(awk -v m="$mode" -v p="$procs" -v f="$frames" -v s="$start" -v e="$end" -v c="$cpu" -v d="$decoders" 'BEGIN {
		w = e - s; fps = (w > 0) ? f / w : 0; ss = f / 30
		printf "%-26s %4d procs  %7.0f fps  %6.1f streams  %6.3f CPU s per stream-s  (%s)", m, p, fps, fps / 30, (ss > 0) ? c / ss : 0, d
	}')"
	grep -h . "$dir"/*.err | sort | uniq -c | sort -rn | head -3 | sed 's/^/    stderr: /' | tee -a "$report" >/dev/null
	rm -rf "$dir"
}

say ""
say "## concurrent 1080p30 streams, every detector on ($secs s of the bench clip per process, one decoder thread)"
# The CPU binary would hand over to streamqc-cuda beside it: not here.
cpu=(env STREAMQC_NO_CUDA=1 ./streamqc analyze)
bench "CPU decode, CPU detectors" "$cores" "${cpu[@]}" --hwaccel none
bench "NVDEC, host copies" $((2 * cores)) "${cpu[@]}" --hwaccel cuda
bench "NVDEC, GPU kernels" $((2 * cores)) ./streamqc-cuda analyze --hwaccel cuda
# Both at once: NVDEC for as many as it carries, the cores for the rest.
(
	bench "both: NVDEC + GPU kernels" $((2 * cores)) ./streamqc-cuda analyze --hwaccel cuda &
	bench "both: CPU decode" "$cores" "${cpu[@]}" --hwaccel none &
	wait
)
say ""
say "bytes device to host per frame: NVDEC with host copies: $((1920 * 1080 * 3 / 2)) (NV12 1080p);" \
	"GPU kernels: see bytes-to-host/frame above"
say "gpu-check: $([ $fail -eq 0 ] && echo PASS || echo FAIL)"
exit $fail
