package policy

import (
	"fmt"
	"strings"
	"time"
)

// LoadZone returns the IANA time zone called name, for example
// "Europe/Berlin" or "UTC". The machine-dependent zone "Local" and the empty
// name are refused: a policy must mean the same thing on every machine.
func LoadZone(name string) (*time.Location, error) {
	if name == "" || strings.EqualFold(name, "local") {
		return nil, fmt.Errorf("time zone %q: name an IANA zone such as Europe/Berlin or UTC", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("time zone %q: unknown; use an IANA name such as Europe/Berlin or UTC", name)
	}
	return loc, nil
}

// zoneOrUTC returns loc, or UTC when loc is nil.
func zoneOrUTC(loc *time.Location) *time.Location {
	if loc == nil {
		return time.UTC
	}
	return loc
}

// lookAround bounds the search for other occurrences of a wall-clock time:
// offsets from UTC lie between -12h and +14h, so two instants showing the
// same wall-clock time are at most 26 hours apart.
const lookAround = 30 * time.Hour

// wallInstant returns the instant at which the wall-clock time mins minutes
// after midnight of the calendar day y-m-d happens in loc, following
// Coffer's two daylight-saving rules:
//
//   - a wall-clock time that happens twice (the clocks go back) is taken at
//     its first occurrence;
//   - a wall-clock time that does not happen (the clocks jump forward over
//     it) is taken at the instant of the jump.
//
// mins may be 1440 (24:00, midnight at the end of the day); day overflow is
// normalised as by time.Date. The result is in loc.
func wallInstant(y int, m time.Month, d, mins int, loc *time.Location) time.Time {
	guess := time.Date(y, m, d, 0, mins, 0, 0, loc)
	start, end := guess.ZoneBounds()
	if (start.IsZero() || guess.Sub(start) > lookAround) && (end.IsZero() || end.Sub(guess) > lookAround) {
		// One zone period covers every instant that could show this wall
		// time, so the occurrence is unique and time.Date found it.
		return guess
	}
	return wallInstantSlow(time.Date(y, m, d, 0, mins, 0, 0, time.UTC), loc, guess)
}

// zonePeriod is a stretch of time with one UTC offset: [start, end), where a
// zero start or end means unbounded.
type zonePeriod struct {
	start, end time.Time
	offset     time.Duration
}

func (p zonePeriod) contains(t time.Time) bool {
	return (p.start.IsZero() || !t.Before(p.start)) && (p.end.IsZero() || t.Before(p.end))
}

// wallInstantSlow handles wall times near an offset change. wall holds the
// wall-clock reading expressed as if it were UTC.
func wallInstantSlow(wall time.Time, loc *time.Location, guess time.Time) time.Time {
	var periods []zonePeriod
	limit := wall.Add(lookAround)
	for t := wall.Add(-lookAround); ; {
		lt := t.In(loc)
		start, end := lt.ZoneBounds()
		_, off := lt.Zone()
		periods = append(periods, zonePeriod{start, end, time.Duration(off) * time.Second})
		if end.IsZero() || end.After(limit) || len(periods) > 16 {
			break
		}
		t = end
	}
	// The wall time happens at wall-offset in every period that contains
	// that instant; the first such instant wins.
	var first time.Time
	for _, p := range periods {
		c := wall.Add(-p.offset)
		if p.contains(c) && (first.IsZero() || c.Before(first)) {
			first = c
		}
	}
	if !first.IsZero() {
		return first.In(loc)
	}
	// It does not happen: find the forward jump that skips it. At the
	// boundary T between two periods the clock jumps from T+off1 to T+off2,
	// so the readings [T+off1, T+off2) never show.
	for i := 0; i+1 < len(periods); i++ {
		t := periods[i].end
		from, to := t.Add(periods[i].offset), t.Add(periods[i+1].offset)
		if !wall.Before(from) && wall.Before(to) {
			return t.In(loc)
		}
	}
	return guess // not reached with a consistent zone database
}

// minutesOfDay returns the wall-clock reading of t as minutes after midnight
// and whether t falls on a whole minute.
func minutesOfDay(t time.Time) (int, bool) {
	return t.Hour()*60 + t.Minute(), t.Second() == 0 && t.Nanosecond() == 0
}

// addDays returns the calendar day n days after y-m-d (n may be negative).
func addDays(y int, m time.Month, d, n int) (int, time.Month, int) {
	return time.Date(y, m, d+n, 12, 0, 0, 0, time.UTC).Date()
}

// weekdayOf returns the weekday of the calendar day y-m-d.
func weekdayOf(y int, m time.Month, d int) time.Weekday {
	return time.Date(y, m, d, 12, 0, 0, 0, time.UTC).Weekday()
}
