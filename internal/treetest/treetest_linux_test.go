package treetest

import (
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Errorf(f string, a ...any) { r.errs = append(r.errs, fmt.Sprintf(f, a...)) }
func (r *recorder) Helper()                   {}

// TestCompareSees checks that Compare notices each kind of change.
func TestCompareSees(t *testing.T) {
	dir := t.TempDir()
	Build(t, dir, Options{Deep: true})
	want := Scan(t, dir)
	changes := []struct {
		name string
		do   func() error
	}{
		{"mode", func() error { return os.Chmod(dir+"/suid", 0o755) }},
		{"xattr", func() error { return unix.Setxattr(dir+"/a/small", "user.comment", []byte("other"), 0) }},
		{"acl", func() error { return unix.Removexattr(dir+"/acl.txt", "system.posix_acl_access") }},
		{"mtime", func() error { return unix.UtimesNano(dir+"/a/big", []unix.Timespec{{Sec: 1}, {Sec: 2, Nsec: 3}}) }},
		{"link", func() error {
			os.Remove(dir + "/pair-1")
			return os.WriteFile(dir+"/pair-1", make([]byte, 10), 0o644)
		}},
	}
	for _, c := range changes {
		if err := c.do(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		rec := &recorder{TB: t}
		Compare(rec, want, Scan(t, dir))
		if len(rec.errs) == 0 {
			t.Errorf("change of %s not seen", c.name)
		}
		want = Scan(t, dir)
	}
}
