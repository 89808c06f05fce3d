package policy

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestRetentionValidate(t *testing.T) {
	tests := []struct {
		name string
		r    Retention
		want string // "" for valid
	}{
		{"daily only", Retention{Daily: 7}, ""},
		{"MARS maximums", Retention{KeepLast: 1, Daily: 9999, Weekly: 5163, Monthly: 1188, Yearly: 99, OnDemandDays: 36500}, ""},
		{"nothing kept", Retention{}, "retention: keeps nothing: set at least one of keep-last, keep-daily, keep-weekly, keep-monthly, keep-yearly"},
		{"on-demand only", Retention{OnDemandDays: 30}, "retention: keeps nothing: set at least one of keep-last, keep-daily, keep-weekly, keep-monthly, keep-yearly"},
		{"daily too large", Retention{Daily: 10000}, "retention: keep-daily 10000: must be between 0 and 9999"},
		{"weekly too large", Retention{Weekly: 5164}, "retention: keep-weekly 5164: must be between 0 and 5163"},
		{"monthly too large", Retention{Monthly: 1189}, "retention: keep-monthly 1189: must be between 0 and 1188"},
		{"yearly too large", Retention{Yearly: 100}, "retention: keep-yearly 100: must be between 0 and 99"},
		{"negative", Retention{KeepLast: -1, Daily: 3}, "retention: keep-last -1: must be between 0 and 100000"},
		{"two errors", Retention{Daily: -1, OnDemandDays: -2}, "retention: keep-daily -1: must be between 0 and 9999\nkeep-on-demand-days -2: must be between 0 and 36500"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.r.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("Validate() = %q, want %q", got, tt.want)
			}
		})
	}
}

// kept returns the IDs of the kept points with their reasons, newest first.
func kept(ds []Decision) string {
	var parts []string
	for _, d := range ds {
		if d.Keep {
			parts = append(parts, d.ID+":"+strings.Join(d.Reasons, "+"))
		}
	}
	return strings.Join(parts, " ")
}

func TestApplyRules(t *testing.T) {
	ny := mustZone(t, "America/New_York")
	pts := func(specs ...string) []Point {
		var ps []Point
		for _, s := range specs {
			id, ts, _ := strings.Cut(s, "@")
			onDemand := strings.HasSuffix(id, "!")
			ps = append(ps, Point{ID: strings.TrimSuffix(id, "!"), Time: mustTime(t, ts), OnDemand: onDemand})
		}
		return ps
	}
	tests := []struct {
		name   string
		r      Retention
		points []Point
		now    string
		want   string
	}{
		{"keep-last", Retention{KeepLast: 2},
			pts("a@2027-01-01T00:00:00Z", "c@2027-01-03T00:00:00Z", "b@2027-01-02T00:00:00Z"),
			"2027-01-04T00:00:00Z", "c:last b:last"},
		{"daily keeps the newest of each day that has points", Retention{Daily: 2},
			pts("a@2027-01-01T01:00:00Z", "b@2027-01-01T23:00:00Z", "c@2027-01-05T08:00:00Z", "d@2027-01-05T07:00:00Z"),
			"2027-01-10T00:00:00Z", "c:daily b:daily"},
		{"days are in the policy's zone", Retention{Daily: 2, Location: ny},
			// 03:00Z on Jan 2 is still Jan 1 in New York.
			pts("a@2027-01-01T20:00:00Z", "b@2027-01-02T03:00:00Z", "c@2027-01-02T06:00:00Z"),
			"2027-01-10T00:00:00Z", "c:daily b:daily"},
		{"ISO week 53 of 2026 spans the new year", Retention{Weekly: 2},
			pts("a@2026-12-27T12:00:00Z", "b@2026-12-28T12:00:00Z", "c@2027-01-03T12:00:00Z", "d@2027-01-04T12:00:00Z"),
			"2027-01-10T00:00:00Z", "d:weekly c:weekly"},
		{"monthly and yearly", Retention{Monthly: 2, Yearly: 2},
			pts("a@2026-11-30T12:00:00Z", "b@2026-12-31T12:00:00Z", "c@2027-01-01T12:00:00Z", "d@2027-01-31T12:00:00Z"),
			"2027-02-01T00:00:00Z", "d:monthly+yearly b:monthly+yearly"},
		{"equal times in ID order", Retention{KeepLast: 1},
			pts("z@2027-01-01T00:00:00Z", "y@2027-01-01T00:00:00Z"),
			"2027-01-02T00:00:00Z", "y:last"},
		{"on-demand kept for D calendar days", Retention{KeepLast: 1, OnDemandDays: 7},
			pts("a!@2027-03-01T00:00:00Z", "b!@2027-03-08T05:00:01Z", "c@2027-03-10T00:00:00Z"),
			"2027-03-15T05:00:00Z", "c:last b:on-demand"},
		{"on-demand points count for the other rules too", Retention{Daily: 1},
			pts("a@2027-03-01T02:00:00Z", "b!@2027-03-01T15:00:00Z"),
			"2027-03-02T00:00:00Z", "b:daily"},
		{"zero counts keep nothing", Retention{},
			pts("a@2027-03-01T02:00:00Z"), "2027-03-02T00:00:00Z", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := kept(Apply(tt.r, tt.points, mustTime(t, tt.now)))
			if got != tt.want {
				t.Errorf("kept %q, want %q", got, tt.want)
			}
		})
	}
}

func TestApplyKeepsEveryPointOnce(t *testing.T) {
	points := []Point{{ID: "a", Time: mustTime(t, "2027-01-01T00:00:00Z")}, {ID: "b", Time: mustTime(t, "2027-01-02T00:00:00Z")}}
	ds := Apply(Retention{Daily: 1}, points, mustTime(t, "2027-01-03T00:00:00Z"))
	if len(ds) != 2 || ds[0].ID != "b" || ds[1].ID != "a" || !ds[0].Keep || ds[1].Keep || ds[1].Reasons != nil {
		t.Errorf("Apply = %+v", ds)
	}
	if points[0].ID != "a" {
		t.Error("Apply reordered its input")
	}
}

// series returns n points, step apart, from first.
func series(first time.Time, step time.Duration, n int) []Point {
	ps := make([]Point, n)
	for i := range ps {
		ps[i] = Point{ID: fmt.Sprintf("p%03d", i), Time: first.Add(time.Duration(i) * step)}
	}
	return ps
}

func TestRetentionGolden(t *testing.T) {
	cases := []struct {
		name   string
		r      Retention
		zone   string
		points []Point
		now    string
	}{
		{"every 6h across New York's fall back, 3 daily", Retention{Daily: 3}, "America/New_York",
			series(mustTime(t, "2027-11-06T00:00:00Z"), 6*time.Hour, 12), "2027-11-09T00:00:00Z"},
		{"the same points, 3 daily in UTC", Retention{Daily: 3}, "UTC",
			series(mustTime(t, "2027-11-06T00:00:00Z"), 6*time.Hour, 12), "2027-11-09T00:00:00Z"},
		{"daily points across the 2026/2027 year end: ISO week 53", Retention{KeepLast: 1, Weekly: 3, Monthly: 2, Yearly: 2}, "Europe/Berlin",
			series(mustTime(t, "2026-12-20T01:00:00Z"), 24*time.Hour, 20), "2027-01-09T00:00:00Z"},
		{"leap day 2028", Retention{Daily: 3, Monthly: 2}, "Asia/Tokyo",
			series(mustTime(t, "2028-02-27T10:00:00Z"), 12*time.Hour, 8), "2028-03-02T00:00:00Z"},
		{"Lord Howe's half-hour change", Retention{Daily: 2}, "Australia/Lord_Howe",
			series(mustTime(t, "2027-04-03T12:30:00Z"), 30*time.Minute, 9), "2027-04-05T00:00:00Z"},
		{"on-demand points", Retention{KeepLast: 2, OnDemandDays: 3}, "UTC",
			[]Point{
				{ID: "s1", Time: mustTime(t, "2027-06-01T02:00:00Z")},
				{ID: "od1", Time: mustTime(t, "2027-06-01T12:00:00Z"), OnDemand: true},
				{ID: "s2", Time: mustTime(t, "2027-06-02T02:00:00Z")},
				{ID: "od2", Time: mustTime(t, "2027-06-03T12:00:00Z"), OnDemand: true},
				{ID: "s3", Time: mustTime(t, "2027-06-04T02:00:00Z")},
				{ID: "s4", Time: mustTime(t, "2027-06-05T02:00:00Z")},
			}, "2027-06-05T12:00:00Z"},
	}
	var b strings.Builder
	for _, c := range cases {
		c.r.Location = mustZone(t, c.zone)
		fmt.Fprintf(&b, "== %s: %+v in %s at %s\n", c.name, withoutZone(c.r), c.zone, c.now)
		for _, d := range Apply(c.r, c.points, mustTime(t, c.now)) {
			verdict := "delete"
			if d.Keep {
				verdict = "KEEP  "
			}
			od := ""
			if d.OnDemand {
				od = " on-demand"
			}
			reasons := strings.Join(d.Reasons, ",")
			if reasons == "" {
				reasons = "-"
			}
			fmt.Fprintf(&b, "%s %s %s%s  %s\n", verdict, d.ID, localAndUTC(d.Time, c.r.Location), od, reasons)
		}
		b.WriteString("\n")
	}
	checkGolden(t, "retention", []byte(b.String()))
}

func withoutZone(r Retention) string {
	return fmt.Sprintf("last=%d daily=%d weekly=%d monthly=%d yearly=%d on-demand-days=%d",
		r.KeepLast, r.Daily, r.Weekly, r.Monthly, r.Yearly, r.OnDemandDays)
}

func BenchmarkApply(b *testing.B) {
	points := series(mustTime(b, "2020-01-01T02:00:00Z"), 6*time.Hour, 4*365*5)
	r := Retention{KeepLast: 10, Daily: 30, Weekly: 52, Monthly: 60, Yearly: 10, Location: mustZone(b, "Europe/Berlin")}
	now := mustTime(b, "2025-01-01T00:00:00Z")
	for b.Loop() {
		Apply(r, points, now)
	}
}
