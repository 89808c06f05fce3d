package vaulttest

import (
	"errors"
	"slices"
	"time"

	"github.com/coffer-backup/coffer/internal/policy"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

func (f *fixture) info(v vaultapi.Vault) vaultapi.Info {
	f.t.Helper()
	i, err := v.Info(f.ctx)
	if err != nil {
		f.t.Fatalf("Info: %v", err)
	}
	return i
}

func (f *fixture) setPolicy(machine vaultapi.Info, s policy.Spec) {
	f.t.Helper()
	if f.SetPolicy == nil {
		f.t.Fatal("the harness has no SetPolicy: every vault must let its operator set policies")
	}
	if err := f.SetPolicy(machine, s); err != nil {
		f.t.Fatalf("SetPolicy(%q, %+v): %v", machine.MachineName, s, err)
	}
}

func (f *fixture) policy(v vaultapi.Vault) vaultapi.Policy {
	f.t.Helper()
	p, err := v.Policy(f.ctx)
	if err != nil {
		f.t.Fatalf("Policy: %v", err)
	}
	return p
}

func samePolicy(a, b policy.Spec) bool {
	return a.Schedule == b.Schedule && a.Zone == b.Zone && a.Retention == b.Retention &&
		slices.Equal(a.Paths, b.Paths) && slices.Equal(a.Excludes, b.Excludes) &&
		a.UploadLimit == b.UploadLimit && a.DownloadLimit == b.DownloadLimit && a.WorkHours == b.WorkHours &&
		a.WorkHoursUpload == b.WorkHoursUpload && a.WorkHoursDownload == b.WorkHoursDownload
}

// testPolicy: a machine reads its own policy, else the vault-wide default,
// else none; what the operator set comes back field for field.
func testPolicy(f *fixture) {
	a, b := f.info(f.A), f.info(f.B)
	if p := f.policy(f.A); p.Source != vaultapi.PolicyNone || p.Schedule != "" || !p.Retention.IsZero() {
		f.t.Fatalf("Policy before any is set: %+v, want source %q and nothing else", p, vaultapi.PolicyNone)
	}
	def := policy.Spec{Schedule: "daily 02:00", Zone: "Europe/Berlin",
		Retention: policy.RetentionSpec{KeepLast: 3, Daily: 14, Weekly: 8, Monthly: 12, Yearly: 5, OnDemandDays: 7}}
	f.setPolicy(vaultapi.Info{}, def)
	for _, v := range []vaultapi.Vault{f.A, f.B} {
		p := f.policy(v)
		if p.Source != vaultapi.PolicyDefault || !samePolicy(p.Spec, def) {
			f.t.Fatalf("Policy with a default: %+v, want the default %+v", p, def)
		}
	}
	own := policy.Spec{Schedule: "mon-fri 02:00,13:00", Zone: "America/New_York",
		Retention: policy.RetentionSpec{Daily: 9999, Yearly: 99}, Paths: []string{"/home", "/etc"},
		Excludes: []string{"*.tmp", "node_modules/"}, UploadLimit: 8 << 20, DownloadLimit: 1 << 20,
		WorkHours: "mon-fri 09:00-18:00", WorkHoursUpload: 4 << 20, WorkHoursDownload: 512 << 10}
	f.setPolicy(a, own)
	p := f.policy(f.A)
	if p.Source != vaultapi.PolicyMachine || !samePolicy(p.Spec, own) {
		f.t.Fatalf("Policy of A: %+v, want its own %+v", p, own)
	}
	if d := f.Now().Sub(p.Updated); p.Updated.IsZero() || d < 0 || d > time.Second {
		f.t.Fatalf("Policy of A updated %v, want the vault's clock %v", p.Updated, f.Now())
	}
	if p := f.policy(f.B); p.Source != vaultapi.PolicyDefault || !samePolicy(p.Spec, def) {
		f.t.Fatalf("Policy of B after A's was set: %+v, want the default", p)
	}
	// A change is seen at once.
	own.Schedule = "every 6h"
	f.setPolicy(a, own)
	if p := f.policy(f.A); p.Schedule != "every 6h" {
		f.t.Fatalf("Policy of A after a change: schedule %q, want every 6h", p.Schedule)
	}
	_ = b
}

// testPolicyRefused: the vault refuses a bad policy and keeps the old one.
func testPolicyRefused(f *fixture) {
	a := f.info(f.A)
	good := policy.Spec{Schedule: "daily 02:00", Zone: "UTC", Retention: policy.RetentionSpec{KeepLast: 1}}
	f.setPolicy(a, good)
	for _, bad := range []policy.Spec{
		{Schedule: "daly 02:00"},
		{Zone: "Mars/Olympus"},
		{Zone: "Local"},
		{Retention: policy.RetentionSpec{Daily: 10000}},
		{Retention: policy.RetentionSpec{OnDemandDays: 3}}, // keeps no scheduled point
		{Paths: []string{"relative/path"}},
		{WorkHoursUpload: 1 << 20}, // no work hours
		{WorkHours: "mon-fri 25:00-26:00"},
		{UploadLimit: -1},
	} {
		err := f.SetPolicy(a, bad)
		if !errors.Is(err, vaultapi.ErrBadRequest) {
			f.t.Errorf("SetPolicy(%+v): %v, want ErrBadRequest", bad, err)
		}
	}
	if p := f.policy(f.A); !samePolicy(p.Spec, good) {
		f.t.Fatalf("Policy after refused changes: %+v, want %+v", p.Spec, good)
	}
}

// testJobs: reports replace the earlier report of a job; jobs are listed
// newest first, stamped with the vault's clock, and are the machine's own.
func testJobs(f *fixture) {
	a := f.info(f.A)
	start := time.Date(2027, 3, 14, 6, 59, 0, 0, time.UTC)
	j1 := vaultapi.Job{ID: "job-1", Trigger: vaultapi.TriggerCatchUp, Status: vaultapi.StatusRunning, Started: start}
	if err := f.A.ReportJob(f.ctx, j1); err != nil {
		f.t.Fatalf("ReportJob(running): %v", err)
	}
	f.Advance(time.Minute)
	j1.Status, j1.Ended, j1.Point = vaultapi.StatusPartial, start.Add(time.Minute), "p1"
	j1.Files, j1.Bytes, j1.BytesAdded, j1.Errors, j1.Message = 10, 1000, 100, 1, "1 file skipped"
	if err := f.A.ReportJob(f.ctx, j1); err != nil {
		f.t.Fatalf("ReportJob(partial): %v", err)
	}
	j2 := vaultapi.Job{ID: "job-2", Trigger: vaultapi.TriggerManual, Status: vaultapi.StatusFailed,
		Started: start.Add(time.Hour), Ended: start.Add(time.Hour + time.Second), Message: "vault unreachable"}
	if err := f.A.ReportJob(f.ctx, j2); err != nil {
		f.t.Fatalf("ReportJob(failed): %v", err)
	}
	js, err := f.A.Jobs(f.ctx)
	if err != nil {
		f.t.Fatalf("Jobs: %v", err)
	}
	if len(js) != 2 || js[0].ID != "job-2" || js[1].ID != "job-1" {
		f.t.Fatalf("Jobs: %+v, want job-2 then job-1", js)
	}
	g := js[1]
	if g.Status != vaultapi.StatusPartial || !g.Started.Equal(start) || !g.Ended.Equal(j1.Ended) || g.Point != "p1" ||
		g.Files != 10 || g.Bytes != 1000 || g.BytesAdded != 100 || g.Errors != 1 || g.Message != j1.Message ||
		g.Trigger != vaultapi.TriggerCatchUp || g.Machine != a.MachineID {
		f.t.Fatalf("Jobs[1]: %+v, want the last report of %+v on machine %s", g, j1, a.MachineID)
	}
	if d := f.Now().Sub(g.Reported); d < 0 || d > time.Second {
		f.t.Fatalf("job reported at %v, want the vault's clock %v", g.Reported, f.Now())
	}
	if js, err := f.B.Jobs(f.ctx); err != nil || len(js) != 0 {
		f.t.Fatalf("Jobs of B: %+v, %v; want none", js, err)
	}
}

func testJobsRefused(f *fixture) {
	ok := vaultapi.Job{ID: "j", Trigger: vaultapi.TriggerSchedule, Status: vaultapi.StatusOK, Started: f.Now()}
	for _, mod := range []func(j *vaultapi.Job){
		func(j *vaultapi.Job) { j.ID = "" },
		func(j *vaultapi.Job) { j.ID = "../x" },
		func(j *vaultapi.Job) { j.Trigger = "cron" },
		func(j *vaultapi.Job) { j.Status = "done" },
		func(j *vaultapi.Job) { j.Started = time.Time{} },
		func(j *vaultapi.Job) { j.Message = string(make([]byte, vaultapi.MaxJobMessage+1)) },
	} {
		j := ok
		mod(&j)
		f.wantErr("ReportJob(bad job)", f.A.ReportJob(f.ctx, j), vaultapi.ErrBadRequest)
	}
	if js, err := f.A.Jobs(f.ctx); err != nil || len(js) != 0 {
		f.t.Fatalf("Jobs after refused reports: %+v, %v", js, err)
	}
}

func pointIDs(ps []vaultapi.Point) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.ID
	}
	return out
}

func (f *fixture) deleted(v vaultapi.Vault) []vaultapi.Point {
	f.t.Helper()
	ps, err := v.DeletedPoints(f.ctx)
	if err != nil {
		f.t.Fatalf("DeletedPoints: %v", err)
	}
	return ps
}

// testRetentionSoftDelete: the vault enforces retention after each commit,
// on its clock; points no rule keeps are soft-deleted (hidden, listed as
// deleted), an operator can undelete them within DeleteGrace, and later
// they are purged.
func testRetentionSoftDelete(f *fixture) {
	a := f.info(f.A)
	f.setPolicy(a, policy.Spec{Zone: "UTC", Retention: policy.RetentionSpec{KeepLast: 2}})
	var ps []vaultapi.Point
	var when []time.Time
	for range 4 {
		f.Advance(time.Hour)
		ps = append(ps, f.backup(f.A, f.pack(vaultapi.KindInfo, 1, 100)))
		when = append(when, f.Now())
	}
	f.backup(f.B, f.pack(vaultapi.KindInfo, 1, 100)) // B has no retention of its own: keeps all
	f.backup(f.B, f.pack(vaultapi.KindInfo, 1, 100))
	f.backup(f.B, f.pack(vaultapi.KindInfo, 1, 100))
	if got := pointIDs(f.points(f.A)); !slices.Equal(got, pointIDs(ps[2:])) {
		f.t.Fatalf("Points after 4 commits with keep-last 2: %v, want %v", got, pointIDs(ps[2:]))
	}
	del := f.deleted(f.A)
	if !slices.Equal(pointIDs(del), pointIDs(ps[:2])) {
		f.t.Fatalf("DeletedPoints: %v, want %v", pointIDs(del), pointIDs(ps[:2]))
	}
	for i, p := range del {
		if d := when[i+2].Sub(p.Deleted); d < 0 || d >= time.Millisecond {
			f.t.Fatalf("point %d deleted at %v, want the vault's clock at the commit that deleted it, %v", i, p.Deleted, when[i+2])
		}
	}
	_, err := f.A.Point(f.ctx, ps[0].ID)
	f.wantErr("Point(deleted)", err, vaultapi.ErrNotFound)
	if n := len(f.points(f.B)); n != 3 {
		f.t.Fatalf("B has %d points, want 3 (A's retention is A's)", n)
	}
	if d := f.deleted(f.B); len(d) != 0 {
		f.t.Fatalf("B lists deleted points %v", pointIDs(d))
	}
	// An operator undeletes the oldest.
	if f.Undelete == nil {
		f.t.Fatal("the harness has no Undelete")
	}
	if err := f.Undelete(a, ps[0].ID); err != nil {
		f.t.Fatalf("Undelete: %v", err)
	}
	if got := pointIDs(f.points(f.A)); !slices.Equal(got, []string{ps[0].ID, ps[2].ID, ps[3].ID}) {
		f.t.Fatalf("Points after undelete: %v", got)
	}
	f.wantErr("Undelete(live point)", f.Undelete(a, ps[2].ID), vaultapi.ErrBadRequest)
	// 15 days later, a commit: retention deletes again, and purges the
	// point deleted more than 14 days ago.
	f.Advance(15 * 24 * time.Hour)
	p5 := f.backup(f.A, f.pack(vaultapi.KindInfo, 1, 100))
	if got := pointIDs(f.points(f.A)); !slices.Equal(got, []string{ps[3].ID, p5.ID}) {
		f.t.Fatalf("Points 15 days later: %v, want %v", got, []string{ps[3].ID, p5.ID})
	}
	if got := pointIDs(f.deleted(f.A)); !slices.Equal(got, []string{ps[0].ID, ps[2].ID}) {
		f.t.Fatalf("DeletedPoints 15 days later: %v, want %v (and %s purged)", got, []string{ps[0].ID, ps[2].ID}, ps[1].ID)
	}
	f.wantErr("Undelete(purged)", f.Undelete(a, ps[1].ID), vaultapi.ErrNotFound)
}

// testOnDemand: the on-demand mark of a commit comes back on the point.
func testOnDemand(f *fixture) {
	s := f.begin(f.A)
	m := f.pack(vaultapi.KindInfo, 1, 100)
	f.store(f.A, s.ID, m)
	p, err := f.A.Commit(f.ctx, s.ID, vaultapi.Commit{Info: m.Entries[0].ID, Refs: packIDs(m), OnDemand: true})
	if err != nil {
		f.t.Fatalf("Commit: %v", err)
	}
	if !p.OnDemand {
		f.t.Fatal("Commit(on demand): point not marked on demand")
	}
	if ps := f.points(f.A); len(ps) != 1 || !ps[0].OnDemand {
		f.t.Fatalf("Points: %+v, want one on-demand point", ps)
	}
}
