package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// humanBytes formats a byte count with binary units.
func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func humanDuration(d time.Duration) string {
	d = d.Round(time.Second)
	h, m, s := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d", h, m, s)
	}
	return fmt.Sprintf("%d:%02d", m, s)
}

// writeJSONList writes a list as JSON: an empty list is [], never null.
func writeJSONList[T any](w io.Writer, v []T) error {
	if v == nil {
		v = []T{}
	}
	return writeJSON(w, v)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// statusLine draws a one-line progress display on a terminal's stderr.
type statusLine struct {
	mu    sync.Mutex
	w     io.Writer
	on    bool
	width int
	last  int
}

func (g *globals) newStatusLine() *statusLine {
	s := &statusLine{w: g.stderr, width: 100}
	if f, ok := g.stderr.(*os.File); ok && !g.quiet && term.IsTerminal(int(f.Fd())) {
		s.on = true
		if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 20 {
			s.width = w - 1
		}
	}
	return s
}

func (s *statusLine) set(line string) {
	if !s.on {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(line) > s.width {
		line = line[:s.width]
	}
	pad := ""
	if n := s.last - len(line); n > 0 {
		pad = strings.Repeat(" ", n)
	}
	fmt.Fprintf(s.w, "\r%s%s", line, pad)
	s.last = len(line)
}

// println prints a line above the status line.
func (s *statusLine) println(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.on && s.last > 0 {
		fmt.Fprintf(s.w, "\r%s\r", strings.Repeat(" ", s.last))
		s.last = 0
	}
	fmt.Fprintln(s.w, line)
}

func (s *statusLine) done() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.on && s.last > 0 {
		fmt.Fprintf(s.w, "\r%s\r", strings.Repeat(" ", s.last))
		s.last = 0
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("{\"error\":%q}", err.Error())
	}
	return string(b)
}

// count writes n and a noun, plural unless n is 1.
func count[N ~int | ~int64 | ~uint64](n N, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
