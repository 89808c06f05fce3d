#!/usr/bin/env bash
# run.sh - side-by-side benchmark of Coffer against restic and borg (and kopia when
# a kopia binary is on PATH) on the corpora of shared/corpus/make-corpora.sh.
#
#   bash bench/run.sh [--corpora DIR] [--out DIR] [--runs N]
#                     [--tools coffer,restic,borg[,kopia]] [--scenarios linux,pg,gotree]
#
#   --corpora DIR   corpus directory (default $COFFER_BENCH_CORPORA, else ../corpora
#                   beside the repository); missing corpora are built there with
#                   ../shared/corpus/make-corpora.sh
#   --out DIR       work and result directory (default $COFFER_BENCH_OUT, else
#                   ../bench-out beside the repository); stage copies, repositories
#                   and restores live here, results go to DIR/results
#   --runs N        rounds (default 3); every round runs every scenario step by
#                   step, each step for every tool in turn (their order rotating
#                   from round to round), so paired ratios come from one window
#   --tools LIST    default coffer,restic,borg (+kopia when on PATH)
#   --scenarios L   default linux,pg,gotree
#
# Environment: COFFER_BENCH_CORPORA, COFFER_BENCH_OUT (see above); COFFER_BENCH_BIN
# names a prebuilt coffer binary to measure instead of building ./cmd/coffer.
#
# Scenarios (see bench/README.md): linux = full backup of a stage copy of linux,
# unchanged backup, linux2 synced in place then changed backup, full restore,
# one-file restore, verified against linux2; pg = pgdata then pgdata2 in place,
# repository growth; gotree = like linux on the Go tree (its "next day" is made
# by mutate.sh into the out directory), cheap enough for development.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
here=$root/bench
# shellcheck source=bench/tools.sh
. "$here/tools.sh"

die() { echo "bench: $*" >&2; exit 1; }
say() { echo "bench: $*" >&2; }

corpora=${COFFER_BENCH_CORPORA:-$root/../corpora}
out=${COFFER_BENCH_OUT:-$root/../bench-out}
runs=3
tools=
scenarios=linux,pg,gotree
while [ $# -gt 0 ]; do
  case $1 in
    --corpora)   corpora=${2:?--corpora needs a directory}; shift 2 ;;
    --out)       out=${2:?--out needs a directory}; shift 2 ;;
    --runs)      runs=${2:?--runs needs a number}; shift 2 ;;
    --tools)     tools=${2:?--tools needs a list}; shift 2 ;;
    --scenarios) scenarios=${2:?--scenarios needs a list}; shift 2 ;;
    -h|--help)   sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive number"
if [ -z "$tools" ]; then
  tools=coffer,restic,borg
  command -v kopia >/dev/null && tools+=,kopia
fi
IFS=, read -r -a TOOLS <<<"$tools"
IFS=, read -r -a SCENS <<<"$scenarios"
for t in "${TOOLS[@]}"; do
  case $t in coffer|restic|borg|kopia) ;; *) die "unknown tool $t" ;; esac
done
for s in "${SCENS[@]}"; do
  case $s in linux|pg|gotree) ;; *) die "unknown scenario $s" ;; esac
done

mkdir -p "$out" "$corpora"
out=$(cd "$out" && pwd)
corpora=$(cd "$corpora" && pwd)
res=$out/results
logs=$res/logs
mkdir -p "$out/bin" "$out/stage" "$out/repos" "$out/restore"

# ---------------------------------------------------------------- installs
need_debs() {  # need_debs PACKAGE... : installs the Debian packages that are missing
  local missing=() p sudo=
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || sudo=sudo
  say "installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}
debs=(time rsync)
for t in "${TOOLS[@]}"; do
  case $t in
    restic) debs+=(restic) ;;
    borg)   debs+=(borgbackup) ;;
    kopia)  command -v kopia >/dev/null || die "kopia requested but no kopia binary on PATH" ;;
  esac
done
need_debs "${debs[@]}"

command -v go >/dev/null || die "go is needed to build coffer and the summarizer"
(cd "$root" && CGO_ENABLED=0 go build -o "$out/bin/summarize" ./bench/summarize) ||
  die "building bench/summarize failed"
(cd "$root" && CGO_ENABLED=0 go build -o "$out/bin/floor" ./bench/floor) ||
  die "building bench/floor failed"
COFFER_BIN=$out/bin/coffer
export COFFER_BIN
for t in "${TOOLS[@]}"; do
  [ "$t" = coffer ] || continue
  rm -f "$COFFER_BIN"
  if [ -n "${COFFER_BENCH_BIN:-}" ]; then
    cp "$COFFER_BENCH_BIN" "$COFFER_BIN" || die "cannot copy COFFER_BENCH_BIN"
  else
    (cd "$root" && CGO_ENABLED=0 go build -o "$COFFER_BIN" ./cmd/coffer) || die "building coffer failed"
  fi
  for c in backup restore; do
    "$COFFER_BIN" "$c" --help >/dev/null 2>&1 ||
      die "this coffer has no '$c' command yet; run with --tools restic,borg"
  done
done

# ---------------------------------------------------------------- corpora
# scenario table: corpus A, corpus B ("next day"), whether it has the unchanged
# backup and the restores, and candidate small files for the one-file restore.
scen_a() { case $1 in linux) echo "$corpora/linux" ;; pg) echo "$corpora/pgdata" ;; gotree) echo "$corpora/gotree" ;; esac; }
scen_b() { case $1 in linux) echo "$corpora/linux2" ;; pg) echo "$corpora/pgdata2" ;; gotree) echo "$out/corpus/gotree2" ;; esac; }
scen_full() { [ "$1" != pg ]; }
scen_files() { case $1 in linux) echo "README MAINTAINERS COPYING" ;; gotree) echo "VERSION LICENSE README.md" ;; esac; }

want=()
for s in "${SCENS[@]}"; do
  case $s in linux) want+=(linux linux2) ;; pg) want+=(pgdata pgdata2) ;; gotree) want+=(gotree) ;; esac
done
missing=()
for c in "${want[@]}"; do [ -f "$corpora/.$c.done" ] || missing+=("$c"); done
if [ ${#missing[@]} -gt 0 ]; then
  mk=$root/../shared/corpus/make-corpora.sh
  [ -f "$mk" ] || die "corpora ${missing[*]} missing in $corpora and $mk not found"
  say "building corpora ${missing[*]} in $corpora (this takes a while)"
  bash "$mk" "$corpora" "${missing[@]}"
fi
if [[ " ${SCENS[*]} " == *" gotree "* ]] && [ ! -f "$out/corpus/.gotree2.done" ]; then
  say "making gotree2 (mutate.sh) in $out/corpus"
  mkdir -p "$out/corpus"
  rm -rf "$out/corpus/gotree2"
  bash "$root/../shared/corpus/mutate.sh" "$corpora/gotree" "$out/corpus/gotree2"
  touch "$out/corpus/.gotree2.done"
fi

# the one-file restore picks the first candidate that is a regular file in B
declare -A ONE
for s in "${SCENS[@]}"; do
  scen_full "$s" || continue
  for f in $(scen_files "$s"); do
    if [ -f "$(scen_b "$s")/$f" ] && [ ! -L "$(scen_b "$s")/$f" ]; then ONE[$s]=$f; break; fi
  done
  [ -n "${ONE[$s]:-}" ] || die "no small file for the one-file restore in $(scen_b "$s")"
done

# ---------------------------------------------------------------- measuring
warm() {  # warm DIR: read every file once, so the page cache holds it
  find "$1" -type f -print0 | xargs -0 -r cat >/dev/null
}
sync_to() {  # sync_to SRC DST: make DST an exact copy of SRC, in place
  rsync -aH --inplace --delete "$1/" "$2/"
  sync
}
# settle: before a full restore, drop the kernel's caches and warm the tool's
# repository and client state again, so every tool restores from the same state.
#
# Deleted trees go to the trash ($BENCH_TRASH, emptied only when the run ends), not
# rm -rf: on ext4 without a journal (this kind of VM disk), the inode allocator
# skips inodes freed in the last minute or more (fs/ext4/ialloc.c,
# recently_deleted), so right after the previous tool's 78k restored files were
# deleted, creating 78k files costs 3-7x more kernel time, for whichever tool
# comes next. Without root the caches cannot be dropped: the report's meta says so.
drop_caches() {  # written back first; without root the caches stay
  sync
  if [ -w /proc/sys/vm/drop_caches ]; then
    echo 3 >/proc/sys/vm/drop_caches
  fi
}
settle() {
  drop_caches
  warm "$repo"
  [ -d "$repo.state" ] && warm "$repo.state"
  case $tool in
    coffer) cat "$COFFER_BIN" >/dev/null ;;
    *) cat "$(command -v "$tool")" >/dev/null ;;
  esac
}
dusb() { if [ -e "$1" ]; then du -sb "$1" | cut -f1; else echo 0; fi; }

# quiet_disk DIR: waits until no inodes have been freed on DIR's file system for
# 65 s, so that none is still in the allocator's one-minute window (see settle):
# this run's own deletions (the previous run's trash, just below) and anyone
# else's, including one still going on (a run that started 30 s after 1.1M files
# were deleted measured the kernel's file creation at 3.6x its settled cost). It
# gives up after ten minutes, saying so.
quiet_disk() {
  local free last since=$SECONDS start=$SECONDS
  last=$(stat -f -c %d "$1")
  while ((SECONDS - since < 65)); do
    if ((SECONDS - start > 600)); then
      say "warning: inodes are still being freed on $1's file system; measuring anyway"
      return
    fi
    sleep 5
    free=$(stat -f -c %d "$1")
    ((free > last + 100)) && since=$SECONDS
    last=$free
  done
}

# Results and trash of the previous run. The floor below waits until the inodes
# this frees are past the allocator's window (quiet_disk).
rm -rf "$res" "$out/trash"
mkdir -p "$res" "$logs"
export BENCH_TRASH=$out/trash
echo "round,scenario,tool,step,wall_s,user_s,sys_s,maxrss_kib,repo_bytes,state_bytes" >"$res/runs.csv"
echo "round,scenario,tool,content_diffs,meta_diffs,one_file" >"$res/verify.csv"

# timed STEP FUNC ARGS...: runs a tools.sh function with GNU time in front of its
# tool command; appends a CSV row (repository and client state sizes after the
# step). Stops the whole benchmark when the step fails.
timed() {
  local step=$1; shift
  local base=$logs/r$round-$scen-$tool-$step tf rc=0
  tf=$base.time
  rm -f "$tf"
  BENCH_TIME=(/usr/bin/time -f '%e %U %S %M' -o "$tf")
  "$@" >"$base.log" 2>&1 || rc=$?
  BENCH_TIME=()
  if [ $rc -ne 0 ]; then
    tail -n 30 "$base.log" >&2
    die "$tool $step ($scen, round $round) failed with exit $rc; log above and in $base.log"
  fi
  [ -f "$tf" ] || return 0  # the tool has no such step
  local wall user sys rss
  read -r wall user sys rss < <(tail -n 1 "$tf")
  echo "$round,$scen,$tool,$step,$wall,$user,$sys,$rss,$(dusb "$repo"),$(dusb "$repo.state")" >>"$res/runs.csv"
  printf '  %-7s %-7s %-12s %7ss wall %7ss cpu %6s MiB\n' "$scen" "$tool" "$step" "$wall" \
    "$(awk -v u="$user" -v s="$sys" 'BEGIN{printf "%.2f", u+s}')" "$((rss / 1024))" >&2
}

# A round runs one scenario step by step, each step for every tool in turn
# (step-major): the tools' initial backups follow one another within seconds,
# so a pair of them shares the machine's state of that moment, which on a
# shared host moves by a third within minutes. The tools' order rotates from
# round to round, so none always goes first. Untimed syncs between steps keep
# one tool's writeback out of the next tool's step.

# for_tools FUNC: runs FUNC once per tool of this round's order, with tool, repo
# and rd set.
for_tools() {
  local t
  for t in "${ORDER[@]}"; do
    tool=$t repo=$out/repos/$t-$scen rd=$out/restore/$t-$scen
    "$@"
  done
}

step_fresh() { tool_wipe "$tool" "$repo"; discard "$rd"; }
step_init() { timed init tool_init "$tool" "$repo"; sync; }
# Every backup step reads the stage once more first, untimed: borg leaves the
# files it backed up out of the page cache (after its backup of the linux
# stage, the next tool read 1.45 GB from the disk and took twice as long).
step_backup() {  # step_backup STEP TAG
  warm "$stage"
  timed "$1" tool_backup "$tool" "$repo" "$stage" "$2"; sync
}
step_backup_pass() {  # Coffer only: the unchanged backup with the passphrase given
  [ "$tool" = coffer ] || return 0
  warm "$stage"
  BENCH_COFFER_PASS=1 timed backup_A2_pass tool_backup "$tool" "$repo" "$stage" A2; sync
}
step_restores() {  # the full restore, its check, and the one-file restore
  local rootdir vf content meta one1 onef
  settle
  timed restore_full tool_restore "$tool" "$repo" B "$rd/full"
  rootdir=$(tool_root "$tool" "$rd/full" "$stage")
  if [ ! -d "$rootdir" ]; then
    ls -la "$rd/full" >&2 || true
    die "$tool restore_full: restored tree not found at $rootdir"
  fi
  vf=$logs/r$round-$scen-$tool-verify.txt
  # checksums for content; --modify-window=-1 compares mtimes to the nanosecond
  rsync -anci --modify-window=-1 --delete "$b/" "$rootdir/" >"$vf" || die "verify rsync failed for $tool"
  content=$(grep -c '^[<>ch*]' "$vf" || true)
  meta=$(grep -c '^\.' "$vf" || true)
  discard "$rd/full"
  sync

  timed restore_one tool_restore1 "$tool" "$repo" B "$stage" "${ONE[$scen]}" "$rd/one"
  one1=$(tool_file "$tool" "$rd/one" "$stage" "${ONE[$scen]}")
  if cmp -s "$one1" "$b/${ONE[$scen]}"; then onef=ok; else onef=FAIL; fi
  discard "$rd"
  echo "$round,$scen,$tool,$content,$meta,$onef" >>"$res/verify.csv"
  say "  verify $tool $scen: $content content diffs, $meta metadata-only diffs, one file $onef"
  if [ "$content" != 0 ] || [ "$onef" != ok ]; then
    head -n 20 "$vf" >&2
    die "$tool restored $scen wrongly (round $round): see $vf"
  fi
  if [ "$meta" != 0 ] && [ "$tool" = coffer ]; then
    head -n 20 "$vf" >&2
    die "coffer restored $scen with metadata differences (round $round): see $vf"
  fi
}
step_wipe() { tool_wipe "$tool" "$repo"; }

run_round() {  # run_round: one scenario for every tool (round, scen, ORDER set by the caller)
  local a b stage tool repo rd
  a=$(scen_a "$scen"); b=$(scen_b "$scen")
  stage=$out/stage/$scen
  for_tools step_fresh
  sync_to "$a" "$stage"
  warm "$stage"
  for_tools step_init
  for_tools step_backup backup_A A
  if scen_full "$scen"; then
    for_tools step_backup backup_A2 A2
    for_tools step_backup_pass
  fi
  sync_to "$b" "$stage"
  for_tools step_backup backup_B B
  if scen_full "$scen"; then
    for_tools step_restores
  fi
  for_tools step_wipe
  sync
}

# ---------------------------------------------------------------- machine
{
  echo "date_utc=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "command=bash bench/run.sh --runs $runs --tools $tools --scenarios $scenarios"
  echo "cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)"
  echo "cores=$(nproc)"
  echo "memory_gib=$(free -g | awk '/^Mem:/{print $2}')"
  echo "os=$(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "kernel=$(uname -r)"
  echo "filesystem=$(df --output=fstype "$out" | tail -n 1)"
  dev=$(df --output=source "$out" | tail -n 1)
  disk=$(lsblk -no PKNAME "$dev" 2>/dev/null | head -n 1); [ -n "$disk" ] || disk=$(lsblk -dno NAME "$dev" 2>/dev/null || true)
  drv=$(readlink -f "/sys/block/$disk/device/driver" 2>/dev/null || true)
  echo "disk=${disk:-unknown}, $(lsblk -dno SIZE "/dev/$disk" 2>/dev/null | tr -d ' '), driver ${drv##*/}; repositories, sources and restores on the same disk"
  echo "go=$(go version | awk '{print $3}')"
  for t in "${TOOLS[@]}"; do echo "version_$t=$(tool_version "$t")"; done
  if [ -w /proc/sys/vm/drop_caches ]; then
    echo "before_restore=caches dropped, repository and client state warmed again; deleted trees kept in a trash until the run ends"
  else
    echo "before_restore=caches NOT dropped (not root): restores may pay for the previous tool's deletions"
  fi
} >"$res/meta.txt"

say "tools: ${TOOLS[*]}; scenarios: ${SCENS[*]}; rounds: $runs; results in $res"
for s in "${SCENS[@]}"; do
  warm "$(scen_a "$s")"; warm "$(scen_b "$s")"
done
# Floors: bench/floor on the first corpus of each scenario with a full restore,
# once, before the rounds. Its copy of the corpus goes to the trash, so that no
# deletion slows the rounds' restores.
echo "scenario,step,files,bytes,wall_s,user_s,sys_s" >"$res/floor.csv"
for s in "${SCENS[@]}"; do
  scen_full "$s" || continue
  say "floor: the kernel's own file work on $(scen_a "$s")"
  # Settled as a restore is: the buffers written (a dirty inode table
  # stretches the allocator's window to six minutes), nothing deleted in
  # the last minute, the caches dropped, the corpus read again.
  sync
  quiet_disk "$out"
  drop_caches
  warm "$(scen_a "$s")"
  mkdir -p "$BENCH_TRASH/floor-$s"
  "$out/bin/floor" -csv -keep "$(scen_a "$s")" "$BENCH_TRASH/floor-$s" 2>>"$logs/floor.log" |
    tail -n +2 | sed "s/^/$s,/" >>"$res/floor.csv" ||
    die "bench/floor failed on $(scen_a "$s"); see $logs/floor.log"
  sync
done
start=$SECONDS
for ((round = 1; round <= runs; round++)); do
  # This round's tool order: the list rotated by one more each round.
  k=$(((round - 1) % ${#TOOLS[@]}))
  ORDER=("${TOOLS[@]:k}" "${TOOLS[@]:0:k}")
  for scen in "${SCENS[@]}"; do
    say "round $round/$runs: $scen, tools in the order ${ORDER[*]}"
    run_round
  done
done
say "measured in $((SECONDS - start)) s"
rm -rf "$out/stage" "$out/restore" "$out/trash"

ref=${TOOLS[0]}  # ratios against coffer when it ran, else against the first tool
for t in "${TOOLS[@]}"; do [ "$t" = coffer ] && ref=coffer; done
"$out/bin/summarize" -runs "$res/runs.csv" -verify "$res/verify.csv" -meta "$res/meta.txt" \
  -floor "$res/floor.csv" -ref "$ref" >"$res/report.md"
cat "$res/report.md"
say "report: $res/report.md; raw figures: $res/runs.csv, $res/verify.csv"
