package policy

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// Spec is a machine's whole backup policy in its stored, textual form: the
// form the vault keeps and hands to the agent. Compile checks it and turns
// it into the values the other functions of this package take.
type Spec struct {
	Schedule  string        `json:"schedule,omitempty"` // ParseSchedule syntax; empty: no scheduled backups
	Zone      string        `json:"zone,omitempty"`     // IANA zone; empty: UTC
	Retention RetentionSpec `json:"retention"`
	Paths     []string      `json:"paths,omitempty"`    // what `coffer backup` with no PATH backs up
	Excludes  []string      `json:"excludes,omitempty"` // exclude patterns (doc/exclude.md)

	// Bandwidth, in bytes per second (0: unlimited). The work-hours rates
	// apply inside WorkHours (ParseWindow syntax, in Zone), the others
	// outside it (always, without WorkHours).
	UploadLimit       int64  `json:"upload_limit,omitempty"`
	DownloadLimit     int64  `json:"download_limit,omitempty"`
	WorkHours         string `json:"work_hours,omitempty"`
	WorkHoursUpload   int64  `json:"work_hours_upload,omitempty"`
	WorkHoursDownload int64  `json:"work_hours_download,omitempty"`
}

// RetentionSpec is the stored form of a Retention (its zone is the Spec's).
// All counts zero means "keep every point": retention is off.
type RetentionSpec struct {
	KeepLast     int `json:"keep_last,omitempty"`
	Daily        int `json:"keep_daily,omitempty"`
	Weekly       int `json:"keep_weekly,omitempty"`
	Monthly      int `json:"keep_monthly,omitempty"`
	Yearly       int `json:"keep_yearly,omitempty"`
	OnDemandDays int `json:"keep_on_demand_days,omitempty"`
}

// IsZero reports whether no retention rule is set (retention is off).
func (r RetentionSpec) IsZero() bool { return r == RetentionSpec{} }

// Compiled is a checked Spec.
type Compiled struct {
	Spec      Spec
	Schedule  Schedule // in the zone; zero: no scheduled backups
	Retention Retention
	// RetentionOn is false when the spec sets no retention rule: then the
	// vault keeps every point.
	RetentionOn bool
	Upload      Throttle
	Download    Throttle
}

// Limits of a Spec's lists.
const (
	MaxPaths    = 1000
	MaxExcludes = 10000
)

// Compile checks every part of s and reports all mistakes at once.
func (s Spec) Compile() (Compiled, error) {
	c := Compiled{Spec: s}
	var errs []error
	zone := s.Zone
	if zone == "" {
		zone = "UTC"
	}
	loc, err := LoadZone(zone)
	if err != nil {
		errs = append(errs, err)
		loc = nil
	}
	if s.Schedule != "" {
		sc, err := ParseSchedule(s.Schedule)
		if err != nil {
			errs = append(errs, err)
		}
		c.Schedule = sc.In(loc)
	}
	rs := s.Retention
	c.Retention = Retention{KeepLast: rs.KeepLast, Daily: rs.Daily, Weekly: rs.Weekly, Monthly: rs.Monthly,
		Yearly: rs.Yearly, OnDemandDays: rs.OnDemandDays, Location: loc}
	if !rs.IsZero() {
		c.RetentionOn = true
		if err := c.Retention.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(s.Paths) > MaxPaths {
		errs = append(errs, fmt.Errorf("paths: %d given, at most %d", len(s.Paths), MaxPaths))
	}
	for _, p := range s.Paths {
		if !absPath(p) {
			errs = append(errs, fmt.Errorf("path %q: must be absolute (e.g. /home or C:\\Users)", p))
		}
	}
	if len(s.Excludes) > MaxExcludes {
		errs = append(errs, fmt.Errorf("excludes: %d given, at most %d", len(s.Excludes), MaxExcludes))
	}
	for _, x := range s.Excludes {
		if strings.TrimSpace(x) == "" || strings.ContainsAny(x, "\n\r\x00") {
			errs = append(errs, fmt.Errorf("exclude pattern %q: empty or has a line break", x))
		}
	}
	for _, r := range []struct {
		name string
		v    int64
	}{{"upload limit", s.UploadLimit}, {"download limit", s.DownloadLimit},
		{"work-hours upload limit", s.WorkHoursUpload}, {"work-hours download limit", s.WorkHoursDownload}} {
		if r.v < 0 {
			errs = append(errs, fmt.Errorf("%s %d: must be 0 (unlimited) or more bytes per second", r.name, r.v))
		}
	}
	var w Window
	if s.WorkHours != "" {
		w, err = ParseWindow(s.WorkHours)
		if err != nil {
			errs = append(errs, err)
		}
		w = w.In(loc)
	} else if s.WorkHoursUpload != 0 || s.WorkHoursDownload != 0 {
		errs = append(errs, errors.New("work-hours rates need work hours (e.g. \"mon-fri 09:00-18:00\")"))
	}
	c.Upload = Throttle{Window: w, InWindow: s.WorkHoursUpload, Outside: s.UploadLimit}
	c.Download = Throttle{Window: w, InWindow: s.WorkHoursDownload, Outside: s.DownloadLimit}
	if err := errors.Join(errs...); err != nil {
		return Compiled{}, fmt.Errorf("policy: %w", err)
	}
	return c, nil
}

// absPath accepts absolute paths of Unix and Windows, whatever this
// machine runs: the vault checks policies for machines of every kind.
func absPath(p string) bool {
	if path.IsAbs(p) {
		return true
	}
	return len(p) >= 3 && (p[0] >= 'a' && p[0] <= 'z' || p[0] >= 'A' && p[0] <= 'Z') && p[1] == ':' && (p[2] == '\\' || p[2] == '/')
}
