//go:build !unix && !windows

package cache

import "errors"

// FreeSpace is not known on this system.
func FreeSpace(string) (int64, error) { return 0, errors.New("free space unknown on this system") }

func fsInfo(string) (string, bool) { return "", false }
