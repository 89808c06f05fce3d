package policy

import (
	"fmt"
	"strings"
	"testing"
)

func TestParseRate(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"unlimited", 0},
		{"Unlimited", 0},
		{"0", 0},
		{"0MiB/s", 0},
		{"8MiB/s", 8 << 20},
		{"500KiB/s", 500 << 10},
		{"10MB/s", 10_000_000},
		{"10mb/s", 10_000_000},
		{"1.5MiB/s", 3 << 19},
		{"4 MiB/s", 4 << 20},
		{"1GiB", 1 << 30},
		{"100Mbit/s", 12_500_000},
		{"1B/s", 1},
		{" 2KB/s ", 2000},
	}
	for _, tt := range tests {
		got, err := ParseRate(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestParseRateErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `rate "": missing number; write e.g. 8MiB/s, 500KiB/s, 10MB/s or unlimited`},
		{"fast", `rate "fast": missing number; write e.g. 8MiB/s, 500KiB/s, 10MB/s or unlimited`},
		{"8", `rate "8": missing unit; write e.g. 8MiB/s, 500KiB/s, 10MB/s or unlimited`},
		{"8/s", `rate "8/s": missing unit; write e.g. 8MiB/s, 500KiB/s, 10MB/s or unlimited`},
		{"8MiB/h", `rate "8MiB/h": unknown unit "mib/h"; units are B, KB, MB, GB, KiB, MiB, GiB, bit, kbit, Mbit, Gbit`},
		{"-1MiB/s", `rate "-1MiB/s": missing number; write e.g. 8MiB/s, 500KiB/s, 10MB/s or unlimited`},
		{"1.2.3MB/s", `rate "1.2.3MB/s": missing number; write e.g. 8MiB/s, 500KiB/s, 10MB/s or unlimited`},
		{"0.1B/s", `rate "0.1B/s": below 1 byte per second; use 0 or unlimited for no limit`},
		{"99999999999TiB/s", `rate "99999999999TiB/s": too large`},
	}
	for _, tt := range tests {
		_, err := ParseRate(tt.in)
		if err == nil || err.Error() != tt.want {
			t.Errorf("ParseRate(%q) error:\n got %v\nwant %s", tt.in, err, tt.want)
		}
	}
}

func TestFormatRateRoundTrip(t *testing.T) {
	for _, v := range []int64{0, 1, 1000, 1024, 1536, 4 << 20, 3 << 19, 5 << 30, 12_500_000} {
		s := FormatRate(v)
		back, err := ParseRate(s)
		if err != nil || back != v {
			t.Errorf("FormatRate(%d) = %q, parsed back as %d, %v", v, s, back, err)
		}
	}
	if got := FormatRate(4 << 20); got != "4MiB/s" {
		t.Errorf("FormatRate(4MiB) = %q", got)
	}
}

func TestParseWindowErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `window "": empty; expected days and times such as mon-fri 09:00-18:00`},
		{"work 09:00-18:00", `window "work 09:00-18:00": unknown word "work"; expected daily or a day list like mon-fri`},
		{"mon-fri", `window "mon-fri": missing time range after "mon-fri", e.g. "mon-fri 09:00-18:00"`},
		{"mon-fri 09:00", `window "mon-fri 09:00": bad time range "09:00": write HH:MM-HH:MM, e.g. 09:00-18:00`},
		{"mon-fri 09:00-25:00", `window "mon-fri 09:00-25:00": bad time "25:00": hours run from 00 to 23`},
		{"mon-fri 24:00-18:00", `window "mon-fri 24:00-18:00": bad time "24:00": hours run from 00 to 23`},
		{"mon-fri 09:00-09:00", `window "mon-fri 09:00-09:00": empty time range "09:00-09:00"`},
		{"mon-fry 09:00-18:00", `window "mon-fry 09:00-18:00": unknown day "fry" in "mon-fry"; days are mon tue wed thu fri sat sun`},
	}
	for _, tt := range tests {
		_, err := ParseWindow(tt.in)
		if err == nil || err.Error() != tt.want {
			t.Errorf("ParseWindow(%q) error:\n got %v\nwant %s", tt.in, err, tt.want)
		}
	}
	for _, ok := range []string{"mon-fri 09:00-18:00", "daily 22:00-06:00", "sat,sun 00:00-24:00", "mon-fri 09:00-12:00,13:00-18:00"} {
		w, err := ParseWindow(ok)
		if err != nil || w.String() != ok {
			t.Errorf("ParseWindow(%q) = %q, %v", ok, w.String(), err)
		}
	}
}

func mustWindow(t testing.TB, spec, zone string) Window {
	t.Helper()
	w, err := ParseWindow(spec)
	if err != nil {
		t.Fatal(err)
	}
	return w.In(mustZone(t, zone))
}

func TestRateAt(t *testing.T) {
	p := Throttle{Window: mustWindow(t, "mon-fri 09:00-18:00", "Europe/Berlin"), InWindow: 4 << 20, Outside: Unlimited}
	tests := []struct {
		at   string
		want int64
		next string
	}{
		{"2027-03-26T07:59:59Z", Unlimited, "2027-03-26T08:00:00Z"}, // Fri 08:59:59 CET
		{"2027-03-26T08:00:00Z", 4 << 20, "2027-03-26T17:00:00Z"},   // Fri 09:00 CET
		{"2027-03-26T17:00:00Z", Unlimited, "2027-03-29T07:00:00Z"}, // Fri 18:00 CET, to Mon 09:00 CEST
		{"2027-03-27T12:00:00Z", Unlimited, "2027-03-29T07:00:00Z"}, // Saturday
	}
	for _, tt := range tests {
		at := mustTime(t, tt.at)
		if got := RateAt(p, at); got != tt.want {
			t.Errorf("RateAt(%s) = %d, want %d", tt.at, got, tt.want)
		}
		if got := p.NextChange(at); !got.Equal(mustTime(t, tt.next)) {
			t.Errorf("NextChange(%s) = %v, want %s", tt.at, got.UTC(), tt.next)
		}
	}
	if got := (Throttle{InWindow: 5, Outside: 5, Window: p.Window}).NextChange(mustTime(t, "2027-03-26T08:00:00Z")); !got.IsZero() {
		t.Errorf("NextChange with equal rates = %v, want zero", got)
	}
	if got := RateAt(Throttle{Outside: 7}, mustTime(t, "2027-03-26T08:00:00Z")); got != 7 {
		t.Errorf("RateAt without a window = %d, want 7", got)
	}
	always := mustWindow(t, "daily 00:00-24:00", "America/New_York")
	at := mustTime(t, "2027-03-14T05:00:00Z")
	if !always.Contains(at) || !always.NextChange(at).IsZero() {
		t.Errorf("a window covering the week: Contains %v, NextChange %v", always.Contains(at), always.NextChange(at))
	}
}

// TestWindowGolden walks NextChange across clock changes and prints each
// edge with the state after it.
func TestWindowGolden(t *testing.T) {
	cases := []struct {
		spec, zone, from string
		n                int
	}{
		{"mon-fri 09:00-18:00", "America/New_York", "2027-03-12T00:00:00Z", 6},
		{"daily 01:30-02:30", "America/New_York", "2027-03-13T00:00:00Z", 6},
		{"daily 01:30-02:30", "America/New_York", "2027-11-06T00:00:00Z", 6},
		{"daily 01:15-01:45", "America/New_York", "2027-11-06T12:00:00Z", 4},
		{"sat 22:00-06:00", "Europe/Berlin", "2027-10-29T00:00:00Z", 4},
		{"daily 02:00-02:30", "Australia/Lord_Howe", "2027-10-02T00:00:00Z", 4},
		{"mon-fri 09:00-12:00,13:00-18:00", "Europe/Berlin", "2028-02-28T00:00:00Z", 8},
		{"fri-mon 00:00-24:00", "UTC", "2026-12-30T00:00:00Z", 4},
	}
	var b strings.Builder
	for _, c := range cases {
		w := mustWindow(t, c.spec, c.zone)
		at := mustTime(t, c.from)
		fmt.Fprintf(&b, "== %s in %s from %s (inside: %v)\n", c.spec, c.zone, c.from, w.Contains(at))
		for i := 0; i < c.n; i++ {
			at = w.NextChange(at)
			if at.IsZero() {
				b.WriteString("never changes\n")
				break
			}
			state := "leave"
			if w.Contains(at) {
				state = "enter"
			}
			fmt.Fprintf(&b, "%s %s\n", state, localAndUTC(at, w.Location()))
		}
		b.WriteString("\n")
	}
	checkGolden(t, "window", []byte(b.String()))
}
