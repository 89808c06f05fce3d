// Package cache manages the agent's cache folder: where it is (a pointer
// file in the agent's home can move it elsewhere), what it holds, the free
// space a backup needs in it, the kind of file system it sits on (network
// and removable file systems are warned about), and Move, which moves it
// safely even when interrupted.
package cache

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Names in the agent's home.
const (
	DefaultName = "cache"          // the cache folder unless moved
	PointerName = "cache-location" // holds the moved folder's absolute path
	JournalName = "cache-move.json"
)

// Dir returns the cache folder of the agent whose home is home.
func Dir(home string) (string, error) {
	b, err := os.ReadFile(filepath.Join(home, PointerName))
	if errors.Is(err, fs.ErrNotExist) {
		return filepath.Join(home, DefaultName), nil
	}
	if err != nil {
		return "", fmt.Errorf("cache folder: %w", err)
	}
	d := strings.TrimSpace(string(b))
	if !filepath.IsAbs(d) {
		return "", fmt.Errorf("cache folder: %s names %q, not an absolute path", PointerName, d)
	}
	return d, nil
}

// ErrNoSpace is returned (wrapped, with the figures) when the cache
// folder's file system has less free space than a backup needs.
var ErrNoSpace = errors.New("not enough free space in the cache folder")

// Need is the free space a backup needs in the cache folder: Reserve, plus
// SystemStateReserve when it collects the system state. Coffer builds packs
// in memory and streams them to the vault, so no file data is staged on
// disk; the cache folder holds the agent's state, the system-state
// snapshot and the optional chunk cache of mounts. doc/AGENT.md gives the
// formula.
func Need(systemState bool) int64 {
	if systemState {
		return Reserve + SystemStateReserve
	}
	return Reserve
}

// The terms of Need.
const (
	Reserve            = 256 << 20
	SystemStateReserve = 128 << 20
)

// CheckFree returns ErrNoSpace if the file system of dir (or of its
// nearest existing parent) has less than need bytes free.
func CheckFree(dir string, need int64) error {
	free, err := FreeSpace(existing(dir))
	if err != nil {
		return nil // cannot tell: do not refuse
	}
	if free < need {
		return fmt.Errorf("%w: %s has %s free, a backup needs %s (see doc/AGENT.md); free some space or move the cache with: coffer cache move DIR",
			ErrNoSpace, dir, human(free), human(need))
	}
	return nil
}

// existing returns dir or its nearest existing parent.
func existing(dir string) string {
	for {
		if _, err := os.Stat(dir); err == nil {
			return dir
		}
		p := filepath.Dir(dir)
		if p == dir {
			return dir
		}
		dir = p
	}
}

func human(n int64) string {
	const u = 1024
	if n < u {
		return fmt.Sprintf("%d B", n)
	}
	f, i := float64(n), 0
	for f >= u && i < 5 {
		f /= u
		i++
	}
	return fmt.Sprintf("%.1f %ciB", f, "KMGTPE"[i-1])
}

// Status describes the cache folder.
type Status struct {
	Dir        string `json:"dir"`
	Exists     bool   `json:"exists"`
	Size       int64  `json:"size"`      // bytes of the files in it
	Free       int64  `json:"free"`      // bytes free on its file system (-1: unknown)
	FSType     string `json:"fs_type"`   // e.g. ext4, nfs4, cifs ("" : unknown)
	Network    bool   `json:"network"`   // a network file system
	Removable  bool   `json:"removable"` // on a removable device
	Need       int64  `json:"need"`      // free space a backup needs (Need(false))
	Warning    string `json:"warning,omitempty"`
	MovePartly bool   `json:"move_unfinished,omitempty"` // a cache move was interrupted
}

// networkFS are file system types that live on another machine.
var networkFS = map[string]bool{"nfs": true, "nfs4": true, "cifs": true, "smb": true, "smb2": true, "smb3": true,
	"smbfs": true, "fuse.sshfs": true, "sshfs": true, "9p": true, "afs": true, "ceph": true, "glusterfs": true,
	"fuse.glusterfs": true, "davfs": true, "fuse.davfs2": true, "fuse.rclone": true, "lustre": true, "webdav": true}

// IsNetworkFS reports whether a file system type is a network one.
func IsNetworkFS(t string) bool { return networkFS[strings.ToLower(t)] }

// Stat returns the status of the cache folder of the agent's home.
func Stat(home string) (Status, error) {
	dir, err := Dir(home)
	if err != nil {
		return Status{}, err
	}
	st := Status{Dir: dir, Free: -1, Need: Need(false)}
	if _, err := os.Stat(filepath.Join(home, JournalName)); err == nil {
		st.MovePartly = true
	}
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		st.Exists = true
		_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				if fi, err := d.Info(); err == nil {
					st.Size += fi.Size()
				}
			}
			return nil
		})
	}
	at := existing(dir)
	if f, err := FreeSpace(at); err == nil {
		st.Free = f
	}
	st.FSType, st.Removable = fsInfo(at)
	st.Network = IsNetworkFS(st.FSType)
	var warns []string
	if st.Network {
		warns = append(warns, fmt.Sprintf("the cache folder is on a network file system (%s): backups slow down and fail when the network does; move it to a local disk with: coffer cache move DIR", st.FSType))
	}
	if st.Removable {
		warns = append(warns, "the cache folder is on a removable device: backups fail while it is unplugged; move it to a fixed disk with: coffer cache move DIR")
	}
	if st.Free >= 0 && st.Free < st.Need {
		warns = append(warns, fmt.Sprintf("only %s free, a backup needs %s", human(st.Free), human(st.Need)))
	}
	if st.MovePartly {
		warns = append(warns, "a cache move was interrupted; run coffer cache move again to finish it")
	}
	st.Warning = strings.Join(warns, "; ")
	return st, nil
}

// journal records a move in progress.
type journal struct {
	From string `json:"from"`
	To   string `json:"to"`
}

func readJournal(home string) (*journal, error) {
	b, err := os.ReadFile(filepath.Join(home, JournalName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var j journal
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("%s: %w", JournalName, err)
	}
	return &j, nil
}
