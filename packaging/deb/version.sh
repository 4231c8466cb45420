#!/usr/bin/env bash
# Prints the Debian package version for a streamqc version string: the
# argument, else $VERSION, else `git describe --tags --always --dirty` (the
# string `make build` stamps into the binary).
#
#   v1.2.3                 -> 1.2.3
#   v1.2.3-rc.1            -> 1.2.3~rc.1            (pre-release: sorts before 1.2.3)
#   v1.2.3-5-gabc1234      -> 1.2.3+git5.abc1234    (5 commits after the tag: after 1.2.3, before 1.2.4)
#   abc1234 (no tag yet)   -> 0.0.0~git20250520.abc1234  (date of that commit, UTC;
#                             also a hash of digits only, such as 0859122)
#   ...-dirty              -> ...+dirty, or .dirty after a +git part
#
# Anything else (e.g. "dev", when there is no git) is an error: a package
# needs a real version.
set -euo pipefail

v=${1:-${VERSION:-}}
if [ -z "$v" ]; then
  v=$(git describe --tags --always --dirty 2>/dev/null) || {
    echo "version.sh: no version given and git describe failed" >&2
    exit 1
  }
fi
in=$v

dirty=
if [[ $v == *-dirty ]]; then
  dirty=1
  v=${v%-dirty}
fi

# is_commit: an abbreviated hash of this repository that no tag is named
# after. Checked first: a hash of digits only (0859122) reads as a version.
is_commit() {
  [[ $1 =~ ^[0-9a-f]{7,40}$ ]] || return 1
  ! git rev-parse -q --verify "refs/tags/$1" >/dev/null 2>&1 &&
    git cat-file -e "$1^{commit}" 2>/dev/null
}

semver='([0-9]+(\.[0-9]+)*)(-([0-9A-Za-z.]+))?'
if is_commit "$v"; then
  date=$(TZ=UTC git show -s --format=%cd --date=format-local:%Y%m%d "$v")
  out="0.0.0~git${date}.${v}"
elif [[ $v =~ ^v?${semver}-([0-9]+)-g([0-9a-f]+)$ ]]; then
  # A tag plus commits: git describe's long form.
  out=${BASH_REMATCH[1]}
  [ -n "${BASH_REMATCH[4]}" ] && out+="~${BASH_REMATCH[4]}"
  out+="+git${BASH_REMATCH[5]}.${BASH_REMATCH[6]}"
elif [[ $v =~ ^v?${semver}$ ]]; then
  # Exactly a tag.
  out=${BASH_REMATCH[1]}
  [ -n "${BASH_REMATCH[4]}" ] && out+="~${BASH_REMATCH[4]}"
elif [[ $v =~ ^[0-9a-f]{7,40}$ ]]; then
  # No tag in the history: git describe --always prints the abbreviated hash.
  date=$(TZ=UTC git show -s --format=%cd --date=format-local:%Y%m%d "$v" 2>/dev/null) ||
    date=$(date -u +%Y%m%d)
  out="0.0.0~git${date}.${v}"
else
  echo "version.sh: cannot derive a Debian version from '$in' (want a tag like v1.2.3, git describe output, or a commit hash)" >&2
  exit 1
fi

if [ -n "$dirty" ]; then
  if [[ $out == *+* ]]; then out+=".dirty"; else out+="+dirty"; fi
fi

# Debian policy 5.6.12: upstream version starts with a digit, then
# alphanumerics and . + ~ (no '-': the package has no Debian revision).
if ! [[ $out =~ ^[0-9][A-Za-z0-9.+~]*$ ]]; then
  echo "version.sh: '$out' (from '$in') is not a valid Debian version" >&2
  exit 1
fi
echo "$out"
