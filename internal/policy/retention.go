package policy

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Retention says which recovery points a policy keeps. Each count keeps the
// newest point of each of the newest N periods (days, ISO weeks, months,
// years) that have points, with periods taken in Location; KeepLast keeps
// the N newest points; on-demand points are also kept while younger than
// OnDemandDays calendar days. A point kept by any rule is kept.
type Retention struct {
	KeepLast     int
	Daily        int
	Weekly       int
	Monthly      int
	Yearly       int
	OnDemandDays int
	Location     *time.Location // nil means UTC
}

// Limits of the retention counts. They are at least as wide as MARS's
// (daily 9999, weekly 5163, monthly 1188, yearly 99).
const (
	MaxKeepLast     = 100000
	MaxDaily        = 9999
	MaxWeekly       = 5163
	MaxMonthly      = 1188
	MaxYearly       = 99
	MaxOnDemandDays = 36500
)

// Reasons a point is kept, as they appear in Decision.Reasons, in this
// order.
const (
	ReasonLast     = "last"
	ReasonDaily    = "daily"
	ReasonWeekly   = "weekly"
	ReasonMonthly  = "monthly"
	ReasonYearly   = "yearly"
	ReasonOnDemand = "on-demand"
)

// Validate checks the counts against their ranges and refuses a policy that
// keeps no scheduled point at all (which would delete every backup).
func (r Retention) Validate() error {
	var errs []error
	check := func(name string, v, max int) {
		if v < 0 || v > max {
			errs = append(errs, fmt.Errorf("%s %d: must be between 0 and %d", name, v, max))
		}
	}
	check("keep-last", r.KeepLast, MaxKeepLast)
	check("keep-daily", r.Daily, MaxDaily)
	check("keep-weekly", r.Weekly, MaxWeekly)
	check("keep-monthly", r.Monthly, MaxMonthly)
	check("keep-yearly", r.Yearly, MaxYearly)
	check("keep-on-demand-days", r.OnDemandDays, MaxOnDemandDays)
	if len(errs) == 0 && r.KeepLast+r.Daily+r.Weekly+r.Monthly+r.Yearly == 0 {
		errs = append(errs, errors.New("keeps nothing: set at least one of keep-last, keep-daily, keep-weekly, keep-monthly, keep-yearly"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("retention: %w", err)
	}
	return nil
}

// Point is a recovery point as retention sees it.
type Point struct {
	ID       string
	Time     time.Time
	OnDemand bool // started by hand rather than by the schedule
}

// Decision is the fate of one point: kept (with the rules that keep it) or
// not kept (Reasons empty).
type Decision struct {
	Point
	Keep    bool
	Reasons []string
}

// Apply decides which points r keeps at instant now. It returns one
// Decision per point, newest first (equal times in ID order), whatever the
// input order. It does not validate r; a rule with a count of 0 keeps
// nothing.
//
// Every rule looks at all points, on-demand ones included: keep-daily N
// walks the points from newest to oldest and keeps the first (newest) point
// it sees of each day, until it has kept N days; keep-weekly does the same
// with ISO weeks (time.ISOWeek of the local time), keep-monthly with
// calendar months and keep-yearly with calendar years, all in r.Location.
// Points newer than now count like the others. An on-demand point is also
// kept while now is before its local time plus OnDemandDays calendar days.
func Apply(r Retention, points []Point, now time.Time) []Decision {
	loc := zoneOrUTC(r.Location)
	out := make([]Decision, len(points))
	for i, p := range points {
		out[i] = Decision{Point: p}
	}
	slices.SortStableFunc(out, func(a, b Decision) int {
		if c := b.Time.Compare(a.Time); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	keep := func(i int, reason string) {
		out[i].Keep = true
		out[i].Reasons = append(out[i].Reasons, reason)
	}
	for i := 0; i < len(out) && i < r.KeepLast; i++ {
		keep(i, ReasonLast)
	}
	buckets := []struct {
		n      int
		reason string
		key    func(time.Time) int
	}{
		{r.Daily, ReasonDaily, func(t time.Time) int { y, m, d := t.Date(); return y*10000 + int(m)*100 + d }},
		{r.Weekly, ReasonWeekly, func(t time.Time) int { y, w := t.ISOWeek(); return y*100 + w }},
		{r.Monthly, ReasonMonthly, func(t time.Time) int { return t.Year()*100 + int(t.Month()) }},
		{r.Yearly, ReasonYearly, func(t time.Time) int { return t.Year() }},
	}
	for _, b := range buckets {
		seen := make(map[int]bool)
		for i := 0; i < len(out) && len(seen) < b.n; i++ {
			k := b.key(out[i].Time.In(loc))
			if !seen[k] {
				seen[k] = true
				keep(i, b.reason)
			}
		}
	}
	if r.OnDemandDays > 0 {
		for i := range out {
			if out[i].OnDemand && now.Before(out[i].Time.In(loc).AddDate(0, 0, r.OnDemandDays)) {
				keep(i, ReasonOnDemand)
			}
		}
	}
	return out
}
