package exclude

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
)

// ReadFile reads patterns from a file, one per line (for --exclude-file); errors name the file.
// Lines may end in "\n" or "\r\n", and a leading UTF-8 byte order mark is
// skipped. Each pattern is checked, so that an error names the file and line.
func ReadFile(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("exclude: %w", err)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	lines := strings.Split(string(data), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	for i, line := range lines {
		line = strings.TrimSuffix(line, "\r")
		lines[i] = line
		if _, err := parse(line); err != nil {
			var pe *PatternError
			if errors.As(err, &pe) {
				return nil, fmt.Errorf("exclude: %s:%d: pattern %q: %s", path, i+1, pe.Pattern, pe.Reason)
			}
			return nil, fmt.Errorf("exclude: %s:%d: %w", path, i+1, err)
		}
	}
	return lines, nil
}

// CacheDirTagName is the file that marks a cache directory
// (https://bford.info/cachedir/); backups skip directories holding a valid one.
const CacheDirTagName = "CACHEDIR.TAG"

// CacheDirSignature is how a valid CACHEDIR.TAG begins.
const CacheDirSignature = "Signature: 8a477f597d28d172789f06886806bc55"
