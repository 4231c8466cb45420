#!/usr/bin/env bash
# Writes the documentation files one .deb ships, into OUTDIR (make package):
#
#   packaging/deb/docs.sh OUTDIR PACKAGE BINARY DEB-VERSION MAINTAINER [GO BUILD FLAGS...]
#
# DOCS_STATIC_NOTICES=FILE (the portable flavour): FILE, the notices of the
# C libraries linked in (packaging/portable/release.sh), goes into the copyright.
#
#   OUTDIR/copyright     /usr/share/doc/PACKAGE/copyright: packaging/deb/copyright
#                        (streamqc itself: no license granted), then the license
#                        files of every Go module compiled into BINARY and of the
#                        Go standard library, verbatim (go list -deps ./cmd/streamqc
#                        with GO BUILD FLAGS, e.g. -tags cuda)
#   OUTDIR/changelog.gz  /usr/share/doc/PACKAGE/changelog.gz: one entry for
#                        DEB-VERSION (a native package: the version has no Debian
#                        revision, so Policy 12.7 names it changelog.gz, not
#                        changelog.Debian.gz), dated with the commit's date
#   OUTDIR/streamqc.1.gz /usr/share/man/man1/streamqc.1.gz: made from the
#                        command list BINARY prints
#
# Both .gz files are gzip -9n (no name or time in the header), so the same
# commit gives the same bytes.
set -euo pipefail

if [ $# -lt 5 ]; then
	echo "usage: $0 OUTDIR PACKAGE BINARY DEB-VERSION MAINTAINER [GO BUILD FLAGS...]" >&2
	exit 2
fi
out=$1 pkg=$2 bin=$3 debver=$4 maint=$5
shift 5
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
go=${GO:-go}
mkdir -p "$out"

# The date of the commit built (RFC 2822, as a changelog wants it); outside
# git, SOURCE_DATE_EPOCH or now.
date=$(git -C "$repo" log -1 --format=%cD 2>/dev/null) || date=
if [ -z "$date" ]; then
	date=$(LC_ALL=C date -u -R ${SOURCE_DATE_EPOCH:+-d "@$SOURCE_DATE_EPOCH"})
fi
commit=$(git -C "$repo" rev-parse --short=12 HEAD 2>/dev/null) || commit=unknown

# ---- copyright ----------------------------------------------------------------
# The terms and conditions of the Apache License 2.0 are replaced by a pointer
# to Debian's copy (Policy 12.5); what a module adds around them (its notice,
# the appendix, other licenses in the same file) is kept.
apache_ref() {
	awk '
	function flush() { if (held != "") print held; held = "" }
	skip == 1 { if ($0 ~ /additional liability\.[[:space:]]*$/) skip = 2; next }
	skip == 2 {
		if ($0 ~ /^[[:space:]]*$/) next
		skip = 0
		if ($0 ~ /END OF TERMS AND CONDITIONS/) next
	}
	held != "" && $0 ~ /^[[:space:]]*Version 2\.0, January 2004[[:space:]]*$/ {
		held = ""; skip = 1
		print "[The Apache License, Version 2.0: /usr/share/common-licenses/Apache-2.0]"
		next
	}
	{ flush() }
	/^[[:space:]]*Apache License[[:space:]]*$/ { held = $0; next }
	{ print }
	END { flush() }
	' "$1"
}
{
	cat "$here/copyright"
	echo
	echo "Third-party code compiled into /usr/bin/streamqc"
	echo "================================================"
	echo
	echo "The binary is statically linked with the Go standard library and the Go"
	echo "modules below, each under its own license, reproduced here verbatim from"
	if [ -n "${DOCS_STATIC_NOTICES:-}" ]; then
		# The portable flavour: FFmpeg and the C libraries it needs are inside.
		echo "the module sources the package was built from, and with FFmpeg and the"
		echo "C libraries it links, whose notices come first."
		echo
		cat "$DOCS_STATIC_NOTICES"
	else
		echo "the module sources the package was built from. The FFmpeg libraries are"
		echo "not included: they are Debian's packages (libavcodec59 and others), with"
		echo "their own copyright files."
	fi
	modules=$(cd "$repo" && "$go" list -deps "$@" \
		-f '{{with .Module}}{{if not .Main}}{{.Path}} {{.Version}} {{.Dir}}{{end}}{{end}}' ./cmd/streamqc | sort -u)
	goroot=$("$go" env GOROOT)
	gover=$("$go" env GOVERSION)
	printf '%s\n' "std $gover $goroot" "$modules" | while read -r path version dir; do
		[ -n "$path" ] || continue
		[ "$path" = std ] && path="the Go standard library"
		found=
		for f in "$dir"/*; do
			case $(basename "$f") in
			LICENSE* | LICENCE* | COPYING* | NOTICE* | PATENTS*) ;;
			*) continue ;;
			esac
			[ -f "$f" ] || continue
			found=1
			echo
			echo "---- $path $version: $(basename "$f")"
			echo
			apache_ref "$f"
		done
		if [ -z "$found" ]; then
			echo "docs.sh: $path $version ($dir) has no license file" >&2
			exit 1
		fi
	done
} >"$out/copyright.tmp"
mv "$out/copyright.tmp" "$out/copyright"

# ---- changelog ----------------------------------------------------------------
{
	echo "$pkg ($debver) bookworm; urgency=medium"
	echo
	echo "  * Built from the streamqc repository at commit $commit; the changes"
	echo "    are its git history."
	echo
	echo " -- $maint  $date"
} | gzip -9n >"$out/changelog.gz"

# ---- man page -----------------------------------------------------------------
usage=$("$bin" 2>&1 || true) # the command list, exit status 2
roff() { sed -e 's/\\/\\\\/g' -e 's/-/\\-/g' -e 's/^\./\\\&./' -e "s/^'/\\\\\\&'/"; }
{
	printf '.TH STREAMQC 1 "%s" "streamqc %s" "User Commands"\n' \
		"$(LC_ALL=C date -u -d "$date" +%Y-%m-%d)" "$(roff <<<"$debver")"
	echo '.SH NAME'
	echo 'streamqc \- live audio/video stream monitoring agent'
	echo '.SH SYNOPSIS'
	echo '.B streamqc'
	echo '.I command'
	echo '.RI [ flags ]'
	echo '.SH DESCRIPTION'
	echo '.B streamqc'
	echo 'watches live audio/video streams and reports perceptible defects (black,'
	echo 'frozen or blocky video, silence, clipping, loudness, A/V sync, signal loss,'
	echo 'decode errors). As the systemd service'
	echo '.B streamqc.service'
	echo 'it runs the agent configured by'
	echo '.IR /etc/streamqc/agent.yaml ,'
	echo 'sending defect events to an MQTT broker.'
	echo '.SH COMMANDS'
	# "  name args   description": two or more spaces before the description.
	sed -n '/^commands:/,$p' <<<"$usage" | sed -n 's/^  \([^ ].*[^ ]\)   *\([^ ].*\)$/\1\t\2/p' |
		while IFS=$'\t' read -r cmd desc; do
			echo '.TP'
			echo ".B $(roff <<<"$cmd")"
			roff <<<"$desc"
		done
	echo '.PP'
	echo 'Each command prints its flags with'
	echo '.BR \-h .'
	echo '.SH FILES'
	echo '.TP'
	echo '.I /etc/streamqc/agent.yaml'
	echo 'the agent configuration (a conffile; every key is described in it)'
	echo '.TP'
	echo '.I /var/lib/streamqc'
	echo 'state: the spool of events not yet acknowledged by the broker, the last good fleet configuration'
	echo '.TP'
	echo '.I /lib/systemd/system/streamqc.service'
	echo 'the systemd unit'
	echo '.SH SEE ALSO'
	echo '.BR systemctl (1),'
	echo '.BR journalctl (1);'
	echo 'the README of https://github.com/streamqc/streamqc'
} | gzip -9n >"$out/streamqc.1.gz"
