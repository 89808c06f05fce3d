package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Schedule says when a machine's backups run. It is either a set of
// wall-clock times on a set of weekdays ("daily 02:00,14:00", "mon-fri
// 09:00") or a fixed interval of absolute time ("every 6h", "every 90m"),
// always in a time zone (UTC unless set with In).
//
// The zero Schedule never runs. A Schedule is a value: In returns a copy.
type Schedule struct {
	days  dayList       // weekdays with runs (wall-clock schedules)
	times []int         // minutes after midnight, sorted, distinct
	every time.Duration // > 0 for interval schedules
	loc   *time.Location
}

// maxEvery bounds interval schedules (a year).
const maxEvery = 8760 * time.Hour

// intervalEpoch is the anchor of interval schedules: their runs are the
// instants anchor + k·N for every integer k, where anchor is midnight at the
// start of this calendar day in the schedule's zone.
var intervalEpoch = struct {
	y int
	m time.Month
	d int
}{2000, time.January, 1}

// ParseSchedule parses a schedule:
//
//	daily HH:MM[,HH:MM…]      every day at these wall-clock times
//	DAYS HH:MM[,HH:MM…]       DAYS: mon-fri, sat,sun, mon,wed-fri, fri-mon…
//	every Nh | every Nm       every N hours or minutes of absolute time
//
// Words are case-insensitive and spaces after commas are allowed. The
// schedule is in UTC; use In to give it a zone. Errors name the bad part.
func ParseSchedule(spec string) (Schedule, error) {
	s, err := parseSchedule(strings.Fields(strings.ToLower(spec)))
	if err != nil {
		return Schedule{}, fmt.Errorf("schedule %q: %w", spec, err)
	}
	return s, nil
}

func parseSchedule(fields []string) (Schedule, error) {
	if len(fields) == 0 {
		return Schedule{}, errors.New("empty; expected daily HH:MM, a day list like mon-fri HH:MM, or every Nh")
	}
	if fields[0] == "every" {
		d, err := parseEvery(strings.Join(fields[1:], ""))
		return Schedule{every: d}, err
	}
	if !dayWords(fields[0]) {
		return Schedule{}, fmt.Errorf("unknown word %q; expected daily, a day list like mon-fri, or every Nh", fields[0])
	}
	dayPart, timePart := splitDaysAndRest(fields)
	days, err := parseDays(dayPart)
	if err != nil {
		return Schedule{}, err
	}
	if timePart == "" {
		return Schedule{}, fmt.Errorf("missing time after %q: add one or more HH:MM, e.g. %q", dayPart, dayPart+" 02:00")
	}
	var times []int
	for _, item := range strings.Split(timePart, ",") {
		if item == "" {
			return Schedule{}, fmt.Errorf("empty item in time list %q", timePart)
		}
		mins, err := parseClock(item, false)
		if err != nil {
			return Schedule{}, err
		}
		times = append(times, mins)
	}
	slices.Sort(times)
	return Schedule{days: days, times: slices.Compact(times)}, nil
}

func parseEvery(s string) (time.Duration, error) {
	const want = "write every Nh or every Nm, e.g. every 6h or every 90m"
	if s == "" {
		return 0, errors.New("missing interval after \"every\"; " + want)
	}
	if strings.Trim(s, "0123456789hm") != "" || !digits(s[:1]) {
		return 0, fmt.Errorf("bad interval %q; %s", s, want)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("bad interval %q; %s", s, want)
	}
	switch {
	case d < time.Minute:
		return 0, fmt.Errorf("bad interval %q: N must be at least 1", s)
	case d > maxEvery:
		return 0, fmt.Errorf("bad interval %q: at most %dh", s, int(maxEvery.Hours()))
	}
	return d, nil
}

// In returns the schedule in the time zone loc (UTC if nil).
func (s Schedule) In(loc *time.Location) Schedule {
	s.loc = loc
	return s
}

// Location returns the schedule's time zone.
func (s Schedule) Location() *time.Location { return zoneOrUTC(s.loc) }

// IsZero reports whether s is the zero Schedule, which never runs.
func (s Schedule) IsZero() bool { return s.every == 0 && len(s.times) == 0 }

// Every returns the interval of an interval schedule, or 0.
func (s Schedule) Every() time.Duration { return s.every }

// String returns the schedule in canonical syntax (without the zone), which
// ParseSchedule reads back.
func (s Schedule) String() string {
	switch {
	case s.every%time.Hour == 0 && s.every > 0:
		return fmt.Sprintf("every %dh", s.every/time.Hour)
	case s.every > 0:
		return fmt.Sprintf("every %dm", s.every/time.Minute)
	case len(s.times) == 0:
		return ""
	}
	clocks := make([]string, len(s.times))
	for i, m := range s.times {
		clocks[i] = formatClock(m)
	}
	return s.days.String() + " " + strings.Join(clocks, ",")
}

// Next returns the first run strictly after the instant after, in the
// schedule's zone, or the zero Time for the zero Schedule.
//
// Wall-clock times follow the daylight-saving rules: a time that does not
// exist on a day (the clocks jump over it) runs at the instant of the jump;
// a time that happens twice runs once, at its first occurrence. Each day's
// times belong to that calendar day, so on the spring-forward day "daily
// 02:30" in America/New_York runs at 03:00 EDT. Two slots that fall on the
// same instant run once.
func (s Schedule) Next(after time.Time) time.Time {
	if s.every > 0 {
		return s.nextInterval(after)
	}
	if len(s.times) == 0 {
		return time.Time{}
	}
	loc := s.Location()
	y, m, d := after.In(loc).Date()
	var best time.Time
	bestDay := 0
	// Start two days back and look two days past the first hit: instants
	// are not always in calendar order near a clock change.
	for i := -2; i <= 16; i++ {
		if !best.IsZero() && i > bestDay+2 {
			break
		}
		yy, mm, dd := addDays(y, m, d, i)
		if !s.days[weekdayOf(yy, mm, dd)] {
			continue
		}
		for _, mins := range s.times {
			t := wallInstant(yy, mm, dd, mins, loc)
			if t.After(after) && (best.IsZero() || t.Before(best)) {
				best, bestDay = t, i
			}
		}
	}
	return best
}

// anchor returns the instant interval schedules count from (in seconds
// since the Unix epoch).
func (s Schedule) anchor() int64 {
	e := intervalEpoch
	return wallInstant(e.y, e.m, e.d, 0, s.Location()).Unix()
}

func (s Schedule) nextInterval(after time.Time) time.Time {
	n := int64(s.every / time.Second)
	a := s.anchor()
	// after = a + d seconds + a fraction; the next run is a + k·n with
	// k·n > d, whatever the fraction, since runs fall on whole seconds.
	d := after.Unix() - a
	k := floorDiv(d, n) + 1
	return time.Unix(a+k*n, 0).In(s.Location())
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// Runs returns the first n runs at or after from (a run exactly at from
// counts), in increasing order.
func (s Schedule) Runs(from time.Time, n int) []time.Time {
	if s.IsZero() || n <= 0 {
		return nil
	}
	runs := make([]time.Time, 0, n)
	// Next is strictly after; one nanosecond back makes it "at or after",
	// as instants have nanosecond resolution.
	t := from.Add(-time.Nanosecond)
	for len(runs) < n {
		t = s.Next(t)
		runs = append(runs, t)
	}
	return runs
}

// Matches reports whether t shows one of the schedule's wall-clock slots
// exactly (weekday, hour and minute, zero seconds) in the schedule's zone,
// or, for an interval schedule, whether t is one of its instants. A run
// that Next placed at a clock jump does not match.
func (s Schedule) Matches(t time.Time) bool {
	if s.every > 0 {
		n := int64(s.every / time.Second)
		return t.Nanosecond() == 0 && (t.Unix()-s.anchor())%n == 0
	}
	lt := t.In(s.Location())
	mins, whole := minutesOfDay(lt)
	_, found := slices.BinarySearch(s.times, mins)
	return whole && found && s.days[lt.Weekday()]
}

// Due reports whether a scheduled run is due at now, given the start of the
// last run: it is when a slot lies in (lastRun, now]. However many slots
// were missed while the machine was off, Due is simply true, so they are
// caught up by one run; after that run lastRun is its start and Due is
// false until the next slot. A zero lastRun (never ran) is always due.
func Due(s Schedule, lastRun, now time.Time) bool {
	if s.IsZero() {
		return false
	}
	if lastRun.IsZero() {
		return true
	}
	next := s.Next(lastRun)
	return !next.After(now)
}

// NextRun returns when the next run should start, seen at now: now itself
// when a run is Due (a catch-up), else the first slot after now. It returns
// the zero Time for the zero Schedule.
func NextRun(s Schedule, lastRun, now time.Time) time.Time {
	if s.IsZero() {
		return time.Time{}
	}
	if Due(s, lastRun, now) {
		return now
	}
	return s.Next(now)
}
