package cache

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func wantFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(b) != data {
			t.Fatalf("%s in %s: %q, %v; want %q", name, dir, b, err, data)
		}
	}
}

var content = map[string]string{"chunks/ab/abcd": "sealed chunk", "chunks/cd/cdef": "another", "state.json": "{}"}

func TestMove(t *testing.T) {
	home := t.TempDir()
	src, err := Dir(home)
	if err != nil || src != filepath.Join(home, DefaultName) {
		t.Fatalf("Dir: %q %v", src, err)
	}
	writeFiles(t, src, content)
	dst := filepath.Join(t.TempDir(), "new cache")
	got, err := Move(home, dst, nil)
	if err != nil || got != dst {
		t.Fatalf("Move: %q %v", got, err)
	}
	if d, _ := Dir(home); d != dst {
		t.Fatalf("Dir after the move: %q, want %q", d, dst)
	}
	wantFiles(t, dst, content)
	if _, err := os.Stat(src); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("old folder still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(home, JournalName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("journal left behind")
	}
	st, err := Stat(home)
	if err != nil || st.Dir != dst || !st.Exists || st.Size != int64(len("sealed chunk")+len("another")+2) || st.Free <= 0 {
		t.Fatalf("Stat: %+v %v", st, err)
	}
}

// TestMoveInterrupted interrupts a move at each step and runs it again.
func TestMoveInterrupted(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, home, src, dst string)
	}{
		{"journal written, nothing copied", func(t *testing.T, home, src, dst string) {}},
		{"half copied", func(t *testing.T, home, src, dst string) {
			writeFiles(t, dst, map[string]string{"chunks/ab/abcd": "sealed chunk", "chunks/cd/cdef.coffer-move": "anot"})
		}},
		{"pointer switched, old folder not removed", func(t *testing.T, home, src, dst string) {
			if err := copyTree(src, dst); err != nil {
				t.Fatal(err)
			}
			if err := writeAtomic(filepath.Join(home, PointerName), []byte(dst+"\n")); err != nil {
				t.Fatal(err)
			}
		}},
		{"old folder half removed", func(t *testing.T, home, src, dst string) {
			if err := copyTree(src, dst); err != nil {
				t.Fatal(err)
			}
			if err := writeAtomic(filepath.Join(home, PointerName), []byte(dst+"\n")); err != nil {
				t.Fatal(err)
			}
			os.RemoveAll(filepath.Join(src, "chunks"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := t.TempDir()
			src := filepath.Join(home, DefaultName)
			writeFiles(t, src, content)
			dst := filepath.Join(t.TempDir(), "moved")
			if err := writeAtomic(filepath.Join(home, JournalName), []byte(`{"from":"`+src+`","to":"`+dst+`"}`)); err != nil {
				t.Fatal(err)
			}
			tc.setup(t, home, src, dst)
			if st, _ := Stat(home); !st.MovePartly || !strings.Contains(st.Warning, "interrupted") {
				t.Fatalf("Stat during an interrupted move: %+v", st)
			}
			if _, err := Move(home, filepath.Join(t.TempDir(), "elsewhere"), nil); err == nil {
				t.Fatal("a move elsewhere while one is unfinished was accepted")
			}
			got, err := Move(home, "", nil)
			if err != nil || got != dst {
				t.Fatalf("Move (resume): %q %v", got, err)
			}
			if d, _ := Dir(home); d != dst {
				t.Fatalf("Dir: %q, want %q", d, dst)
			}
			wantFiles(t, dst, content)
			if _, err := os.Stat(src); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("old folder still there: %v", err)
			}
			if _, err := os.Stat(filepath.Join(dst, "chunks/cd/cdef.coffer-move")); err == nil {
				t.Fatal("temporary file left")
			}
		})
	}
}

func TestMoveRefused(t *testing.T) {
	home := t.TempDir()
	src := filepath.Join(home, DefaultName)
	writeFiles(t, src, content)
	full := t.TempDir()
	writeFiles(t, full, map[string]string{"x": "y"})
	for _, dst := range []string{filepath.Join(src, "sub"), home, full} {
		if _, err := Move(home, dst, nil); err == nil {
			t.Errorf("Move to %s accepted", dst)
		}
	}
	wantFiles(t, src, content)
}

func TestCheckFree(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "not", "yet")
	if err := CheckFree(dir, 1); err != nil {
		t.Fatalf("CheckFree(1 byte): %v", err)
	}
	err := CheckFree(dir, 1<<62)
	if !errors.Is(err, ErrNoSpace) || !strings.Contains(err.Error(), "coffer cache move") {
		t.Fatalf("CheckFree(4 EiB): %v, want ErrNoSpace with advice", err)
	}
}
