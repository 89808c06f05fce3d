package policy

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestParseScheduleErrors(t *testing.T) {
	tests := []struct{ spec, want string }{
		{"", `schedule "": empty; expected daily HH:MM, a day list like mon-fri HH:MM, or every Nh`},
		{"daly 02:00", `schedule "daly 02:00": unknown word "daly"; expected daily, a day list like mon-fri, or every Nh`},
		{"hourly", `schedule "hourly": unknown word "hourly"; expected daily, a day list like mon-fri, or every Nh`},
		{"02:00", `schedule "02:00": unknown word "02:00"; expected daily, a day list like mon-fri, or every Nh`},
		{"daily", `schedule "daily": missing time after "daily": add one or more HH:MM, e.g. "daily 02:00"`},
		{"mon-fry 02:00", `schedule "mon-fry 02:00": unknown day "fry" in "mon-fry"; days are mon tue wed thu fri sat sun`},
		{"sat,,sun 02:00", `schedule "sat,,sun 02:00": empty item in day list "sat,,sun"`},
		{"daily 25:00", `schedule "daily 25:00": bad time "25:00": hours run from 00 to 23`},
		{"daily 24:00", `schedule "daily 24:00": bad time "24:00": hours run from 00 to 23`},
		{"daily 02:60", `schedule "daily 02:60": bad time "02:60": minutes run from 00 to 59`},
		{"daily 2pm", `schedule "daily 2pm": bad time "2pm": write HH:MM, e.g. 02:30`},
		{"daily 02:00,", `schedule "daily 02:00,": empty item in time list "02:00,"`},
		{"daily 02:00,x", `schedule "daily 02:00,x": bad time "x": write HH:MM, e.g. 02:30`},
		{"every", `schedule "every": missing interval after "every"; write every Nh or every Nm, e.g. every 6h or every 90m`},
		{"every 0h", `schedule "every 0h": bad interval "0h": N must be at least 1`},
		{"every 6d", `schedule "every 6d": bad interval "6d"; write every Nh or every Nm, e.g. every 6h or every 90m`},
		{"every 1.5h", `schedule "every 1.5h": bad interval "1.5h"; write every Nh or every Nm, e.g. every 6h or every 90m`},
		{"every h", `schedule "every h": bad interval "h"; write every Nh or every Nm, e.g. every 6h or every 90m`},
		{"every 6", `schedule "every 6": bad interval "6"; write every Nh or every Nm, e.g. every 6h or every 90m`},
		{"every 9000h", `schedule "every 9000h": bad interval "9000h": at most 8760h`},
		{"every 99999999999999h", `schedule "every 99999999999999h": bad interval "99999999999999h"; write every Nh or every Nm, e.g. every 6h or every 90m`},
	}
	for _, tt := range tests {
		_, err := ParseSchedule(tt.spec)
		if err == nil {
			t.Errorf("ParseSchedule(%q): no error, want %q", tt.spec, tt.want)
			continue
		}
		if err.Error() != tt.want {
			t.Errorf("ParseSchedule(%q):\n got %q\nwant %q", tt.spec, err, tt.want)
		}
	}
}

func TestParseScheduleCanonical(t *testing.T) {
	tests := []struct{ spec, want string }{
		{"daily 02:00", "daily 02:00"},
		{"DAILY 2:00, 14:30,02:00", "daily 02:00,14:30"},
		{"mon-fri 09:00", "mon-fri 09:00"},
		{"sat,sun 10:00", "sat,sun 10:00"},
		{"mon, wed-fri 08:00", "mon,wed-fri 08:00"},
		{"fri-mon 08:00", "mon,fri-sun 08:00"},
		{"monday,tuesday,wednesday 08:00", "mon-wed 08:00"},
		{"mon-sun 08:00", "daily 08:00"},
		{"sun-sat 08:00", "daily 08:00"},
		{"every 6h", "every 6h"},
		{"every 90m", "every 90m"},
		{"every 120m", "every 2h"},
		{"every 1h30m", "every 90m"},
		{"Every 1M", "every 1m"},
	}
	for _, tt := range tests {
		s, err := ParseSchedule(tt.spec)
		if err != nil {
			t.Errorf("ParseSchedule(%q): %v", tt.spec, err)
			continue
		}
		if got := s.String(); got != tt.want {
			t.Errorf("ParseSchedule(%q).String() = %q, want %q", tt.spec, got, tt.want)
		}
		again, err := ParseSchedule(s.String())
		if err != nil || again.String() != s.String() {
			t.Errorf("round trip of %q: %q, %v", tt.spec, again.String(), err)
		}
	}
}

// The rules of the issue, checked directly (the golden file has more).
func TestScheduleDSTRules(t *testing.T) {
	tests := []struct {
		name, spec, zone, from string
		want                   []string
	}{
		{"spring forward runs at the jump", "daily 02:30", "America/New_York", "2027-03-14T00:00:00Z",
			[]string{"2027-03-14T07:00:00Z", "2027-03-15T06:30:00Z"}},
		{"fall back runs at first occurrence", "daily 01:30", "America/New_York", "2027-11-07T00:00:00Z",
			[]string{"2027-11-07T05:30:00Z", "2027-11-08T06:30:00Z"}},
		{"Berlin spring", "daily 02:30", "Europe/Berlin", "2027-03-27T12:00:00Z",
			[]string{"2027-03-28T01:00:00Z", "2027-03-29T00:30:00Z"}},
		{"Berlin fall", "daily 02:30", "Europe/Berlin", "2027-10-30T12:00:00Z",
			[]string{"2027-10-31T00:30:00Z", "2027-11-01T01:30:00Z"}},
		{"Lord Howe half-hour jump", "daily 02:15", "Australia/Lord_Howe", "2027-10-02T12:00:00Z",
			[]string{"2027-10-02T15:30:00Z", "2027-10-03T15:15:00Z"}},
		{"Lord Howe half-hour repeat", "daily 01:45", "Australia/Lord_Howe", "2027-04-03T12:00:00Z",
			[]string{"2027-04-03T14:45:00Z", "2027-04-04T15:15:00Z"}},
		{"two slots in one gap run once", "daily 02:10,02:40", "America/New_York", "2027-03-14T05:00:00Z",
			[]string{"2027-03-14T07:00:00Z", "2027-03-15T06:10:00Z"}},
		{"from is inclusive", "daily 02:00", "UTC", "2028-02-29T02:00:00Z",
			[]string{"2028-02-29T02:00:00Z", "2028-03-01T02:00:00Z"}},
		{"interval ignores DST", "every 1h", "America/New_York", "2027-11-07T04:30:00Z",
			[]string{"2027-11-07T05:00:00Z", "2027-11-07T06:00:00Z", "2027-11-07T07:00:00Z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustSchedule(t, tt.spec, tt.zone)
			var got []string
			for _, r := range s.Runs(mustTime(t, tt.from), len(tt.want)) {
				got = append(got, r.UTC().Format(time.RFC3339))
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("Runs = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestIntervalAnchor(t *testing.T) {
	// every Nh counts from local midnight of 2000-01-01 in the zone, so in
	// Kolkata (UTC+5:30) every 6h runs at 00:00, 06:00, 12:00, 18:00 local.
	s := mustSchedule(t, "every 6h", "Asia/Kolkata")
	for _, r := range s.Runs(mustTime(t, "2027-06-01T00:00:00Z"), 8) {
		if h, m := r.Hour(), r.Minute(); h%6 != 0 || m != 0 {
			t.Errorf("run %v: want local 00/06/12/18:00", r)
		}
	}
	// A run far before the anchor still lines up.
	u := mustSchedule(t, "every 7h", "UTC")
	r := u.Next(mustTime(t, "1999-12-31T12:00:00Z"))
	if want := mustTime(t, "1999-12-31T17:00:00Z"); !r.Equal(want) {
		t.Errorf("Next before anchor = %v, want %v", r, want)
	}
}

func TestZeroSchedule(t *testing.T) {
	var s Schedule
	now := mustTime(t, "2027-01-01T00:00:00Z")
	if !s.Next(now).IsZero() || s.Runs(now, 3) != nil || Due(s, time.Time{}, now) || !NextRun(s, time.Time{}, now).IsZero() {
		t.Error("the zero Schedule must never run")
	}
}

func TestDue(t *testing.T) {
	s := mustSchedule(t, "daily 02:00,14:00", "Europe/Berlin")
	tests := []struct {
		name, last, now string
		due             bool
		next            string
	}{
		{"never ran", "", "2027-06-01T10:00:00Z", true, "2027-06-01T10:00:00Z"},
		{"ran at the slot", "2027-06-01T00:00:00Z", "2027-06-01T11:59:59Z", false, "2027-06-01T12:00:00Z"},
		{"slot reached", "2027-06-01T00:00:00Z", "2027-06-01T12:00:00Z", true, "2027-06-01T12:00:00Z"},
		{"off for a week: one catch-up", "2027-06-01T00:00:00Z", "2027-06-08T09:00:00Z", true, "2027-06-08T09:00:00Z"},
		{"after the catch-up", "2027-06-08T09:00:00Z", "2027-06-08T09:05:00Z", false, "2027-06-08T12:00:00Z"},
		{"run overran its slot", "2027-06-01T11:50:00Z", "2027-06-01T12:30:00Z", true, "2027-06-01T12:30:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var last time.Time
			if tt.last != "" {
				last = mustTime(t, tt.last)
			}
			now := mustTime(t, tt.now)
			if got := Due(s, last, now); got != tt.due {
				t.Errorf("Due = %v, want %v", got, tt.due)
			}
			if got := NextRun(s, last, now); !got.Equal(mustTime(t, tt.next)) {
				t.Errorf("NextRun = %v, want %v", got.UTC(), tt.next)
			}
		})
	}
}

// A machine that is off over several slots and comes back runs once: the
// simulated agent below asks NextRun, "runs", and records the start.
func TestCatchUpRunsOnce(t *testing.T) {
	s := mustSchedule(t, "every 1h", "America/New_York")
	last := mustTime(t, "2027-03-13T00:00:00Z")
	boot := mustTime(t, "2027-03-14T12:34:00Z") // off for a day and a half, across the DST change
	var runs []time.Time
	now := boot
	for {
		now = NextRun(s, last, now)
		if now.After(boot.Add(3 * time.Hour)) {
			break
		}
		runs = append(runs, now)
		last = now
		now = now.Add(10 * time.Minute) // the backup takes ten minutes
	}
	want := []string{"2027-03-14T12:34:00Z", "2027-03-14T13:00:00Z", "2027-03-14T14:00:00Z", "2027-03-14T15:00:00Z"}
	if len(runs) != len(want) {
		t.Fatalf("runs = %v, want %v", runs, want)
	}
	for i := range want {
		if !runs[i].Equal(mustTime(t, want[i])) {
			t.Errorf("run %d = %v, want %v", i, runs[i].UTC(), want[i])
		}
	}
}

func TestScheduleGolden(t *testing.T) {
	cases := []struct {
		spec, zone, from string
		n                int
	}{
		{"daily 02:30", "America/New_York", "2027-03-12T00:00:00Z", 5},
		{"daily 02:00", "America/New_York", "2027-03-13T00:00:00Z", 3},
		{"daily 01:30", "America/New_York", "2027-11-05T00:00:00Z", 5},
		{"daily 01:00,01:59,02:00", "America/New_York", "2027-11-06T12:00:00Z", 6},
		{"every 30m", "America/New_York", "2027-11-07T04:45:00Z", 6},
		{"every 1h", "America/New_York", "2027-03-14T05:00:00Z", 4},
		{"every 90m", "Europe/Berlin", "2027-03-27T22:00:00Z", 5},
		{"daily 02:30", "Europe/Berlin", "2027-03-27T00:00:00Z", 3},
		{"daily 02:30", "Europe/Berlin", "2027-10-30T00:00:00Z", 3},
		{"mon,wed-fri 08:00,20:00", "Europe/Berlin", "2027-10-29T00:00:00Z", 6},
		{"daily 02:15", "Australia/Lord_Howe", "2027-10-01T00:00:00Z", 4},
		{"daily 01:45", "Australia/Lord_Howe", "2027-04-02T00:00:00Z", 4},
		{"every 1h", "Australia/Lord_Howe", "2027-04-03T13:30:00Z", 4},
		{"tue 00:00", "UTC", "2028-02-20T00:00:00Z", 3},
		{"daily 23:59", "Asia/Tokyo", "2028-02-27T00:00:00Z", 4},
		{"sat,sun 10:00", "America/Los_Angeles", "2026-12-25T00:00:00Z", 5},
		{"daily 00:00,12:00", "Pacific/Apia", "2011-12-28T00:00:00Z", 6},
		{"every 6h", "Asia/Kolkata", "2027-01-01T00:00:00Z", 4},
		{"every 7h", "UTC", "2026-12-31T00:00:00Z", 5},
	}
	var b strings.Builder
	for _, c := range cases {
		s := mustSchedule(t, c.spec, c.zone)
		fmt.Fprintf(&b, "== %s in %s, %d runs at or after %s\n", c.spec, c.zone, c.n, c.from)
		for _, r := range s.Runs(mustTime(t, c.from), c.n) {
			note := ""
			if !s.Matches(r) {
				note = "  (clock jump)"
			}
			fmt.Fprintf(&b, "%s%s\n", localAndUTC(r, s.Location()), note)
		}
		b.WriteString("\n")
	}
	checkGolden(t, "schedule", []byte(b.String()))
}

func BenchmarkNextDaily(b *testing.B) {
	s := mustSchedule(b, "mon-fri 02:30,14:00", "America/New_York")
	t := mustTime(b, "2027-03-01T00:00:00Z")
	for b.Loop() {
		t = s.Next(t)
	}
}
