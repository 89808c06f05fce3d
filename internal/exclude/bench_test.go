package exclude

import (
	"fmt"
	"testing"
)

// benchPatterns is a plausible user exclude list: dozens of patterns of every kind.
var benchPatterns = []string{
	"*.o", "*.tmp", "*~", "*.swp", "*.pyc", "*.class", "*.log", "!important.log", "*.bak",
	"node_modules/", ".cache/", "__pycache__/", ".git/", "target/", "obj/", ".idea/", ".venv/",
	"/build", "/dist/", "Thumbs.db", "**/.DS_Store", "[Bb]in/", "*.egg-info/", "coverage/",
	"tmp*", "vendor/**/testdata", "/var/cache/**", "**/logs/*.gz", "#*#", "docs/_build/",
}

// benchPaths returns about 80k plausible relative paths with their types.
func benchPaths() ([]string, []bool) {
	dirs := []string{"src", "lib", "internal", "pkg", "web", "docs", "test", "vendor", "cmd", "tools"}
	sub := []string{"a", "core", "util", "net", "io", "ui", "logs", "node_modules", "build", "data"}
	exts := []string{".go", ".c", ".o", ".h", ".txt", ".md", ".json", ".log", ".tmp", ".pyc", ""}
	var paths []string
	var isDir []bool
	for _, d := range dirs {
		paths, isDir = append(paths, d), append(isDir, true)
		for i, s := range sub {
			for j := range 8 {
				p := fmt.Sprintf("%s/%s%d/%s", d, s, j, sub[(i+j)%len(sub)])
				paths, isDir = append(paths, p), append(isDir, true)
				for k := range 100 {
					name := fmt.Sprintf("file_%d_%d%s", j, k, exts[(i+j+k)%len(exts)])
					paths, isDir = append(paths, p+"/"+name), append(isDir, false)
				}
			}
		}
	}
	return paths, isDir
}

func BenchmarkMatch(b *testing.B) {
	paths, isDir := benchPaths()
	size := 0
	for _, p := range paths {
		size += len(p)
	}
	for _, bc := range []struct {
		name string
		fast bool
	}{{"fast", true}, {"general", false}} {
		m, err := compile(benchPatterns, bc.fast)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(size))
			excluded := 0
			for b.Loop() {
				for i, p := range paths {
					if m.Match(p, isDir[i]) {
						excluded++
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(paths)), "ns/path")
			b.ReportMetric(float64(excluded)/float64(b.N*len(paths)), "excluded/path")
		})
	}
}
