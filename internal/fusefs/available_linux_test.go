package fusefs

import (
	"errors"
	"strings"
	"testing"
)

func TestAvailableSaysHowToGetFUSE(t *testing.T) {
	tests := []struct {
		dev     string
		root    bool
		helpers []string
		ok      bool
	}{
		{"/dev/fuse", true, nil, true},
		{"/nonexistent/fuse", true, nil, false},
		{"/dev/fuse", false, []string{"/nonexistent/fusermount3"}, false},
	}
	for _, tt := range tests {
		err := availableAt(tt.dev, tt.root, tt.helpers)
		if tt.ok != (err == nil) {
			t.Errorf("%s root=%v: got %v, want ok=%v", tt.dev, tt.root, err, tt.ok)
		}
		if err != nil && (!errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "apt-get install fuse3")) {
			t.Errorf("%s: message %q does not say how to get FUSE", tt.dev, err)
		}
	}
}
