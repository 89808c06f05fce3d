package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// run is one timed step of one tool in one round (one row of runs.csv).
type run struct {
	round       int
	scen, tool  string
	step        string
	wall, cpu   float64 // seconds; cpu = user + sys
	rssKiB      float64
	repo, state float64 // bytes after the step
}

// check is the verification of one scenario's restores (one row of verify.csv).
type check struct {
	round         int
	scen, tool    string
	content, meta int
	one           string
}

// readCSV reads a CSV file with a header and returns its rows as maps keyed by
// column name.
func readCSV(r io.Reader) ([]map[string]string, error) {
	cr := csv.NewReader(r)
	recs, err := cr.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("read csv: %w", err)
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("read csv: no header")
	}
	head := recs[0]
	rows := make([]map[string]string, 0, len(recs)-1)
	for _, rec := range recs[1:] {
		m := make(map[string]string, len(head))
		for i, h := range head {
			if i < len(rec) {
				m[h] = rec[i]
			}
		}
		rows = append(rows, m)
	}
	return rows, nil
}

func num(m map[string]string, key string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(m[key]), 64)
	if err != nil {
		return 0, fmt.Errorf("column %s: %w", key, err)
	}
	return v, nil
}

// parseRuns decodes runs.csv.
func parseRuns(r io.Reader) ([]run, error) {
	rows, err := readCSV(r)
	if err != nil {
		return nil, fmt.Errorf("runs: %w", err)
	}
	out := make([]run, 0, len(rows))
	for i, m := range rows {
		var v [7]float64
		for j, k := range []string{"round", "wall_s", "user_s", "sys_s", "maxrss_kib", "repo_bytes", "state_bytes"} {
			if v[j], err = num(m, k); err != nil {
				return nil, fmt.Errorf("runs row %d: %w", i+2, err)
			}
		}
		out = append(out, run{
			round: int(v[0]), scen: m["scenario"], tool: m["tool"], step: m["step"],
			wall: v[1], cpu: v[2] + v[3], rssKiB: v[4], repo: v[5], state: v[6],
		})
	}
	return out, nil
}

// parseChecks decodes verify.csv.
func parseChecks(r io.Reader) ([]check, error) {
	rows, err := readCSV(r)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	out := make([]check, 0, len(rows))
	for i, m := range rows {
		var v [3]float64
		for j, k := range []string{"round", "content_diffs", "meta_diffs"} {
			if v[j], err = num(m, k); err != nil {
				return nil, fmt.Errorf("verify row %d: %w", i+2, err)
			}
		}
		out = append(out, check{round: int(v[0]), scen: m["scenario"], tool: m["tool"],
			content: int(v[1]), meta: int(v[2]), one: m["one_file"]})
	}
	return out, nil
}

// median of xs (mean of the two middle values for an even count); NaN-free
// input assumed, 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// table indexes runs by scenario, tool, step and round, remembering the order
// in which scenarios, tools and steps first appear.
type table struct {
	scens, tools []string
	steps        map[string][]string // per scenario
	byKey        map[key]map[int]run // per round
	rounds       map[key][]int
	checks       map[string]map[string][]check // scenario -> tool
}

// stepOrder is the order of the steps of run.sh; other steps follow them.
var stepOrder = []string{"init", "backup_A", "backup_A2", "backup_A2_pass", "backup_B", "restore_full", "restore_one"}

func stepRank(s string) int {
	for i, x := range stepOrder {
		if x == s {
			return i
		}
	}
	return len(stepOrder)
}

type key struct{ scen, tool, step string }

func newTable(runs []run, checks []check) *table {
	t := &table{
		steps:  map[string][]string{},
		byKey:  map[key]map[int]run{},
		rounds: map[key][]int{},
		checks: map[string]map[string][]check{},
	}
	seenS, seenT, seenStep := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, r := range runs {
		if !seenS[r.scen] {
			seenS[r.scen] = true
			t.scens = append(t.scens, r.scen)
		}
		if !seenT[r.tool] {
			seenT[r.tool] = true
			t.tools = append(t.tools, r.tool)
		}
		if sk := r.scen + "\x00" + r.step; !seenStep[sk] {
			seenStep[sk] = true
			t.steps[r.scen] = append(t.steps[r.scen], r.step)
		}
		k := key{r.scen, r.tool, r.step}
		if t.byKey[k] == nil {
			t.byKey[k] = map[int]run{}
		}
		if _, dup := t.byKey[k][r.round]; !dup {
			t.rounds[k] = append(t.rounds[k], r.round)
		}
		t.byKey[k][r.round] = r
	}
	for _, st := range t.steps {
		sort.SliceStable(st, func(i, j int) bool { return stepRank(st[i]) < stepRank(st[j]) })
	}
	for _, c := range checks {
		if t.checks[c.scen] == nil {
			t.checks[c.scen] = map[string][]check{}
		}
		t.checks[c.scen][c.tool] = append(t.checks[c.scen][c.tool], c)
	}
	return t
}

// values returns f of every round of (scen, tool, step), in round order.
func (t *table) values(scen, tool, step string, f func(run) float64) []float64 {
	k := key{scen, tool, step}
	var out []float64
	for _, rd := range t.rounds[k] {
		out = append(out, f(t.byKey[k][rd]))
	}
	return out
}

func (t *table) has(scen, tool, step string) bool { return len(t.rounds[key{scen, tool, step}]) > 0 }

// pairedRatio is the median over rounds of f(peer)/f(ref) for rounds where both
// tools have the step; ok is false when there is no such round.
func (t *table) pairedRatio(scen, step, peer, ref string, f func(run) float64) (ratio float64, n int, ok bool) {
	kp, kr := key{scen, peer, step}, key{scen, ref, step}
	var rs []float64
	for _, rd := range t.rounds[kp] {
		a, okp := t.byKey[kp][rd]
		b, okr := t.byKey[kr][rd]
		if !okp || !okr || f(b) == 0 {
			continue
		}
		rs = append(rs, f(a)/f(b))
	}
	if len(rs) == 0 {
		return 0, 0, false
	}
	return median(rs), len(rs), true
}

// growth returns, per round, the repository growth of the last backup step:
// size after backup_B minus size after the backup before it.
func (t *table) growth(scen, tool string) map[int]float64 {
	out := map[int]float64{}
	kb := key{scen, tool, "backup_B"}
	prev := key{scen, tool, "backup_A2"}
	if !t.has(scen, tool, "backup_A2") {
		prev = key{scen, tool, "backup_A"}
	}
	for _, rd := range t.rounds[kb] {
		p, ok := t.byKey[prev][rd]
		if !ok {
			continue
		}
		out[rd] = t.byKey[kb][rd].repo - p.repo
	}
	return out
}
