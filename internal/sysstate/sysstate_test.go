package sysstate

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestCollect(t *testing.T) {
	dir := t.TempDir()
	run := func(ctx context.Context, name string, args ...string) ([]byte, error) {
		switch name {
		case "dpkg":
			return []byte("bash\tinstall\n"), nil
		case "rpm":
			return nil, errors.New("not found")
		}
		return []byte(name + " output\n"), nil
	}
	paths, err := Collect(context.Background(), dir, run)
	if err != nil {
		t.Fatal(err)
	}
	stage := filepath.Join(dir, DirName)
	if paths[0] != stage || !slices.Contains(paths, "/etc") {
		t.Errorf("paths %v", paths)
	}
	b, err := os.ReadFile(filepath.Join(stage, "packages.dpkg-selections"))
	if err != nil || string(b) != "bash\tinstall\n" {
		t.Errorf("dpkg selections: %q %v", b, err)
	}
	if m, _ := os.ReadFile(filepath.Join(stage, "MISSING")); !strings.Contains(string(m), "packages.rpm") {
		t.Errorf("MISSING: %q", m)
	}
	if _, err := os.Stat(filepath.Join(stage, "mounts")); err != nil {
		t.Error(err)
	}
	if got := Find([]string{"/etc", "/home", stage}); !slices.Equal(got, []string{stage, "/etc"}) {
		t.Errorf("Find: %v", got)
	}
	if got := Find([]string{"/etc", "/home"}); got != nil {
		t.Errorf("Find without state: %v", got)
	}
	tgt := t.TempDir()
	if err := WriteREADME(tgt, []string{stage, "/etc"}); err != nil {
		t.Fatal(err)
	}
	r, _ := os.ReadFile(filepath.Join(tgt, "README-system-state.md"))
	for _, want := range []string{"dpkg --set-selections < " + filepath.Join(tgt, stage) + "/packages.dpkg-selections",
		"systemctl enable", "diff -r " + filepath.Join(tgt, "etc") + " /etc", "crontab -u"} {
		if !strings.Contains(string(r), want) {
			t.Errorf("README lacks %q", want)
		}
	}
}
