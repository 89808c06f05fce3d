package exclude

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

type matchCase struct {
	rel   string
	isDir bool
	want  bool
}

func checkMatches(t *testing.T, patterns []string, cases []matchCase) {
	t.Helper()
	m, err := Compile(patterns)
	if err != nil {
		t.Fatalf("Compile(%q): %v", patterns, err)
	}
	for _, c := range cases {
		if got := m.Match(c.rel, c.isDir); got != c.want {
			t.Errorf("patterns %q: Match(%q, dir=%v) = %v, want %v", patterns, c.rel, c.isDir, got, c.want)
		}
	}
}

// f and d build cases for a file and a directory.
func f(rel string, want bool) matchCase { return matchCase{rel, false, want} }
func d(rel string, want bool) matchCase { return matchCase{rel, true, want} }

func TestMatch(t *testing.T) {
	tests := []struct {
		name     string
		patterns []string
		cases    []matchCase
	}{
		{"none", nil, []matchCase{f("a", false), d("a", false)}},
		{"blank and comments", []string{"", "   ", "# a", "#b"}, []matchCase{
			f("a", false), f("# a", false), f("#b", false), f("   ", false)}},
		{"escaped hash", []string{`\#a`}, []matchCase{f("#a", true), f("a", false)}},
		{"escaped bang", []string{`\!a`}, []matchCase{f("!a", true), f("a", false)}},
		{"trailing spaces", []string{"a  ", `b\ `, `c\  `}, []matchCase{
			f("a", true), f("a  ", false), f("b ", true), f("b", false), f("c ", true)}},
		{"name at any depth", []string{"foo"}, []matchCase{
			f("foo", true), d("foo", true), f("a/foo", true), f("a/b/foo", true),
			f("foo.c", false), f("afoo", false), f("foo/bar", false)}},
		{"dir only", []string{"build/"}, []matchCase{
			d("build", true), f("build", false), d("src/build", true), f("src/build", false)}},
		{"leading slash anchors", []string{"/build"}, []matchCase{
			d("build", true), f("build", true), d("src/build", false)}},
		{"anchored dir only", []string{"/build/"}, []matchCase{
			d("build", true), f("build", false), d("a/build", false)}},
		{"middle slash anchors", []string{"doc/frotz"}, []matchCase{
			f("doc/frotz", true), d("doc/frotz", true), f("a/doc/frotz", false), f("frotz", false)}},
		{"middle slash dir only", []string{"doc/frotz/"}, []matchCase{
			d("doc/frotz", true), f("doc/frotz", false)}},
		{"star suffix", []string{"*.o"}, []matchCase{
			f("a.o", true), f("x/y/a.o", true), f(".o", true), f("a.oo", false), f("a.o/b", false), d("dir.o", true)}},
		{"star prefix", []string{"tmp*"}, []matchCase{f("tmp", true), f("tmpfile", true), f("a/tmp1", true), f("atmp", false)}},
		{"star middle", []string{"a*b"}, []matchCase{f("ab", true), f("axxb", true), f("x/ab", true), f("abc", false)}},
		{"star does not cross slash", []string{"doc/*.txt"}, []matchCase{
			f("doc/a.txt", true), f("doc/x/a.txt", false), f("a.txt", false)}},
		{"anchored star", []string{"/*.c"}, []matchCase{f("a.c", true), f("x/a.c", false)}},
		{"star alone", []string{"*"}, []matchCase{f("a", true), d("a", true), f("a/b", true)}},
		{"question", []string{"?.c"}, []matchCase{
			f("a.c", true), f("ab.c", false), f(".c", false), f("é.c", true), f("\xff.c", true), f("\xff\xfe.c", false)}},
		{"class", []string{"[ab].c"}, []matchCase{f("a.c", true), f("b.c", true), f("c.c", false)}},
		{"class range", []string{"x[0-9]"}, []matchCase{f("x0", true), f("x9", true), f("xa", false), f("x", false)}},
		{"class negated bang", []string{"x[!0-9]"}, []matchCase{f("x0", false), f("xa", true), f("xé", true), f("x", false)}},
		{"class negated caret", []string{"x[^a]"}, []matchCase{f("xa", false), f("xb", true)}},
		{"class bracket first", []string{"x[]a]"}, []matchCase{f("x]", true), f("xa", true), f("xb", false)}},
		{"class negated bracket first", []string{"x[!]]"}, []matchCase{f("x]", false), f("xb", true)}},
		{"class dash literal", []string{"x[-a]", "y[a-]"}, []matchCase{f("x-", true), f("xa", true), f("y-", true), f("xb", false)}},
		{"class chained range", []string{"x[a-c-e]"}, []matchCase{f("xd", true), f("xe", true), f("xf", false)}},
		{"class escape", []string{`x[\]]`, `y[a\-z]`}, []matchCase{f("x]", true), f("y-", true), f("yb", false)}},
		{"class posix", []string{"x[[:digit:]]", "y[[:upper:][:punct:]]"}, []matchCase{
			f("x5", true), f("xa", false), f("yA", true), f("y.", true), f("ya", false)}},
		{"class colon not posix", []string{"x[[:a]"}, []matchCase{f("x[", true), f("x:", true), f("xa", true), f("xb", false)}},
		{"class unicode", []string{"[é-ë]"}, []matchCase{f("é", true), f("ê", true), f("e", false), f("\xe9", false)}},
		{"class invalid utf8", []string{"[\xe9]"}, []matchCase{f("\xe9", true), f("é", false)}},
		{"class never matches slash", []string{"a[/]b"}, []matchCase{f("a/b", false), d("a", false)}},
		{"bytes not runes for literals", []string{"\xff\xfe"}, []matchCase{f("\xff\xfe", true), f("x/\xff\xfe", true), f("\xff", false)}},
		{"escaped star", []string{`a\*`}, []matchCase{f("a*", true), f("ab", false)}},
		{"leading starstar", []string{"**/foo"}, []matchCase{
			f("foo", true), f("a/foo", true), f("a/b/foo", true), f("foo/a", false)}},
		{"leading starstar two", []string{"**/foo/bar"}, []matchCase{
			f("foo/bar", true), f("a/foo/bar", true), f("bar", false), f("foo/x/bar", false)}},
		{"trailing starstar", []string{"abc/**"}, []matchCase{
			d("abc", false), f("abc/x", true), d("abc/x", true), f("abc/x/y", true), f("x/abc/y", false)}},
		{"middle starstar", []string{"a/**/b"}, []matchCase{
			f("a/b", true), f("a/x/b", true), f("a/x/y/b", true), f("x/a/b", false), f("a/b/c", false), f("a/xb", false)}},
		{"middle starstar star", []string{"a/**/*.o"}, []matchCase{
			f("a/x.o", true), f("a/b/c/x.o", true), f("b/x.o", false)}},
		{"starstar then trailing", []string{"a/**/**"}, []matchCase{d("a", false), f("a/b", true), f("a/b/c", true)}},
		{"starstar only", []string{"**"}, []matchCase{f("a", true), f("a/b", true)}},
		{"starstar not alone is star", []string{"a**b", "x/**y"}, []matchCase{
			f("ab", true), f("azzb", true), f("x/y", true), f("x/zy", true), f("x/z/y", false)}},
		{"leading starstar slash", []string{"/**/foo"}, []matchCase{f("foo", true), f("a/foo", true)}},
		{"starstar dir", []string{"**/cache/"}, []matchCase{d("x/cache", true), f("x/cache", false)}},
		{"negation", []string{"*.log", "!keep.log"}, []matchCase{
			f("a.log", true), f("keep.log", false), f("x/keep.log", false)}},
		{"negation order", []string{"!keep.log", "*.log"}, []matchCase{f("keep.log", true)}},
		{"negation of dir only", []string{"build", "!build/"}, []matchCase{f("build", true), d("build", false)}},
		{"renegation", []string{"a*", "!ab*", "abc"}, []matchCase{
			f("a", true), f("ab", false), f("abd", false), f("abc", true)}},
		{"negation anchored", []string{"*.txt", "!/doc/*.txt"}, []matchCase{
			f("doc/a.txt", false), f("x/doc/a.txt", true), f("a.txt", true)}},
		{"negation general", []string{"/a/**", "!/a/b*"}, []matchCase{
			f("a/x", true), f("a/b1", false), f("a/x/b1", true)}},
		{"escaped slash", []string{`a\/b`}, []matchCase{f("a/b", true), f("x/a/b", false)}},
		{"dots", []string{".*"}, []matchCase{f(".git", true), f("a/.b", true), f("a.b", false)}},
		{"doc: contents not dir", []string{"/cache/*", "!/cache/important"}, []matchCase{
			d("cache", false), f("cache/a", true), d("cache/important", false), f("x/cache/a", false)}},
		{"doc: logs", []string{"**/logs/*.gz", "doc/*.html"}, []matchCase{
			f("logs/a.gz", true), f("x/y/logs/a.gz", true), f("logs/x/a.gz", false),
			f("doc/a.html", true), f("x/doc/a.html", false)}},
		{"many literal names", []string{"node_modules/", ".cache", "target", "*.tmp", "*~"}, []matchCase{
			d("web/node_modules", true), f("web/node_modules", false), f(".cache", true),
			d("rust/target", true), f("x.tmp", true), f("x~", true), f("x", false)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkMatches(t, tt.patterns, tt.cases) })
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		pattern string
		reason  string
	}{
		{"a[b", "unterminated [ class"},
		{"[", "unterminated [ class"},
		{"[]", "unterminated [ class"},
		{"[!]", "unterminated [ class"},
		{`[a\`, "unterminated [ class"},
		{"[a-", "unterminated [ class"},
		{"[[:alpha:]", "unterminated [ class"},
		{"[[:foo:]]", "unknown character class [:foo:]"},
		{"[[::]]", "unknown character class [::]"},
		{`a\`, "trailing backslash escapes nothing"},
		{"/", "empty pattern"},
		{"!", "empty pattern"},
		{"!/", "empty pattern"},
	}
	for _, tt := range tests {
		_, err := Compile([]string{"ok", tt.pattern})
		var pe *PatternError
		if !errors.As(err, &pe) {
			t.Errorf("Compile(%q) error = %v, want a *PatternError", tt.pattern, err)
			continue
		}
		if pe.Pattern != tt.pattern || pe.Reason != tt.reason {
			t.Errorf("Compile(%q) error = %q / %q, want %q / %q", tt.pattern, pe.Pattern, pe.Reason, tt.pattern, tt.reason)
		}
		if !strings.Contains(err.Error(), tt.pattern) {
			t.Errorf("error %q does not name the pattern %q", err, tt.pattern)
		}
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "excludes")
	content := "\xef\xbb\xbf# comment\r\n*.tmp\r\n\nnode_modules/\n!keep.tmp"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(path)
	if err != nil {
		t.Fatalf("ReadFile: %v", err)
	}
	want := []string{"# comment", "*.tmp", "", "node_modules/", "!keep.tmp"}
	if !slices.Equal(got, want) {
		t.Fatalf("ReadFile = %q, want %q", got, want)
	}
	checkMatches(t, got, []matchCase{f("a.tmp", true), f("keep.tmp", false), d("x/node_modules", true)})

	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("ok\n\nfoo[\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = ReadFile(bad)
	if err == nil || !strings.Contains(err.Error(), bad+":3:") || !strings.Contains(err.Error(), "unterminated") {
		t.Fatalf("ReadFile(bad) error = %v, want one naming %s:3 and the reason", err, bad)
	}
	missing := filepath.Join(dir, "missing")
	if _, err := ReadFile(missing); err == nil || !strings.Contains(err.Error(), missing) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ReadFile(missing) error = %v, want a not-exist error naming the file", err)
	}
}
