# tools.sh - one uniform interface over the tools that bench/run.sh compares.
# Sourced by run.sh (bash). Every function takes the tool name first:
#
#   tool_init     TOOL REPO            create an empty repository (and the
#                                      client's keys)
#   tool_backup   TOOL REPO SRC TAG    back up the directory SRC (absolute path)
#   tool_restore  TOOL REPO TAG DEST   restore the latest point (whose tag is TAG)
#                                      completely into DEST
#   tool_restore1 TOOL REPO TAG SRC REL DEST
#                                      restore only SRC/REL of the latest point into DEST
#   tool_root     TOOL DEST SRC        print where the restored copy of SRC is under DEST
#   tool_file     TOOL DEST SRC REL    print where the restored SRC/REL is under DEST
#   tool_wipe     TOOL REPO            remove the repository and its client state
#   tool_version  TOOL                 print the tool's version line
#
# Each repository REPO keeps the tool's client state (cache, config, keys of the
# client) in REPO.state, so wiping both leaves nothing behind: every fresh
# repository starts from nothing, incremental backups use what the previous
# backup left, as in normal use. Encryption is on for every tool and compression
# is each tool's default. The passwords are fixed benchmark strings, not secrets.
#
# COFFER_BIN must name the coffer binary when the tool "coffer" is used.

BENCH_PASSWORD='bench-password-not-a-secret'

# BENCH_TIME is a command prefix (e.g. GNU time with its options) that run.sh
# sets around one step; every tool command of that step runs behind it, so the
# figures are the tool process's own, without a wrapper shell.
BENCH_TIME=()
_run() { "${BENCH_TIME[@]}" "$@"; }

# _tool_env TOOL REPO: exports the environment the tool reads.
_tool_env() {
  local tool=$1 repo=$2 st=$2.state
  case $tool in
    coffer)
      # As on a machine once set up: the passphrase opens the keys at the first
      # backup, then the keys the machine keeps do (doc/CLI.md, "Keys kept on the
      # machine"). BENCH_COFFER_PASS=1 gives the passphrase anyway (step
      # backup_A2_pass: the unchanged backup with the Argon2id derivation).
      export COFFER_HOME=$st/home COFFER_VAULT=$repo
      if [ -n "${BENCH_COFFER_PASS:-}" ] || ! compgen -G "$st/home/keys/*.key" >/dev/null; then
        export COFFER_PASSPHRASE=$BENCH_PASSWORD
      else
        unset COFFER_PASSPHRASE
      fi ;;
    restic)
      export RESTIC_REPOSITORY=$repo RESTIC_PASSWORD=$BENCH_PASSWORD RESTIC_CACHE_DIR=$st/cache ;;
    borg)
      export BORG_REPO=$repo BORG_PASSPHRASE=$BENCH_PASSWORD BORG_BASE_DIR=$st
      export BORG_RELOCATED_REPO_ACCESS_IS_OK=yes BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=no ;;
    kopia)
      export KOPIA_PASSWORD=$BENCH_PASSWORD KOPIA_CHECK_FOR_UPDATES=false
      export KOPIA_CONFIG_PATH=$st/kopia.config KOPIA_LOG_DIR=$st/logs KOPIA_CACHE_DIRECTORY=$st/cache ;;
    *) echo "tools.sh: unknown tool $tool" >&2; return 2 ;;
  esac
}

tool_version() {
  case $1 in
    coffer) "$COFFER_BIN" version ;;
    restic) restic version | head -1 ;;
    borg)   borg --version ;;
    kopia)  echo "kopia $(kopia --version 2>&1 | head -1)" ;;
  esac
}

tool_wipe() {
  local tool=$1 repo=$2
  discard "$repo" "$repo.state"
}

# discard PATH...: removes the paths. With BENCH_TRASH set to a directory on the
# same file system, they are moved there instead, for run.sh to delete when no
# more steps are timed (see "settle" in run.sh).
discard() {
  local p
  for p in "$@"; do
    [ -e "$p" ] || continue
    if [ -n "${BENCH_TRASH:-}" ]; then
      mkdir -p "$BENCH_TRASH"
      mv "$p" "$(mktemp -u "$BENCH_TRASH/XXXXXXXX")"
    else
      rm -rf "$p"
    fi
  done
}

tool_init() {
  local tool=$1 repo=$2
  mkdir -p "$repo.state"
  ( _tool_env "$tool" "$repo"
    case $tool in
      coffer) _run "$COFFER_BIN" init -q ;;  # the vault and the machine's keys
      restic) _run restic init -q ;;
      borg)   _run borg init -e repokey-blake2 "$repo" ;;
      kopia)  _run kopia repository create filesystem --path "$repo" ;;
    esac )
}

tool_backup() {
  local tool=$1 repo=$2 src=$3 tag=$4
  ( _tool_env "$tool" "$repo"
    case $tool in
      coffer) _run "$COFFER_BIN" backup --quiet "$src" ;;
      restic) _run restic backup -q --host bench --tag "$tag" "$src" ;;
      borg)   _run borg create "::$tag" "$src" ;;
      kopia)  _run kopia snapshot create --tags "bench:$tag" "$src" ;;
    esac )
}

tool_restore() {
  local tool=$1 repo=$2 tag=$3 dest=$4
  mkdir -p "$dest"
  ( _tool_env "$tool" "$repo"
    case $tool in
      coffer) _run "$COFFER_BIN" restore --quiet latest --target "$dest" ;;
      restic) _run restic restore -q --host bench latest --target "$dest" ;;
      borg)   cd "$dest" && _run borg extract "::$tag" ;;
      kopia)  _run kopia snapshot restore "$(_kopia_last_root)" "$dest" ;;
    esac )
}

tool_restore1() {
  local tool=$1 repo=$2 tag=$3 src=$4 rel=$5 dest=$6
  mkdir -p "$dest"
  ( _tool_env "$tool" "$repo"
    case $tool in
      coffer) _run "$COFFER_BIN" restore --quiet latest "$src/$rel" --target "$dest" ;;
      restic) _run restic restore -q --host bench latest --target "$dest" --include "$src/$rel" ;;
      borg)   cd "$dest" && _run borg extract "::$tag" "${src#/}/$rel" ;;
      kopia)  _run kopia snapshot restore "$(_kopia_last_root)/$rel" "$dest/$(basename "$rel")" ;;
    esac )
}

# Restic, borg and coffer recreate the absolute source path under the target;
# kopia restores the snapshot root itself.
tool_root() {
  local tool=$1 dest=$2 src=$3
  case $tool in
    kopia) echo "$dest" ;;
    *)     echo "$dest$src" ;;
  esac
}

tool_file() {
  local tool=$1 dest=$2 src=$3 rel=$4
  case $tool in
    kopia) echo "$dest/$(basename "$rel")" ;;
    *)     echo "$dest$src/$rel" ;;
  esac
}

# Restic and coffer are asked for "latest"; borg extracts the archive named TAG
# (looking it up would add a second borg start); kopia restores by object, so
# the newest snapshot's root object is looked up (inside the timed step).

# _kopia_last_root: root object of the newest snapshot.
_kopia_last_root() {
  kopia snapshot list --all --json | python3 -c '
import json, sys
s = json.load(sys.stdin)
print(sorted(s, key=lambda x: x["startTime"])[-1]["rootEntry"]["obj"])'
}
