package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Window is a weekly set of wall-clock time ranges in a zone, such as work
// hours "mon-fri 09:00-18:00". The zero Window is empty.
//
// Each range belongs to the days it starts on; a range whose end is not
// after its start ("22:00-06:00") runs past midnight into the next day;
// "24:00" ends at midnight. The edges are wall-clock times resolved like
// schedule slots: a time skipped by a clock change is at the instant of the
// jump, a time that happens twice is at its first occurrence. So a window
// is a set of intervals of absolute time, and "inside" never flips back
// and forth during a repeated hour.
type Window struct {
	days  dayList
	spans []span
	loc   *time.Location
}

// span is one time range, in minutes after midnight.
type span struct{ start, end int }

// ParseWindow parses "DAYS HH:MM-HH:MM[,HH:MM-HH:MM…]", with DAYS as in
// schedules ("daily", "mon-fri", "sat,sun"). The window is in UTC; use In
// to give it a zone.
func ParseWindow(spec string) (Window, error) {
	w, err := parseWindow(strings.Fields(strings.ToLower(spec)))
	if err != nil {
		return Window{}, fmt.Errorf("window %q: %w", spec, err)
	}
	return w, nil
}

func parseWindow(fields []string) (Window, error) {
	if len(fields) == 0 {
		return Window{}, errors.New("empty; expected days and times such as mon-fri 09:00-18:00")
	}
	if !dayWords(fields[0]) {
		return Window{}, fmt.Errorf("unknown word %q; expected daily or a day list like mon-fri", fields[0])
	}
	dayPart, timePart := splitDaysAndRest(fields)
	days, err := parseDays(dayPart)
	if err != nil {
		return Window{}, err
	}
	if timePart == "" {
		return Window{}, fmt.Errorf("missing time range after %q, e.g. %q", dayPart, dayPart+" 09:00-18:00")
	}
	var spans []span
	for _, item := range strings.Split(timePart, ",") {
		a, b, ok := strings.Cut(item, "-")
		if !ok {
			return Window{}, fmt.Errorf("bad time range %q: write HH:MM-HH:MM, e.g. 09:00-18:00", item)
		}
		start, err := parseClock(a, false)
		if err != nil {
			return Window{}, err
		}
		end, err := parseClock(b, true)
		if err != nil {
			return Window{}, err
		}
		if start == end {
			return Window{}, fmt.Errorf("empty time range %q", item)
		}
		spans = append(spans, span{start, end})
	}
	slices.SortFunc(spans, func(x, y span) int { return x.start - y.start })
	return Window{days: days, spans: spans}, nil
}

// In returns the window in the time zone loc (UTC if nil).
func (w Window) In(loc *time.Location) Window {
	w.loc = loc
	return w
}

// Location returns the window's time zone.
func (w Window) Location() *time.Location { return zoneOrUTC(w.loc) }

// IsZero reports whether w is the zero (empty) Window.
func (w Window) IsZero() bool { return len(w.spans) == 0 }

// String returns the window in canonical syntax, which ParseWindow reads.
func (w Window) String() string {
	if w.IsZero() {
		return ""
	}
	parts := make([]string, len(w.spans))
	for i, s := range w.spans {
		parts[i] = formatClock(s.start) + "-" + formatClock(s.end)
	}
	return w.days.String() + " " + strings.Join(parts, ",")
}

// interval is [start, end) in absolute time.
type interval struct{ start, end time.Time }

// intervals returns the window's intervals for the ranges starting on the
// calendar days from-days before t's local day to to-days after it.
func (w Window) intervals(t time.Time, from, to int) []interval {
	loc := w.Location()
	y, m, d := t.In(loc).Date()
	var out []interval
	for i := from; i <= to; i++ {
		yy, mm, dd := addDays(y, m, d, i)
		if !w.days[weekdayOf(yy, mm, dd)] {
			continue
		}
		for _, s := range w.spans {
			endDay := dd
			if s.end <= s.start {
				endDay++
			}
			iv := interval{wallInstant(yy, mm, dd, s.start, loc), wallInstant(yy, mm, endDay, s.end, loc)}
			if iv.start.Before(iv.end) {
				out = append(out, iv)
			}
		}
	}
	return out
}

func inside(ivs []interval, t time.Time) bool {
	for _, iv := range ivs {
		if !t.Before(iv.start) && t.Before(iv.end) {
			return true
		}
	}
	return false
}

// Contains reports whether the instant t is inside the window.
func (w Window) Contains(t time.Time) bool {
	if w.IsZero() {
		return false
	}
	return inside(w.intervals(t, -2, 1), t)
}

// NextChange returns the first instant strictly after t at which Contains
// changes (the next edge of the window that matters), or the zero Time if
// it never changes (an empty window, or one covering the whole week).
func (w Window) NextChange(t time.Time) time.Time {
	if w.IsZero() {
		return time.Time{}
	}
	// A weekly window that changes at all changes within eight days. The
	// intervals of the ranges starting up to day +10 decide every instant
	// before day +9.
	ivs := w.intervals(t, -2, 10)
	y, m, d := t.In(w.Location()).Date()
	yy, mm, dd := addDays(y, m, d, 9)
	horizon := wallInstant(yy, mm, dd, 0, w.Location())
	var edges []time.Time
	for _, iv := range ivs {
		for _, e := range []time.Time{iv.start, iv.end} {
			if e.After(t) && e.Before(horizon) {
				edges = append(edges, e)
			}
		}
	}
	slices.SortFunc(edges, func(a, b time.Time) int { return a.Compare(b) })
	now := inside(ivs, t)
	for _, e := range edges {
		if inside(ivs, e) != now {
			return e.In(w.Location())
		}
	}
	return time.Time{}
}

// Throttle is one direction's bandwidth policy: a rate inside a weekly
// window (work hours, say) and another outside it. Rates are in bytes per
// second; Unlimited (0) means no limit. With a zero Window, Outside is
// always in force.
type Throttle struct {
	Window   Window
	InWindow int64
	Outside  int64
}

// RateAt returns the limit in force at instant t.
func RateAt(p Throttle, t time.Time) int64 {
	if p.Window.Contains(t) {
		return p.InWindow
	}
	return p.Outside
}

// NextChange returns the first instant strictly after t at which RateAt
// changes, so a live limiter can switch at the window's edge; it returns
// the zero Time if the rate never changes.
func (p Throttle) NextChange(t time.Time) time.Time {
	if p.InWindow == p.Outside {
		return time.Time{}
	}
	return p.Window.NextChange(t)
}
