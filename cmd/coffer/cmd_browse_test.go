package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// coffer runs the CLI in-process against the embedded vault in vault.
func coffer(t *testing.T, vault string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	env := map[string]string{"COFFER_PASSPHRASE": "correct horse battery staple", "COFFER_VAULT": vault,
		"COFFER_HOME": filepath.Join(vault, "home")}
	g := newGlobals(strings.NewReader(""), &out, &errb, func(k string) string { return env[k] })
	root := newRootCmd(g)
	root.SetArgs(append([]string{"--quiet"}, args...))
	err := root.ExecuteContext(context.Background())
	if err != nil {
		errb.WriteString("coffer: " + err.Error() + "\n")
	}
	return out.String(), errb.String(), exitCode(err)
}

func mustCoffer(t *testing.T, vault string, args ...string) string {
	t.Helper()
	out, errs, code := coffer(t, vault, args...)
	if code != 0 {
		t.Fatalf("coffer %v: exit %d\n%s", args, code, errs)
	}
	return out
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCatDumpFindDiff(t *testing.T) {
	vault := t.TempDir()
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "docs/a.txt"), "alpha")
	writeFile(t, filepath.Join(src, "docs/b.txt"), "bravo")
	writeFile(t, filepath.Join(src, "keep.bin"), strings.Repeat("x", 3<<20))
	if err := os.Link(filepath.Join(src, "docs/a.txt"), filepath.Join(src, "a-link.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("docs/b.txt", filepath.Join(src, "sym")); err != nil {
		t.Fatal(err)
	}
	mustCoffer(t, vault, "backup", src)

	if got := mustCoffer(t, vault, "cat", "latest", filepath.Join(src, "keep.bin")); got != strings.Repeat("x", 3<<20) {
		t.Errorf("cat: got %d bytes, want the 3 MiB file", len(got))
	}
	if _, errs, code := coffer(t, vault, "cat", "latest", filepath.Join(src, "docs")); code == 0 {
		t.Errorf("cat of a folder succeeded: %s", errs)
	}

	tr := tar.NewReader(strings.NewReader(mustCoffer(t, vault, "dump", "latest", src)))
	rel := strings.TrimPrefix(src, "/")
	seen := map[string]*tar.Header{}
	contents := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		seen[h.Name] = h
		contents[h.Name] = string(b)
	}
	if h := seen[rel+"/docs/a.txt"]; h == nil || h.Typeflag != tar.TypeLink || h.Linkname != rel+"/a-link.txt" {
		t.Errorf("dump: docs/a.txt should be a hard link to a-link.txt: %+v", h)
	}
	if contents[rel+"/a-link.txt"] != "alpha" || contents[rel+"/docs/b.txt"] != "bravo" {
		t.Errorf("dump: wrong contents %q", contents)
	}
	if h := seen[rel+"/sym"]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "docs/b.txt" {
		t.Errorf("dump: sym: %+v", h)
	}
	if h := seen[rel+"/docs/"]; h == nil || h.Typeflag != tar.TypeDir {
		t.Errorf("dump: no docs/ folder")
	}

	// A second point: one file changed, one added, one removed.
	writeFile(t, filepath.Join(src, "docs/b.txt"), "BRAVO!")
	writeFile(t, filepath.Join(src, "docs/c.txt"), "charlie")
	os.Remove(filepath.Join(src, "sym"))
	mustCoffer(t, vault, "backup", src)
	var points []struct{ ID string }
	if err := json.Unmarshal([]byte(mustCoffer(t, vault, "points", "--json")), &points); err != nil || len(points) != 2 {
		t.Fatalf("points: %v %v", points, err)
	}
	diff := mustCoffer(t, vault, "diff", points[0].ID[:8], points[1].ID[:8])
	for _, want := range []string{"+ " + src + "/docs/c.txt", "- " + src + "/sym", "M " + src + "/docs/b.txt  (content,mtime)"} {
		if !strings.Contains(diff, want+"\n") {
			t.Errorf("diff lacks %q:\n%s", want, diff)
		}
	}
	if strings.Contains(diff, "keep.bin") || strings.Contains(diff, "a.txt") {
		t.Errorf("diff lists unchanged files:\n%s", diff)
	}

	find := mustCoffer(t, vault, "find", "*.txt")
	for _, want := range []string{src + "/docs/a.txt\tfile\t5\tin all points", src + "/docs/c.txt\tfile\t7\tin " + points[1].ID[:8]} {
		if !strings.Contains(find, want+"\n") {
			t.Errorf("find lacks %q:\n%s", want, find)
		}
	}
}

func TestRestoreDryRunCLI(t *testing.T) {
	vault := t.TempDir()
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "a.txt"), "alpha")
	mustCoffer(t, vault, "backup", src)
	tgt := filepath.Join(t.TempDir(), "out")
	out, errs, code := coffer(t, vault, "restore", "latest", "--dry-run", "--target", tgt, "--if-exists", "skip")
	if code != 0 || !strings.Contains(out, "create    file     "+filepath.Join(tgt, src, "a.txt")+"\n") {
		t.Errorf("dry run: exit %d, output:\n%s%s", code, out, errs)
	}
	if _, err := os.Stat(tgt); err == nil {
		t.Errorf("dry run created %s", tgt)
	}
	if _, _, code := coffer(t, vault, "restore", "latest", "-t", tgt, "--if-exists", "bogus"); code != exitUsage {
		t.Errorf("bad --if-exists: exit %d, want %d", code, exitUsage)
	}
}
