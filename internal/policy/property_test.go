package policy

import (
	"flag"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// Zones with awkward clock changes: half-hour shifts (Lord Howe), changes
// at midnight (Sao Paulo until 2019, Havana, Santiago, Tehran until 2022),
// Ramadan suspensions (Casablanca), a skipped day (Apia 2011).
var propertyZones = []string{
	"UTC", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Australia/Sydney",
	"America/Sao_Paulo", "America/Havana", "America/Santiago", "Asia/Tehran",
	"Africa/Casablanca", "Pacific/Apia", "Asia/Kolkata", "Pacific/Chatham",
}

var seedFlag = flag.Uint64("seed", 0, "seed of the randomized tests (0: pick one and log it)")

// testSeed returns the seed of a randomized test and logs it, so a failure
// can be replayed with -seed.
func testSeed(t *testing.T) uint64 {
	t.Helper()
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay with -seed %d)", seed, seed)
	return seed
}

// randomSchedule builds a wall-clock schedule whose times favour the small
// hours, where clock changes happen.
func randomSchedule(r *rand.Rand) string {
	var days []string
	for _, w := range weekdays {
		if r.IntN(3) > 0 {
			days = append(days, w.short)
		}
	}
	if len(days) == 0 {
		days = []string{"daily"}
	}
	var times []string
	for n := 1 + r.IntN(4); n > 0; n-- {
		var mins int
		switch r.IntN(3) {
		case 0:
			mins = r.IntN(4*60) / 15 * 15 // 00:00..03:45 on quarters
		case 1:
			mins = 23*60 + r.IntN(60) // just before midnight
		default:
			mins = r.IntN(1440)
		}
		times = append(times, formatClock(mins))
	}
	return strings.Join(days, ",") + " " + strings.Join(times, ",")
}

// randomNearChange returns an instant a few days before a clock change of
// loc between 2005 and 2035 (or any instant if loc has none).
func randomNearChange(r *rand.Rand, loc *time.Location) time.Time {
	t := time.Date(2005+r.IntN(30), time.Month(1+r.IntN(12)), 1+r.IntN(28), r.IntN(24), r.IntN(60), 0, 0, time.UTC)
	if _, end := t.In(loc).ZoneBounds(); !end.IsZero() && end.Sub(t) < 400*24*time.Hour {
		t = end.Add(-time.Duration(r.IntN(4*24*60)) * time.Minute)
	}
	return t.Truncate(time.Minute)
}

// wallOf returns t's local wall-clock reading in loc, expressed in UTC.
func wallOf(t time.Time, loc *time.Location) time.Time {
	y, m, d := t.In(loc).Date()
	h, mi, s := t.In(loc).Clock()
	return time.Date(y, m, d, h, mi, s, 0, time.UTC)
}

// oracleRuns lists the runs of s in [from, to) by walking minute by minute
// and reading the wall clock, independently of wallInstant: a minute runs
// when the clock shows a slot for the first time, or when the clock jumps
// forward over a slot not shown before.
func oracleRuns(s Schedule, from, to time.Time) []time.Time {
	loc := s.Location()
	slot := func(w time.Time) bool {
		_, found := slices.BinarySearch(s.times, w.Hour()*60+w.Minute())
		return found && s.days[w.Weekday()]
	}
	// Start a day early to learn the readings already shown.
	start := from.Add(-26 * time.Hour)
	maxWall := wallOf(start.Add(-time.Minute), loc)
	prev := maxWall
	var runs []time.Time
	for t := start; t.Before(to); t = t.Add(time.Minute) {
		w := wallOf(t, loc)
		run := slot(w) && w.After(maxWall)
		for skipped := prev.Add(time.Minute); skipped.Before(w); skipped = skipped.Add(time.Minute) {
			run = run || slot(skipped) && skipped.After(maxWall)
		}
		if run && !t.Before(from) {
			runs = append(runs, t)
		}
		if w.After(maxWall) {
			maxWall = w
		}
		prev = w
	}
	return runs
}

// isJump reports whether t is an instant at which loc's clock jumps forward.
func isJump(t time.Time, loc *time.Location) bool {
	_, before := t.Add(-time.Second).In(loc).Zone()
	_, after := t.In(loc).Zone()
	return after > before
}

func TestRunsProperties(t *testing.T) {
	seed := testSeed(t)
	r := rand.New(rand.NewPCG(seed, seed))
	iterations := 300
	if testing.Short() {
		iterations = 40
	}
	jumps := 0
	defer func() { t.Logf("%d runs at clock jumps", jumps) }()
	for i := 0; i < iterations; i++ {
		zone := propertyZones[r.IntN(len(propertyZones))]
		loc := mustZone(t, zone)
		spec := randomSchedule(r)
		s := mustSchedule(t, spec, zone)
		from := randomNearChange(r, loc)
		to := from.Add(8 * 24 * time.Hour)

		var runs []time.Time
		for _, run := range s.Runs(from, 200) {
			if !run.Before(to) {
				break
			}
			runs = append(runs, run)
		}
		for j, run := range runs {
			if j > 0 && !run.After(runs[j-1]) {
				t.Fatalf("%q in %s from %v: run %d %v not after %v", spec, zone, from, j, run, runs[j-1])
			}
			if !s.Matches(run) && !isJump(run, loc) {
				t.Fatalf("%q in %s from %v: run %v neither matches a slot nor is a clock jump", spec, zone, from, run)
			}
		}
		for _, run := range runs {
			if !s.Matches(run) {
				jumps++
			}
		}
		want := oracleRuns(s, from, to)
		if !slices.EqualFunc(runs, want, time.Time.Equal) {
			t.Fatalf("%q in %s from %v:\n got %v\nwant %v", spec, zone, from, runs, want)
		}
	}
}

func TestIntervalProperties(t *testing.T) {
	seed := testSeed(t)
	r := rand.New(rand.NewPCG(seed, seed))
	for i := 0; i < 200; i++ {
		zone := propertyZones[r.IntN(len(propertyZones))]
		loc := mustZone(t, zone)
		every := time.Duration(1+r.IntN(600)) * time.Minute
		s := Schedule{every: every}.In(loc)
		from := randomNearChange(r, loc).Add(time.Duration(r.IntN(60)) * time.Second)
		runs := s.Runs(from, 50)
		if runs[0].Before(from) || !runs[0].Add(-every).Before(from) {
			t.Fatalf("every %v in %s from %v: first run %v is not the first at or after", every, zone, from, runs[0])
		}
		for j, run := range runs {
			if !s.Matches(run) {
				t.Fatalf("every %v in %s: run %v does not match", every, zone, run)
			}
			if j > 0 && run.Sub(runs[j-1]) != every {
				t.Fatalf("every %v in %s: runs %v and %v are %v apart", every, zone, runs[j-1], run, run.Sub(runs[j-1]))
			}
		}
	}
}

// NextChange must agree with Contains: walking minute by minute, the state
// changes exactly at the instants NextChange reports.
func TestWindowProperties(t *testing.T) {
	seed := testSeed(t)
	r := rand.New(rand.NewPCG(seed, seed))
	for i := 0; i < 40; i++ {
		zone := propertyZones[r.IntN(len(propertyZones))]
		loc := mustZone(t, zone)
		days := strings.Fields(randomSchedule(r))[0]
		a, b := r.IntN(4*60)/15*15, r.IntN(1441)/15*15
		if a == b {
			b = (a + 60) % 1440
		}
		spec := days + " " + formatClock(a) + "-" + formatClock(b)
		w := mustWindow(t, spec, zone)
		from := randomNearChange(r, loc)
		to := from.Add(4 * 24 * time.Hour)

		var walked []time.Time
		state := w.Contains(from)
		for m := from.Add(time.Minute); m.Before(to); m = m.Add(time.Minute) {
			if s := w.Contains(m); s != state {
				walked, state = append(walked, m), s
			}
		}
		var chained []time.Time
		for c := w.NextChange(from); !c.IsZero() && c.Before(to); c = w.NextChange(c) {
			chained = append(chained, c)
		}
		if !slices.EqualFunc(walked, chained, time.Time.Equal) {
			t.Fatalf("%q in %s from %v:\nwalked  %v\nchained %v", spec, zone, from, walked, chained)
		}
	}
}
