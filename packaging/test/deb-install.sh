#!/usr/bin/env bash
# Installs, upgrades, removes and purges the streamqc .deb in a throwaway
# Debian 12 root, printing PASS/FAIL/SKIP per check; exits non-zero on any FAIL.
#
#   packaging/test/deb-install.sh DEB BINARY-VERSION      (make package-test)
#   packaging/test/deb-install.sh --preflight             (make test: can it run here?)
#
# DEB is the package `make package` built, BINARY-VERSION the string stamped
# into its binary (`streamqc version` prints "streamqc BINARY-VERSION").
# The upgrade package is built here with `make package` at a higher VERSION
# and a changed sample config, into the run's own directory.
#
# Needs root (debootstrap, chroot, mounts, systemd-nspawn) and the Debian
# mirror apt uses here; installs debootstrap, lintian and systemd-container
# on this machine when they are missing. --preflight prints why it cannot
# run (not root, the mirror does not answer) and exits 1, or exits 0.
#
# The base root (debootstrap --variant=minbase bookworm, plus systemd for
# systemctl and systemd-analyze) is made once and cached in .cache/deb-test/
# (DEB_TEST_CACHE); each run copies it, and downloaded .debs are kept in the
# cache too. KEEP=1 leaves the run's root for a look. DEB_TEST_QUIET=1 (make
# test) prints only the FAIL lines with their output, the SKIP lines and a
# last line "package-test: N passed, N failed"; the whole output goes to
# .cache/deb-test/last-run.log.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
suite=bookworm
cache=${DEB_TEST_CACHE:-$repo/.cache/deb-test}
base=$cache/base-$suite-minbase

# ---- the mirror apt uses here -----------------------------------------------
mirror=${DEB_TEST_MIRROR:-}
security=
if [ -z "$mirror" ]; then
	uris=$(
		{
			grep -hE '^[[:space:]]*URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null |
				awk '{for (i = 2; i <= NF; i++) print $i}'
			# one-line format: deb [options] URI suite components
			grep -hE '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
				sed -E 's/\[[^]]*\]//' | awk '{print $2}'
		} | grep -i debian || true
	)
	mirror=$(grep -v -- '-security' <<<"$uris" | head -1 || true)
	security=$(grep -- '-security' <<<"$uris" | head -1 || true)
fi
mirror=${mirror:-http://deb.debian.org/debian}

if [ "${1:-}" = --preflight ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "not root (debootstrap, chroot, mounts and systemd-nspawn need root; run make package-test as root)"
		exit 1
	fi
	tmp=$(mktemp)
	trap 'rm -f "$tmp"' EXIT
	if ! timeout 30 /usr/lib/apt/apt-helper download-file "$mirror/dists/$suite/Release" "$tmp" >/dev/null 2>&1; then
		echo "the Debian mirror $mirror does not answer ($mirror/dists/$suite/Release; no network?)"
		exit 1
	fi
	exit 0
fi

if [ $# -ne 2 ]; then
	echo "usage: $0 DEB BINARY-VERSION | --preflight" >&2
	exit 2
fi
if [ "$(id -u)" != 0 ]; then
	echo "deb-install: needs root (debootstrap, chroot, mounts, systemd-nspawn)" >&2
	exit 2
fi

if [ "${DEB_TEST_QUIET:-0}" = 1 ]; then
	mkdir -p "$cache"
	log=$cache/last-run.log
	echo "package-test: $(basename "$1") in a throwaway Debian 12 root"
	rc=0
	t0=$SECONDS
	DEB_TEST_QUIET=0 "$0" "$@" >"$log" 2>&1 || rc=$?
	# The FAIL and SKIP lines with their indented output.
	awk '/^(FAIL|SKIP)  /{p = 1; print; next} /^        /{if (p) print; next} {p = 0}' "$log"
	p=$(grep -c '^PASS  ' "$log" || true)
	f=$(grep -c '^FAIL  ' "$log" || true)
	if ! grep -qE '^== [0-9]+ passed, [0-9]+ failed' "$log"; then
		echo "FAIL  package-test stopped before its end (exit status $rc); the end of its log:"
		tail -25 "$log" | sed 's/^/        /'
		f=$((f + 1))
		[ "$rc" != 0 ] || rc=1
	fi
	echo "package-test: $((SECONDS - t0))s, the whole log: $log"
	echo "package-test: $p passed, $f failed"
	exit "$rc"
fi

deb1=$(realpath "$1")
bin1=$2
make=${MAKE:-make}
t_all=$SECONDS

say() { printf '== %s\n' "$*"; }
elapsed() { printf '   (%ds)\n' $((SECONDS - $1)); }

# ---- checks -----------------------------------------------------------------
pass=0
fail=0
check() { # check NAME COMMAND...: PASS when COMMAND succeeds
	local name=$1
	shift
	local out
	if out=$("$@" 2>&1); then
		printf 'PASS  %s\n' "$name"
		pass=$((pass + 1))
	else
		printf 'FAIL  %s\n' "$name"
		[ -n "$out" ] && printf '%s\n' "$out" | sed 's/^/        /' | head -20
		fail=$((fail + 1))
	fi
}
skipped=0
skip() {
	printf 'SKIP  %s\n' "$*"
	skipped=$((skipped + 1))
}

# ---- the upgrade package, built first (fails fast) --------------------------
deb1_version=$(dpkg-deb -f "$deb1" Version)
major=${deb1_version%%[.~+]*}
bin2="v$((10#$major + 1)).0.0-upgradetest"  # 10#: a leading 0 is not octal
mkdir -p "$cache"
work=$(mktemp -d "$cache/run.XXXXXX")
root=$work/root

mounted=()
cleanup() {
	local rc=$? m i
	for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
		m=${mounted[i]}
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || echo "deb-install: could not unmount $m" >&2
	done
	if grep -qF " $work/" /proc/mounts; then
		echo "deb-install: something is still mounted under $work; not removing it" >&2
	elif [ "${KEEP:-0}" = 1 ]; then
		echo "deb-install: KEEP=1: the root is $root"
	else
		rm -rf "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "upgrade package: make package VERSION=$bin2"
t=$SECONDS
agent2=$work/agent-upgrade.yaml
src_agent=$(dpkg-deb --fsys-tarfile "$deb1" | tar -xO ./etc/streamqc/agent.yaml)
{
	printf '%s\n' "$src_agent"
	echo "# a line the upgrade test added to the packaged sample"
} >"$agent2"
mkdir -p "$work/deb"
"$make" -C "$repo" --no-print-directory package VERSION="$bin2" \
	DEB_DIR="$work/deb" AGENT_YAML="$agent2" >"$work/make-upgrade.log" 2>&1 || {
	cat "$work/make-upgrade.log"
	echo "deb-install: building the upgrade package failed" >&2
	exit 1
}
deb2=$(ls "$work"/deb/streamqc_*.deb)
deb2_version=$(dpkg-deb -f "$deb2" Version)
elapsed $t

# ---- tools on this machine ---------------------------------------------------
need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v lintian >/dev/null || need+=(lintian)
command -v systemd-nspawn >/dev/null || need+=(systemd-container)
command -v readelf >/dev/null || need+=(binutils)
if [ ${#need[@]} -gt 0 ]; then
	say "apt-get install ${need[*]} (on this machine)"
	t=$SECONDS
	host_apt() { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >"$work/apt-host.log" 2>&1; }
	if ! host_apt; then
		apt-get update -qq >>"$work/apt-host.log" 2>&1 || true
		host_apt || {
			tail -20 "$work/apt-host.log"
			echo "deb-install: could not install ${need[*]}" >&2
			exit 1
		}
	fi
	elapsed $t
fi

# ---- the base root (cached) -------------------------------------------------
if [ ! -f "$base/.complete" ]; then
	say "debootstrap --variant=minbase $suite from $mirror (once; cached in $base)"
	t=$SECONDS
	rm -rf "$base.tmp"
	mkdir -p "$cache"
	if ! debootstrap --variant=minbase --include=systemd "$suite" "$base.tmp" "$mirror" >"$cache/debootstrap.log" 2>&1; then
		tail -20 "$cache/debootstrap.log"
		echo "deb-install: debootstrap failed (log: $cache/debootstrap.log)" >&2
		exit 1
	fi
	rm -rf "$base"
	mv "$base.tmp" "$base"
	touch "$base/.complete"
	elapsed $t
fi

say "throwaway root $root"
t=$SECONDS
cp -a "$base" "$root"
{
	echo "deb $mirror $suite main"
	echo "deb $mirror $suite-updates main"
	[ -n "$security" ] && echo "deb $security $suite-security main"
} >"$root/etc/apt/sources.list"
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
# No daemon starts in here, whatever the scripts think.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
mkdir -p "$cache/apt-archives/partial"
mnt() { mount "$@" && mounted+=("${*: -1}"); } # mnt MOUNT ARGS... TARGET
unmnt() {                                       # unmnt TARGET
	local i
	umount "$1"
	for i in "${!mounted[@]}"; do
		[ "${mounted[i]}" != "$1" ] || unset 'mounted[i]'
	done
	mounted=("${mounted[@]}")
}
mnt -t proc proc "$root/proc"
mnt --bind /dev "$root/dev"
mnt --bind "$cache/apt-archives" "$root/var/cache/apt/archives"
elapsed $t

chr() {
	chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 \
		DEBIAN_FRONTEND=noninteractive "$@"
}
in_root() { chr sh -c "$1"; } # a shell line in the root
apt_get() { chr apt-get -y -q -o Dpkg::Use-Pty=0 "$@"; }

say "apt-get update"
t=$SECONDS
apt_get update >"$work/apt-update.log" 2>&1 || {
	cat "$work/apt-update.log"
	exit 1
}
elapsed $t

# ---- install ----------------------------------------------------------------
say "install $(basename "$deb1")"
t=$SECONDS
cp "$deb1" "$deb2" "$root/tmp/"
check "apt-get install ./$(basename "$deb1") (pulls Debian's FFmpeg libraries)" \
	apt_get install "/tmp/$(basename "$deb1")"
elapsed $t

check "dpkg: streamqc $deb1_version installed" \
	in_root "dpkg-query -W -f='\${Status} \${Version}' streamqc | grep -qx 'install ok installed $deb1_version'"
check "no library missing (ldd /usr/bin/streamqc)" \
	in_root "ldd /usr/bin/streamqc >/tmp/ldd && ! grep 'not found' /tmp/ldd"
check "streamqc version prints 'streamqc $bin1'" \
	in_root "/usr/bin/streamqc version | grep -qxF 'streamqc $bin1'"
check "unit /lib/systemd/system/streamqc.service (User=streamqc, ExecStart from the config)" \
	in_root "grep -qx 'User=streamqc' /lib/systemd/system/streamqc.service &&
		grep -q '^ExecStart=/usr/bin/streamqc run --config /etc/streamqc/agent.yaml' /lib/systemd/system/streamqc.service"
check "/etc/streamqc/agent.yaml is a conffile" \
	in_root "test -f /etc/streamqc/agent.yaml && dpkg-query -W -f='\${Conffiles}' streamqc | grep -q ' /etc/streamqc/agent.yaml '"
check "system user and group streamqc (nologin, home /var/lib/streamqc)" \
	in_root "getent group streamqc && getent passwd streamqc | awk -F: '\$3 < 1000 && \$6 == \"/var/lib/streamqc\" && \$7 == \"/usr/sbin/nologin\"' | grep -q ."
check "streamqc in the groups video and render (where they exist)" \
	in_root "for g in video render; do ! getent group \$g >/dev/null || id -nG streamqc | grep -qw \$g || exit 1; done"
check "/var/lib/streamqc is streamqc:streamqc 0750" \
	in_root "test \"\$(stat -c '%U:%G %a' /var/lib/streamqc)\" = 'streamqc:streamqc 750'"
check "service enabled (multi-user.target.wants symlink, systemctl is-enabled)" \
	in_root "test -L /etc/systemd/system/multi-user.target.wants/streamqc.service &&
		systemctl is-enabled streamqc.service | grep -qx enabled"
usage=$(chr /usr/bin/streamqc 2>&1 || true) # usage, exit status 2
if grep -qE '^[[:space:]]+config check' <<<"$usage"; then
	check "streamqc config check /etc/streamqc/agent.yaml" \
		chr /usr/bin/streamqc config check /etc/streamqc/agent.yaml
else
	skip "streamqc config check: this binary has no 'config' command yet"
fi
if chr sh -c 'command -v systemd-analyze' >/dev/null; then
	# verify exits 0 on what it ignores ("Failed to parse ..."): any output fails.
	# shellcheck disable=SC2016 # expanded in the root
	check "systemd-analyze verify streamqc.service (no warnings)" \
		in_root 'out=$(systemd-analyze verify /lib/systemd/system/streamqc.service 2>&1); rc=$?; echo "$out"; [ $rc = 0 ] && [ -z "$out" ]'
else
	skip "systemd-analyze verify: not in the root"
fi

# ---- what Debian policy and lintian want of the package ---------------------
check "/usr/share/doc/streamqc/copyright (upstream name, no license granted, the bundled Go modules' licenses)" \
	in_root "grep -qx 'Upstream name: streamqc' /usr/share/doc/streamqc/copyright &&
		grep -q '^License: none granted; all rights reserved by the streamqc maintainers' /usr/share/doc/streamqc/copyright &&
		grep -q '^---- github.com/asticode/go-astiav ' /usr/share/doc/streamqc/copyright &&
		grep -q '^---- the Go standard library ' /usr/share/doc/streamqc/copyright"
check "/usr/share/doc/streamqc/changelog.gz: an entry for $deb1_version" \
	in_root "zcat /usr/share/doc/streamqc/changelog.gz | head -1 | grep -qxF 'streamqc ($deb1_version) bookworm; urgency=medium'"
check "/usr/share/man/man1/streamqc.1.gz" \
	in_root "zcat /usr/share/man/man1/streamqc.1.gz | grep -q '^\.TH STREAMQC 1 '"
check "/usr/share/streamqc/grafana/streamqc.json (the Grafana dashboard)" \
	in_root "grep -q '\"uid\": \"streamqc-agents\"' /usr/share/streamqc/grafana/streamqc.json"
# readelf runs here: binutils is not in the minimal root.
check "/usr/bin/streamqc is PIE with full RELRO (readelf: type DYN, PIE, BIND_NOW, GNU_RELRO)" \
	sh -c "readelf -h '$root/usr/bin/streamqc' | grep -qE 'Type:[[:space:]]+DYN' &&
		readelf -d '$root/usr/bin/streamqc' | grep -qE 'FLAGS_1.*PIE' &&
		readelf -d '$root/usr/bin/streamqc' | grep -qE 'BIND_NOW' &&
		readelf -lW '$root/usr/bin/streamqc' | grep -q GNU_RELRO"
check "/usr/bin/streamqc is stripped (no .symtab, no .debug_* sections)" \
	sh -c "! readelf -SW '$root/usr/bin/streamqc' | grep -E '\.(symtab|debug_[a-z]+|zdebug_[a-z]+)'"
lintian_out=$(lintian --fail-on error,warning --info "$deb1" 2>&1) && lintian_rc=0 || lintian_rc=$?
lintian_out=$(grep -v 'running with root privileges is not recommended' <<<"$lintian_out" || true)
check "lintian $(basename "$deb1"): no error or warning" sh -c "printf '%s\n' \"\$1\"; exit $lintian_rc" - "$lintian_out"
[ "$lintian_rc" = 0 ] && [ -n "$lintian_out" ] && printf '%s\n' "$lintian_out" | sed 's/^/        /'

# ---- start, stop, restart under a running systemd ---------------------------
# The root booted with systemd-nspawn -b (its own network namespace, with
# Mosquitto on its loopback): a oneshot unit there runs the checks after
# multi-user.target, writes them to /var/log/streamqc-boot-test.out and powers
# off. A root that does not boot (no cgroup delegation, no namespaces, ...) is
# a SKIP with the reason, never a PASS.
say "systemd boot: start, stop, restart (systemd-nspawn -b, Mosquitto in the root)"
t=$SECONDS
boot_test() {
	check "apt-get install mosquitto mosquitto-clients in the root (the broker for the boot test)" \
		apt_get install --no-install-recommends mosquitto mosquitto-clients
	cp "$deb1" "$root/root/streamqc-reinstall.deb"
	cat >"$root/usr/local/sbin/streamqc-boot-test" <<'EOF'
#!/bin/sh
# Runs in the booted test root (streamqc-boot-test.service); PASS/FAIL lines
# as deb-install.sh prints them, between BEGIN and END.
exec >/var/log/streamqc-boot-test.out 2>&1
echo BEGIN
U=streamqc.service
t() { # t NAME COMMAND...
	name=$1
	shift
	if o=$("$@" 2>&1); then
		echo "PASS  $name"
	else
		echo "FAIL  $name"
		[ -z "$o" ] || printf '%s\n' "$o" | tail -20 | sed 's/^/        /'
	fi
}
state() { systemctl is-active "$U" 2>/dev/null; }
prop() { systemctl show -p "$1" --value "$U"; }
diag() { # the unit's status and journal, the first time only
	if [ ! -e /run/streamqc-boot-test.diag ]; then
		: >/run/streamqc-boot-test.diag
		systemctl status --no-pager -n 0 "$U" 2>&1 | head -8
		journalctl -u "$U" --no-pager -o cat -n 8
	fi
	return 1
}
is() { # is STATE [SECONDS]
	i=0
	while [ "$(state)" != "$1" ] && [ "$i" -lt "${2:-0}" ]; do
		sleep 1
		i=$((i + 1))
	done
	[ "$(state)" = "$1" ] || { echo "state: $(state), want $1"; diag; }
}
status_is() { # status_is online|offline: the agent's retained status on the broker
	end=$(($(date +%s) + 25))
	while [ "$(date +%s)" -lt "$end" ]; do
		m=$(mosquitto_sub -h 127.0.0.1 -t 'streamqc/v1/+/+/status' -C 1 -W 5 2>&1)
		case $m in *"\"state\":\"$1\""*) return 0 ;; esac
		sleep 1
	done
	echo "status: ${m:-nothing}"
	diag
}
runs_as_streamqc() {
	pid=$(prop MainPID)
	uid=$(stat -c %u "/proc/$pid" 2>&1)
	[ "$uid" = "$(id -u streamqc)" ] || { echo "MainPID $pid, uid $uid"; diag; }
}
has_spool() { test -d /var/lib/streamqc/spool || { echo "no /var/lib/streamqc/spool"; diag; }; }
logged_running() { journalctl -u "$U" --no-pager -o cat | grep -q 'agent running' || diag; }
stop_clean() {
	systemctl stop "$U" || { diag; return 1; }
	is inactive && [ "$(prop Result)" = success ] || { echo "Result=$(prop Result) ExecMainStatus=$(prop ExecMainStatus)"; diag; }
}
start() { systemctl start "$U" && is active; }
restart() {
	p0=$(prop MainPID)
	systemctl restart "$U" && is active || return 1
	p1=$(prop MainPID)
	[ "$p1" != "$p0" ] && [ "$p1" != 0 ] || { echo "MainPID $p0 -> $p1"; diag; }
}
watchdog_fed() { # the agent pings every WatchdogSec/3
	w0=$(prop WatchdogTimestampMonotonic)
	i=0
	while [ "$(prop WatchdogTimestampMonotonic)" = "$w0" ] && [ "$i" -lt 16 ]; do
		sleep 1
		i=$((i + 1))
	done
	[ "$(prop WatchdogTimestampMonotonic)" != "$w0" ] || { echo "WatchdogTimestamp stays $w0 for 16 s"; diag; }
}
no_restarts() { [ "$(prop NRestarts)" = 0 ] || { echo "NRestarts=$(prop NRestarts)"; diag; }; }
reinstall_restarts() { # postinst configure <old version> under a running systemd: restart
	p0=$(prop MainPID)
	mv /usr/sbin/policy-rc.d /usr/sbin/policy-rc.d.off
	DEBIAN_FRONTEND=noninteractive dpkg -i /root/streamqc-reinstall.deb
	rc=$?
	mv /usr/sbin/policy-rc.d.off /usr/sbin/policy-rc.d
	[ "$rc" = 0 ] && is active 10 || return 1
	p1=$(prop MainPID)
	[ "$p1" != "$p0" ] || { echo "MainPID stays $p0"; diag; }
}

t "streamqc.service started at boot (enabled by the package): active" is active 60
t "the agent runs as the user streamqc" runs_as_streamqc
t "the unit's sandbox lets it write its state (/var/lib/streamqc/spool)" has_spool
t "it connects to the broker in the root: status online (retained)" status_is online
t "journal: the agent's 'agent running' line" logged_running
t "systemctl stop: inactive, Result=success" stop_clean
t "the stop publishes status offline" status_is offline
t "systemctl start: active (returns after READY=1)" start
t "systemctl restart: active, a new main PID" restart
t "systemd's watchdog is fed (WatchdogTimestamp advances)" watchdog_fed
t "no restart by systemd (NRestarts=0)" no_restarts
t "dpkg -i again under systemd: postinst restarts the agent" reinstall_restarts
t "systemctl stop: inactive, Result=success" stop_clean
echo END
systemctl --no-block poweroff
EOF
	chmod 0755 "$root/usr/local/sbin/streamqc-boot-test"
	cat >"$root/etc/systemd/system/streamqc-boot-test.service" <<'EOF'
[Unit]
Description=streamqc package test under a running systemd
After=multi-user.target

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/streamqc-boot-test
TimeoutStartSec=240

[Install]
WantedBy=multi-user.target
EOF
	ln -sf /etc/systemd/system/streamqc-boot-test.service "$root/etc/systemd/system/multi-user.target.wants/"
	rm -f "$root/var/log/streamqc-boot-test.out"

	# Under a running systemd, nspawn gets its own delegated scope over D-Bus;
	# elsewhere (a container's or a VM's init that is not systemd) it keeps
	# the caller's cgroup.
	local flags=(-b --register=no --private-network)
	[ -d /run/systemd/system ] || flags+=(--keep-unit)
	# nspawn mounts its own /proc and /dev (and wants /dev empty).
	unmnt "$root/dev"
	unmnt "$root/proc"
	local rc=0
	timeout -k 10 300 systemd-nspawn -q -D "$root" -M streamqc-deb-test "${flags[@]}" </dev/null >"$work/nspawn.log" 2>&1 || rc=$?
	mnt -t proc proc "$root/proc"
	mnt --bind /dev "$root/dev"
	sed -i 's/\x1b\[[0-9;]*m//g' "$work/nspawn.log"
	# nspawn leaves an empty directory there where /run is not a tmpfs.
	rmdir /run/systemd/nspawn/propagate/streamqc-deb-test 2>/dev/null || true

	local res=$root/var/log/streamqc-boot-test.out line
	if ! grep -qx BEGIN "$res" 2>/dev/null; then
		local why
		why=$(grep -m1 -iE 'fail|error|cannot|not supported|permission|denied' "$work/nspawn.log" || tail -1 "$work/nspawn.log")
		if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then why="timed out after 300 s; ${why}"; fi
		skip "systemd boot: systemd-nspawn ${flags[*]} did not run the checks (exit status $rc): ${why:-no output} (log: $work/nspawn.log)"
		[ "${KEEP:-0}" = 1 ] || sed 's/^/        /' "$work/nspawn.log" | tail -15
		return 0
	fi
	while IFS= read -r line; do
		case $line in
		"PASS  "*) pass=$((pass + 1)) ;;
		"FAIL  "*) fail=$((fail + 1)) ;;
		"        "*) ;;
		*) continue ;;
		esac
		printf '%s\n' "$line"
	done <"$res"
	if ! grep -qx END "$res"; then
		check "the boot checks ran to their end (systemd-nspawn exit status $rc)" sh -c "tail -15 '$work/nspawn.log'; false"
	fi
	rm -f "$root/etc/systemd/system/multi-user.target.wants/streamqc-boot-test.service" \
		"$root/etc/systemd/system/streamqc-boot-test.service" "$root/usr/local/sbin/streamqc-boot-test" \
		"$root/root/streamqc-reinstall.deb"
}
boot_test
elapsed $t

# ---- upgrade with a locally edited conffile ---------------------------------
say "upgrade to $deb2_version with a local edit in /etc/streamqc/agent.yaml"
t=$SECONDS
in_root "echo '# local edit by the upgrade test' >>/etc/streamqc/agent.yaml && echo spool >/var/lib/streamqc/marker"
check "upgrade version $deb2_version > $deb1_version" dpkg --compare-versions "$deb2_version" gt "$deb1_version"
check "apt-get install ./$(basename "$deb2") (confold: keep local edits)" \
	apt_get -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold install "/tmp/$(basename "$deb2")"
elapsed $t
check "dpkg: streamqc $deb2_version installed" \
	in_root "dpkg-query -W -f='\${Status} \${Version}' streamqc | grep -qx 'install ok installed $deb2_version'"
check "streamqc version prints 'streamqc $bin2'" \
	in_root "/usr/bin/streamqc version | grep -qxF 'streamqc $bin2'"
check "conffile: the local edit is kept" \
	in_root "grep -qx '# local edit by the upgrade test' /etc/streamqc/agent.yaml"
check "conffile: the new sample is beside it (agent.yaml.dpkg-dist)" \
	in_root "grep -qx '# a line the upgrade test added to the packaged sample' /etc/streamqc/agent.yaml.dpkg-dist"
check "state kept across the upgrade (/var/lib/streamqc/marker)" \
	in_root "grep -qx spool /var/lib/streamqc/marker"
if grep -qE '^[[:space:]]+config check' <<<"$usage"; then
	check "streamqc config check passes on the edited conffile" \
		chr /usr/bin/streamqc config check /etc/streamqc/agent.yaml
fi
check "service still enabled" \
	in_root "test -L /etc/systemd/system/multi-user.target.wants/streamqc.service"

# ---- remove, then purge -----------------------------------------------------
say "apt-get remove streamqc"
check "apt-get remove streamqc" apt_get remove streamqc
check "binary and unit gone" \
	in_root "! test -e /usr/bin/streamqc && ! test -e /lib/systemd/system/streamqc.service"
check "remove keeps the conffile and the state" \
	in_root "grep -qx '# local edit by the upgrade test' /etc/streamqc/agent.yaml && test -f /var/lib/streamqc/marker"

say "apt-get purge streamqc"
check "apt-get purge streamqc" apt_get purge streamqc
check "dpkg: streamqc is not installed" \
	in_root "! dpkg-query -W -f='\${Status}' streamqc 2>/dev/null | grep -q installed"
check "purge removes /var/lib/streamqc" in_root "! test -e /var/lib/streamqc"
check "purge removes the conffile, its .dpkg-dist and /etc/streamqc" in_root "! test -e /etc/streamqc"
check "purge removes the enable symlink" \
	in_root "! test -e /etc/systemd/system/multi-user.target.wants/streamqc.service &&
		! test -L /etc/systemd/system/multi-user.target.wants/streamqc.service"
check "purge keeps the system user streamqc (documented choice)" in_root "getent passwd streamqc"

say "$pass passed, $fail failed, $skipped skipped ($((SECONDS - t_all))s)"
[ "$fail" = 0 ]
