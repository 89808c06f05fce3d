package exclude

import (
	"strings"
	"testing"
)

// FuzzMatch compiles arbitrary pattern lists and matches arbitrary paths: no
// panics, and the fast paths agree with the general matcher.
func FuzzMatch(f *testing.F) {
	f.Add("*.o\n!keep.o\nbuild/", "src/keep.o", false)
	f.Add("**/foo/**/bar", "a/foo/b/c/bar", true)
	f.Add("/a/**\n!/a/b*", "a/b1", false)
	f.Add("x[!a-c-e[:digit:]]", "xf", false)
	f.Add("\\#a\\ \n[\xe9-\xff]?", "#a /\xea\xff", false)
	f.Add("a/**/**/b/", "a/x/y/b", true)
	f.Fuzz(func(t *testing.T, patterns string, rel string, isDir bool) {
		lines := strings.Split(patterns, "\n")
		fast, err := compile(lines, true)
		if err != nil {
			return
		}
		slow, err := compile(lines, false)
		if err != nil {
			t.Fatalf("compile without fast paths failed: %v", err)
		}
		if a, b := fast.Match(rel, isDir), slow.Match(rel, isDir); a != b {
			t.Fatalf("patterns %q, Match(%q, %v): fast paths say %v, general matcher %v", lines, rel, isDir, a, b)
		}
	})
}
