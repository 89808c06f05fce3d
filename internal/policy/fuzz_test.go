package policy

import (
	"testing"
	"time"
)

func FuzzParseSchedule(f *testing.F) {
	for _, s := range []string{"daily 02:00", "mon-fri 09:00,18:30", "sat,sun 10:00", "mon,wed-fri 1:05",
		"every 6h", "every 90m", "every 1h30m", "daly 02:00", "fri-mon 23:59", "", ",,", "every", "mon- 02:00"} {
		f.Add(s)
	}
	loc, err := LoadZone("America/New_York")
	if err != nil {
		f.Fatal(err)
	}
	from := time.Date(2027, 3, 13, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, spec string) {
		s, err := ParseSchedule(spec)
		if err != nil {
			return
		}
		again, err := ParseSchedule(s.String())
		if err != nil || again.String() != s.String() {
			t.Fatalf("%q: canonical form %q does not read back: %q, %v", spec, s.String(), again.String(), err)
		}
		runs := s.In(loc).Runs(from, 5)
		for i := 1; i < len(runs); i++ {
			if !runs[i].After(runs[i-1]) {
				t.Fatalf("%q: runs not increasing: %v", spec, runs)
			}
		}
	})
}

func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"8MiB/s", "500KiB/s", "10MB/s", "unlimited", "0", "1.5GiB", "100Mbit/s", ".", "1e9B/s", "0.0001B/s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseRate(s)
		if err != nil {
			return
		}
		if v < 0 {
			t.Fatalf("%q: negative rate %d", s, v)
		}
		if back, err := ParseRate(FormatRate(v)); err != nil || back != v {
			t.Fatalf("%q = %d: FormatRate %q reads back as %d, %v", s, v, FormatRate(v), back, err)
		}
	})
}

func FuzzParseWindow(f *testing.F) {
	for _, s := range []string{"mon-fri 09:00-18:00", "daily 22:00-06:00", "sat,sun 00:00-24:00", "mon 09:00-12:00,13:00-18:00", "x", "mon 1:00-"} {
		f.Add(s)
	}
	loc, err := LoadZone("Europe/Berlin")
	if err != nil {
		f.Fatal(err)
	}
	at := time.Date(2027, 10, 30, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, spec string) {
		w, err := ParseWindow(spec)
		if err != nil {
			return
		}
		if again, err := ParseWindow(w.String()); err != nil || again.String() != w.String() {
			t.Fatalf("%q: canonical form %q does not read back: %v", spec, w.String(), err)
		}
		w = w.In(loc)
		if c := w.NextChange(at); !c.IsZero() && (!c.After(at) || w.Contains(c) == w.Contains(at)) {
			t.Fatalf("%q: NextChange(%v) = %v does not change the state", spec, at, c)
		}
	})
}
