package exclude

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// gitTree is the tree the cross-check builds; names ending in "/" are
// directories. Parents come before their children.
var gitTree = strings.Fields(`
	a/ a/b/ a/b/c/ a/b/c/d.txt a/b.o a/x.tmp a/keep.log a/foo a/b/foo
	build/ build/out src/ src/main.c src/build/ src/build/y src/a/ src/a/b.o src/a/b/ src/a/b/c.o
	doc/ doc/frotz doc/a.txt doc/sub/ doc/sub/b.txt doc/sub/frotz/
	node_modules/ node_modules/m.js web/ web/node_modules/ web/node_modules/x/ web/node_modules/x/index.js
	abc/ abc/x/ abc/x/y abc.d ab axb
	x/ x/a/ x/a/b/ x/a/b/foo x/y x/zy x9 xa X1 x-
	.cache/ .cache/c cache/ cache/c .hidden
	deep/ deep/1/ deep/1/2/ deep/1/2/3/ deep/1/2/3/4/ deep/1/2/3/4/bar deep/foo/ deep/foo/bar
	a.o b.c c.h keep.log x.log foo bar #hash !bang [x] a-b a.c`)

// gitPatternSets are the .gitignore files to compare git and Match on.
var gitPatternSets = [][]string{
	{"*.o"}, {"build/"}, {"/build"}, {"build"}, {"doc/frotz"}, {"doc/frotz/"}, {"frotz"},
	{"doc/*.txt"}, {"**/foo"}, {"**/foo/bar"}, {"abc/**"}, {"a/**/b"}, {"a/**/*.o"}, {"src/**/*.o"},
	{"*.log", "!keep.log"}, {"!keep.log", "*.log"}, {"/*.c"}, {"?.c"}, {"x[0-9]"}, {"x[!0-9]"},
	{"x[^a]"}, {"[[:upper:]]*"}, {"x[[:digit:][:alpha:]]"}, {"x[-]"}, {"a*b"}, {`\#hash`}, {`\!bang`},
	{"#hash"}, {`\[x\]`}, {"[[]x]"}, {"node_modules/"}, {"**/node_modules/x"}, {"deep/**/bar"},
	{"*", "!*.c"}, {"*", "!*/"}, {"a/", "!a/b.o"}, {"src/*", "!src/build"}, {"**"}, {"a/**/**"},
	{"x/**y"}, {"**/"}, {"*/"}, {"/*/"}, {"a/b/"}, {"*.[oc]"}, {"[a-c]*.o"}, {"a?b"}, {".*"},
	{"cache/", ".cache"}, {"/deep/1/2/3/4/bar"}, {"deep/*/2"}, {"a[/]b"}, {"**/b/"}, {"/**/c"},
	{"**/a/**/foo"}, {"*/b"}, {"*/*/"}, {"*.o ", "c.h\t"}, {"deep/1/**", "!deep/1/2/"},
	{"*.tmp", "*.txt", "!d.txt", "/a/b/c/"}, {"x*", "!x[0-9]", "x9"}, {"\\a.o"}, {"a.[!c]"},
}

func TestAgainstGit(t *testing.T) {
	gitBin, err := exec.LookPath("git")
	if err != nil {
		t.Fatalf("git is needed to cross-check the matcher: %v", err)
	}
	repo := t.TempDir()
	home := t.TempDir()
	env := append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home, "GIT_CONFIG_NOSYSTEM=1")
	run := func(stdin []byte, args ...string) ([]byte, error) {
		t.Helper()
		cmd := exec.Command(gitBin, args...)
		cmd.Dir, cmd.Env = repo, env
		cmd.Stdin = bytes.NewReader(stdin)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil && stderr.Len() > 0 {
			err = errors.New(err.Error() + ": " + stderr.String())
		}
		return out, err
	}
	if _, err := run(nil, "init", "-q", "."); err != nil {
		t.Fatalf("git init: %v", err)
	}
	var input []byte
	for _, e := range gitTree {
		p := filepath.Join(repo, filepath.FromSlash(strings.TrimSuffix(e, "/")))
		if strings.HasSuffix(e, "/") {
			err = os.Mkdir(p, 0o755)
		} else {
			err = os.WriteFile(p, nil, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
		input = append(input, strings.TrimSuffix(e, "/")...)
		input = append(input, 0)
	}
	for _, set := range gitPatternSets {
		content := strings.Join(set, "\n") + "\n"
		if err := os.WriteFile(filepath.Join(repo, ".gitignore"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := run(input, "check-ignore", "--no-index", "--stdin", "-z")
		var ee *exec.ExitError
		if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) { // 1: nothing ignored
			t.Fatalf("git check-ignore: %v", err)
		}
		ignored := map[string]bool{}
		for _, p := range strings.Split(string(out), "\x00") {
			ignored[p] = true
		}
		m, err := Compile(set)
		if err != nil {
			t.Fatalf("Compile(%q): %v", set, err)
		}
		// Walk like the backup does: nothing below an excluded directory.
		excludedDirs := map[string]bool{}
		for _, e := range gitTree {
			rel, isDir := strings.TrimSuffix(e, "/"), strings.HasSuffix(e, "/")
			if excludedDirs[path.Dir(rel)] {
				excludedDirs[rel] = isDir
				continue
			}
			got := m.Match(rel, isDir)
			if got != ignored[rel] {
				t.Errorf("patterns %q: Match(%q, dir=%v) = %v, git check-ignore says %v", set, rel, isDir, got, ignored[rel])
			}
			if got && isDir {
				excludedDirs[rel] = true
			}
		}
	}
}
