package storage

import (
	"fmt"
	"strings"
)

// CheckName reports whether name is a valid object name (see Storage).
func CheckName(name string) error {
	if name == "" {
		return fmt.Errorf("storage: empty object name")
	}
	if strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") {
		return fmt.Errorf("storage: object name %q must be relative and not end in /", name)
	}
	for _, el := range strings.Split(name, "/") {
		if el == "" || el == "." || el == ".." {
			return fmt.Errorf("storage: object name %q has an empty, . or .. element", name)
		}
		if strings.ContainsAny(el, "\\\x00") {
			return fmt.Errorf("storage: object name %q has a backslash or NUL", name)
		}
	}
	return nil
}
