#!/usr/bin/env bash
# Build Conductor in release mode and install it for one user (or system-wide).
#
# Usage: scripts/install.sh [--prefix DIR] [--from DIR] [--dry-run]
#   --prefix DIR  install prefix (default: ~/.local). Files go to
#                   DIR/bin/{run-agent,conductor}
#                   DIR/share/man/man1/*.1                       (one page per command)
#                   DIR/share/bash-completion/completions/{run-agent,conductor}
#                   DIR/share/zsh/site-functions/{_run-agent,_conductor}
#                   DIR/share/fish/vendor_completions.d/{run-agent,conductor}.fish
#                 so the default puts the binaries into ~/.local/bin.
#   --from DIR    install the run-agent and conductor binaries already built in DIR instead
#                 of running `cargo build --release` (e.g. --from target/release)
#   --dry-run     print what would be done, change nothing
#
# The completion scripts are the dynamic ones (`completions <shell> --dynamic`): at <TAB>
# they ask the installed binary, which also completes project, task and run ids. Binaries
# are replaced by rename, so a server running the old binary keeps running untouched.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
prefix="${HOME:?HOME is not set}/.local"
from=""
dry_run=0

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; }
die() { echo "install.sh: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; prefix="$2"; shift 2 ;;
    --prefix=*) prefix="${1#--prefix=}"; shift ;;
    --from) [ $# -ge 2 ] || die "--from needs a directory"; from="$2"; shift 2 ;;
    --from=*) from="${1#--from=}"; shift ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (allowed: --prefix DIR, --from DIR, --dry-run, --help)" ;;
  esac
done
[ -n "$prefix" ] || die "--prefix must not be empty"
case "$prefix" in /*) ;; *) prefix="$PWD/$prefix" ;; esac

say() { printf '%s\n' "$*"; }
run() { if [ "$dry_run" -eq 1 ]; then say "would run: $*"; else "$@"; fi; }

if [ -z "$from" ]; then
  say "building: cargo build --release --bins (in $repo)"
  if [ "$dry_run" -eq 0 ]; then
    (cd "$repo" && cargo build --release --bins)
  fi
  from="${CARGO_TARGET_DIR:-$repo/target}/release"
fi
for bin in run-agent conductor; do
  if [ "$dry_run" -eq 0 ] && [ ! -x "$from/$bin" ]; then
    die "$from/$bin is missing or not executable"
  fi
done

bindir="$prefix/bin"
mandir="$prefix/share/man/man1"
bashdir="$prefix/share/bash-completion/completions"
zshdir="$prefix/share/zsh/site-functions"
fishdir="$prefix/share/fish/vendor_completions.d"
run mkdir -p "$bindir" "$mandir" "$bashdir" "$zshdir" "$fishdir"

# Copy to a temp name in the target dir, then rename over the old file (atomic; a running
# process keeps its open image).
install_file() { # SRC DEST MODE
  if [ "$dry_run" -eq 1 ]; then say "would install $2"; return; fi
  local tmp="$2.install-$$"
  cp "$1" "$tmp" && chmod "$3" "$tmp" && mv -f "$tmp" "$2"
  say "installed $2"
}
# Writes the stdout of a command to DEST the same way.
install_output() { # DEST CMD...
  local dest="$1"; shift
  if [ "$dry_run" -eq 1 ]; then say "would write $dest ($*)"; return; fi
  local tmp="$dest.install-$$"
  "$@" > "$tmp" && chmod 644 "$tmp" && mv -f "$tmp" "$dest"
  say "installed $dest"
}

for bin in run-agent conductor; do
  install_file "$from/$bin" "$bindir/$bin" 755
done
for bin in run-agent conductor; do
  exe="$bindir/$bin"
  install_output "$bashdir/$bin" "$exe" completions bash --dynamic
  install_output "$zshdir/_$bin" "$exe" completions zsh --dynamic
  install_output "$fishdir/$bin.fish" "$exe" completions fish --dynamic
  if [ "$dry_run" -eq 1 ]; then
    say "would write man pages of $bin into $mandir"
  else
    "$exe" man --out-dir "$mandir" | sed 's/^/installed /'
  fi
done

say ""
if [ "$dry_run" -eq 1 ]; then say "dry run: nothing was changed"; exit 0; fi
say "done: $("$from/run-agent" --version 2>/dev/null | head -n1 || echo run-agent) in $bindir"
case ":$PATH:" in
  *":$bindir:"*) ;;
  *) say "note: $bindir is not on PATH; add it, e.g. export PATH=\"$bindir:\$PATH\"" ;;
esac
say "completions: bash loads $bashdir when it is \${XDG_DATA_HOME:-~/.local/share}/bash-completion/completions or under /usr/local/share;"
say "  zsh: fpath=($zshdir \$fpath) before compinit; fish: it reads $fishdir when $prefix/share is in XDG_DATA_DIRS,"
say "  else copy the file to ~/.config/fish/completions/. Man pages: man run-agent (MANPATH may need $prefix/share/man)."
