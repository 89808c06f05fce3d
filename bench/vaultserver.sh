#!/usr/bin/env bash
# vaultserver.sh CORPUS [RUNS]: times a full backup of CORPUS into an
# embedded vault and through a vault server on 127.0.0.1 (same binary, same
# machine, alternating), and prints the times and their ratio. The page
# cache is warmed first. The goal (issue 3): remote at most 1.3x embedded.
# The work folder is made under $TMPDIR (default /tmp): point it at a folder
# of the disk to measure where nothing was deleted in bulk in the last minutes
# (BENCHMARKS.md, "The vault server against the embedded vault").
set -euo pipefail
corpus=$(cd "${1:?usage: vaultserver.sh CORPUS [RUNS]}" && pwd)
runs=${2:-1}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
mkdir "$work/trash"
srv=
cleanup() { [ -n "$srv" ] && kill "$srv" 2>/dev/null && wait "$srv" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
# retire PATH...: move the previous run's folders to the trash, deleted only at
# exit. Deleting them here would charge the next run for it: on ext4 the inode
# allocator skips inodes freed in the last minute or more, so creating files
# right after deleting thousands (the agent's tree cache) costs several times
# more kernel time (bench/run.sh does the same; see its settle step).
retire() { for p in "$@"; do [ -e "$p" ] && mv "$p" "$work/trash/${p##*/}.$r"; done; return 0; }
(cd "$root" && CGO_ENABLED=0 go build -o "$work/coffer" ./cmd/coffer)
export COFFER_PASSPHRASE='benchmark passphrase, long enough'
tar -cf /dev/null -C "$corpus" . # warm the page cache
now() { date +%s.%N; }
for r in $(seq "$runs"); do
  retire "$work/emb" "$work/h1"
  t0=$(now)
  "$work/coffer" --home "$work/h1" --vault "$work/emb" backup -q "$corpus"
  t1=$(now)
  emb=$(echo "$t1 - $t0" | bc)

  retire "$work/srv" "$work/h2"
  "$work/coffer" vault serve --dir "$work/srv" --listen 127.0.0.1:0 >"$work/serve.out" 2>"$work/serve.log" &
  srv=$!
  until grep -q "TLS fingerprint" "$work/serve.out" 2>/dev/null; do sleep 0.1; done
  "$work/coffer" vault credentials --dir "$work/srv" --out "$work/creds.json" >/dev/null
  "$work/coffer" --home "$work/h2" register --credentials "$work/creds.json" --name bench >/dev/null
  t0=$(now)
  "$work/coffer" --home "$work/h2" backup -q "$corpus"
  t1=$(now)
  rem=$(echo "$t1 - $t0" | bc)
  kill "$srv"; wait "$srv" || true; srv=
  printf 'run %d: embedded %.1f s, vault server %.1f s, ratio %.2f\n' "$r" "$emb" "$rem" "$(echo "$rem / $emb" | bc -l)"
done
