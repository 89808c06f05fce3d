package restorer_test

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func setUserXattr(p string) error { return unix.Setxattr(p, "user.test", []byte("v"), 0) }

func hasUserXattr(p string) (bool, error) {
	_, err := unix.Getxattr(p, "user.test", make([]byte, 16))
	if err == unix.ENODATA {
		return false, nil
	}
	return err == nil, err
}

func owner(t *testing.T, p string) (int, int) {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return int(st.Uid), int(st.Gid)
}

func bytesHex(s string) string { return fmt.Sprintf("%x", []byte(s)) }

func sortedJoin(xs []string) string {
	slices.Sort(xs)
	return strings.Join(xs, ";")
}
