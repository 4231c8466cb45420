#!/usr/bin/env bash
# Checks the release of the portable binary (make release-test; make test runs
# it): builds it twice and compares the bytes, then inspects each artefact with
# its own format's tools: tar, dpkg-deb, and rpm (Debian's package of it:
# Amazon Linux itself cannot be reached here). The .rpm is also installed
# with rpm into a throwaway root (--noscripts: its scripts need the target's
# shadow-utils and systemd) to see where its files land.
#
#   packaging/portable/release-test.sh OUTDIR VERSION BINARY
#
# Prints one line per check and "release-test: N passed, N failed".
set -uo pipefail

if [ $# -ne 3 ]; then
	echo "usage: $0 OUTDIR VERSION BINARY" >&2
	exit 2
fi
out=$1 version=$2 bin=$3
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
pass=0 fail=0
ok() { echo "PASS $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }
check() { # check NAME COMMAND...
	local name=$1
	shift
	if "$@" >/dev/null 2>&1; then ok "$name"; else bad "$name"; fi
}

if ! command -v rpm >/dev/null; then
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	echo "installing: rpm" >&2
	$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends rpm >/dev/null
fi

debver=$("$repo/packaging/deb/version.sh" "$version")
name=streamqc-${version#v}-linux-amd64
tarball=$out/$name.tar.gz deb=$out/streamqc-portable_${debver}_amd64.deb rpmf=$out/streamqc-${debver}-1.x86_64.rpm

if ! "$here/release.sh" "$out" "$version" "$bin" 2>"$out.log"; then
	cat "$out.log" >&2
	bad "release.sh builds the release"
	echo "release-test: $pass passed, $fail failed"
	exit 1
fi
ok "release.sh builds the release"
sums1=$(cat "$out/SHA256SUMS")
"$here/release.sh" "$out" "$version" "$bin" 2>>"$out.log"
if [ "$sums1" = "$(cat "$out/SHA256SUMS")" ]; then
	ok "a second build gives the same bytes (tar.gz, deb, rpm)"
else
	bad "a second build gives different bytes: $(diff <(echo "$sums1") "$out/SHA256SUMS" | tr '\n' ' ')"
fi

# ---- the tarball ----------------------------------------------------------------
want="$name/
$name/LICENSES/
$name/LICENSES/COPYRIGHT
$name/LICENSES/FFmpeg-COPYING.LGPLv2.1
$name/LICENSES/FFmpeg-LICENSE.md
$name/LICENSES/NOTICE-static-libraries
$name/LICENSES/OpenSSL-copyright
$name/LICENSES/SRT-copyright
$name/LICENSES/nv-codec-headers-copyright
$name/LICENSES/zlib-copyright
$name/README.md
$name/agent.yaml
$name/streamqc
$name/streamqc.service"
got=$(tar -tzf "$tarball" | sort)
if [ "$got" = "$want" ]; then ok "tarball holds binary, unit, agent.yaml, README, LICENSES"; else bad "tarball contents: $(diff <(echo "$want") <(echo "$got") | tr '\n' ' ')"; fi
owners=$(tar -tvzf "$tarball" | awk '{print $2}' | sort -u)
[ "$owners" = "0/0" ] && ok "tarball entries owned by 0/0" || bad "tarball owners: $owners"
x=$(mktemp -d)
trap 'rm -rf "$x"' EXIT
tar -xzf "$tarball" -C "$x"
cmp -s "$x/$name/streamqc" "$bin" && ok "tarball binary is the portable binary" || bad "tarball binary differs from $bin"
grep -q '^ExecStart=/usr/bin/streamqc run --config /etc/streamqc/agent.yaml' "$x/$name/streamqc.service" &&
	ok "unit runs /usr/bin/streamqc with /etc/streamqc/agent.yaml" || bad "unit ExecStart: $(grep ExecStart "$x/$name/streamqc.service")"
for want in "GNU Lesser General Public" "6(c)" "configured with" "OpenSSL 3" "Mozilla Public" "github.com/eclipse/paho.mqtt.golang"; do
	grep -rqF "$want" "$x/$name/LICENSES" && ok "licenses mention '$want'" || bad "licenses lack '$want'"
done

# ---- the .deb ---------------------------------------------------------------
info=$(dpkg-deb -f "$deb" Package Version Depends Conflicts 2>&1)
[[ $info == *"Package: streamqc-portable"* && $info == *"Version: $debver"* ]] && ok "deb is streamqc-portable $debver" || bad "deb fields: $info"
depends=$(dpkg-deb -f "$deb" Depends)
[[ $depends != *libav* && $depends == *"libc6 (>= 2.34)"* ]] && ok "deb depends on glibc, not FFmpeg: $depends" || bad "deb depends: $depends"
files=$(dpkg-deb -c "$deb" | awk '{print $6}')
for f in ./usr/bin/streamqc ./lib/systemd/system/streamqc.service ./etc/streamqc/agent.yaml ./usr/share/doc/streamqc-portable/copyright ./usr/share/streamqc/grafana/streamqc.json; do
	grep -qx "$f" <<<"$files" && ok "deb ships $f" || bad "deb lacks $f"
done
dpkg-deb --ctrl-tarfile "$deb" | tar -t | grep -q conffiles && dpkg-deb -I "$deb" conffiles | grep -qx /etc/streamqc/agent.yaml &&
	ok "deb: agent.yaml is a conffile" || bad "deb: agent.yaml is not a conffile"

# ---- the .rpm -----------------------------------------------------------------
q() { rpm -qp --nosignature "$@" "$rpmf" 2>/dev/null; }
[ "$(q --qf '%{NAME} %{VERSION} %{ARCH}')" = "streamqc $debver x86_64" ] && ok "rpm is streamqc $debver x86_64" || bad "rpm header: $(q --qf '%{NAME} %{VERSION} %{ARCH}')"
reqs=$(q --requires | sort -u | tr '\n' ' ')
[[ $reqs != *libav* && $reqs == *"glibc >= 2.34"* && $reqs == *systemd* ]] && ok "rpm requires glibc and systemd, not FFmpeg" || bad "rpm requires: $reqs"
rfiles=$(q -l)
for f in /usr/bin/streamqc /usr/lib/systemd/system/streamqc.service /etc/streamqc/agent.yaml /usr/share/doc/streamqc/copyright /usr/share/man/man1/streamqc.1.gz /usr/share/streamqc/grafana/streamqc.json; do
	grep -qx "$f" <<<"$rfiles" && ok "rpm ships $f" || bad "rpm lacks $f"
done
q --configfiles | grep -qx /etc/streamqc/agent.yaml && ok "rpm: agent.yaml is %config" || bad "rpm: agent.yaml is not %config"
[ "$(q --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' | awk '$2=="/etc/streamqc/agent.yaml"{print $1}')" = cn ] &&
	ok "rpm: agent.yaml is %config(noreplace)" || bad "rpm: agent.yaml flags $(q --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' | grep agent.yaml)"
[ "$(q --qf '[%{FILEMODES:perms} %{FILENAMES}\n]' | awk '$2=="/usr/bin/streamqc"{print $1}')" = "-rwxr-xr-x" ] && ok "rpm: binary mode 0755" || bad "rpm: binary mode"
scripts=$(q --scripts)
for s in "postinstall scriptlet" "preuninstall scriptlet" "postuninstall scriptlet" "useradd -r" "systemctl enable --now streamqc.service" "disable --now"; do
	grep -qF "$s" <<<"$scripts" && ok "rpm scripts: $s" || bad "rpm scripts lack: $s"
done
root=$x/root
if rpm --root "$root" --initdb 2>/dev/null && rpm --root "$root" -i --nodeps --noscripts --nosignature "$rpmf" 2>"$x/rpm.err"; then
	ok "rpm installs into a throwaway root"
	cmp -s "$root/usr/bin/streamqc" "$bin" && ok "rpm install: /usr/bin/streamqc is the portable binary" || bad "rpm install: binary"
	exe=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$root/usr/lib/systemd/system/streamqc.service")
	[ -x "$root$exe" ] && ok "rpm install: the unit's ExecStart ($exe) is installed" || bad "rpm install: ExecStart $exe missing"
	[ "$(rpm --root "$root" -q streamqc --qf '%{NAME}')" = streamqc ] && ok "rpm database lists streamqc" || bad "rpm database"
	rpm --root "$root" -V --nodeps streamqc >/dev/null 2>&1 && ok "rpm -V: installed files match the package" || bad "rpm -V: $(rpm --root "$root" -V --nodeps streamqc 2>&1 | head -3 | tr '\n' ' ')"
else
	bad "rpm install into a throwaway root: $(cat "$x/rpm.err")"
fi

echo "release-test: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
