package main

import (
	"fmt"
	"io"
	"math"
	"strings"
)

const mb = 1e6

func wallOf(r run) float64  { return r.wall }
func cpuOf(r run) float64   { return r.cpu }
func rssOf(r run) float64   { return r.rssKiB }
func repoOf(r run) float64  { return r.repo }
func stateOf(r run) float64 { return r.state }

// secs formats seconds: two decimals below 2 s, one above.
func secs(x float64) string {
	if x < 2 {
		return fmt.Sprintf("%.2f", x)
	}
	return fmt.Sprintf("%.1f", x)
}

// mbs formats bytes as MB (10^6): no decimals from 100 MB, one below.
func mbs(b float64) string {
	if math.Abs(b) >= 100*mb {
		return fmt.Sprintf("%.0f", b/mb)
	}
	return fmt.Sprintf("%.1f", b/mb)
}

func ratio(x float64) string { return fmt.Sprintf("%.2f", x) }

func report(w io.Writer, t *table, meta [][2]string, floors []floorStep, ref string) {
	fmt.Fprintf(w, "# Benchmark results\n\n")
	if len(meta) > 0 {
		for _, kv := range meta {
			fmt.Fprintf(w, "- %s: %s\n", kv[0], kv[1])
		}
		fmt.Fprintln(w)
	}
	for _, s := range t.scens {
		scenarioTable(w, t, s)
	}
	floorTable(w, t, floors, ref)
	spreadTable(w, t)
	ratioTable(w, t, ref)
	targetTable(w, t, ref)
}

// scenarioTable prints medians per tool and step for one scenario.
func scenarioTable(w io.Writer, t *table, s string) {
	steps := t.steps[s]
	fmt.Fprintf(w, "## Scenario %s\n\nMedians over rounds; cells are `wall s / CPU s / peak RSS MiB`; MB = 10^6 bytes.\n\n", s)
	head := []string{"tool", "runs"}
	head = append(head, steps...)
	head = append(head, "repo after A MB", "growth MB", "client state MB")
	hasChecks := len(t.checks[s]) > 0
	if hasChecks {
		head = append(head, "verify (content/meta/one)")
	}
	row(w, head...)
	row(w, strings.Split(strings.Repeat("---,", len(head)), ",")[:len(head)]...)
	for _, tool := range t.tools {
		n := 0
		cells := []string{tool, ""}
		for _, st := range steps {
			if !t.has(s, tool, st) {
				cells = append(cells, "—")
				continue
			}
			ws := t.values(s, tool, st, wallOf)
			n = max(n, len(ws))
			cells = append(cells, fmt.Sprintf("%s / %s / %.0f", secs(median(ws)),
				secs(median(t.values(s, tool, st, cpuOf))), median(t.values(s, tool, st, rssOf))/1024))
		}
		if n == 0 {
			continue
		}
		cells[1] = fmt.Sprint(n)
		cells = append(cells, mbs(median(t.values(s, tool, "backup_A", repoOf))))
		var g []float64
		for _, v := range t.growth(s, tool) {
			g = append(g, v)
		}
		cells = append(cells, cellOr(len(g) > 0, func() string { return mbs(median(g)) }))
		last := steps[len(steps)-1]
		for i := len(steps) - 1; i >= 0; i-- {
			if strings.HasPrefix(steps[i], "backup") {
				last = steps[i]
				break
			}
		}
		cells = append(cells, mbs(median(t.values(s, tool, last, stateOf))))
		if hasChecks {
			cells = append(cells, verifyCell(t.checks[s][tool]))
		}
		row(w, cells...)
	}
	fmt.Fprintln(w)
}

// verifyCell shows the worst round: most content diffs, most metadata diffs,
// and FAIL if any one-file restore failed.
func verifyCell(cs []check) string {
	if len(cs) == 0 {
		return "—"
	}
	c, m, one := 0, 0, "ok"
	for _, x := range cs {
		c, m = max(c, x.content), max(m, x.meta)
		if x.one != "ok" {
			one = x.one
		}
	}
	return fmt.Sprintf("%d/%d/%s", c, m, one)
}

func cellOr(ok bool, f func() string) string {
	if !ok {
		return "—"
	}
	return f()
}

// spreadTable prints every round's wall time, to show the noise.
func spreadTable(w io.Writer, t *table) {
	fmt.Fprintf(w, "## Wall seconds per round\n\n")
	row(w, "scenario", "tool", "step", "rounds 1..n")
	row(w, "---", "---", "---", "---")
	for _, s := range t.scens {
		for _, tool := range t.tools {
			for _, st := range t.steps[s] {
				if !t.has(s, tool, st) {
					continue
				}
				var parts []string
				for _, v := range t.values(s, tool, st, wallOf) {
					parts = append(parts, secs(v))
				}
				row(w, s, tool, st, strings.Join(parts, " "))
			}
		}
	}
	fmt.Fprintln(w)
}

// ratioTable prints peer ÷ ref per step, each the median of per-round ratios.
func ratioTable(w io.Writer, t *table, ref string) {
	var peers []string
	for _, tool := range t.tools {
		if tool != ref {
			peers = append(peers, tool)
		}
	}
	if len(peers) == 0 {
		return
	}
	fmt.Fprintf(w, "## Paired ratios: peer ÷ %s\n\n", ref)
	fmt.Fprintf(w, "Each cell is the median over rounds of the per-round ratio (the tools ran one after the\n"+
		"other in every round, so each pair shares a time window). Above 1: %s is faster\n"+
		"(or smaller); below 1: the peer is.\n\n", ref)
	head := []string{"scenario", "step"}
	for _, p := range peers {
		head = append(head, p+" wall", p+" CPU", p+" RSS")
	}
	row(w, head...)
	row(w, strings.Split(strings.Repeat("---,", len(head)), ",")[:len(head)]...)
	for _, s := range t.scens {
		for _, st := range t.steps[s] {
			cells := []string{s, st}
			any := false
			for _, p := range peers {
				for _, f := range []func(run) float64{wallOf, cpuOf, rssOf} {
					r, _, ok := t.pairedRatio(s, st, p, ref, f)
					any = any || ok
					cells = append(cells, cellOr(ok, func() string { return ratio(r) }))
				}
			}
			if any {
				row(w, cells...)
			}
		}
		cells := []string{s, "repo after A"}
		any := false
		for _, p := range peers {
			r, _, ok := t.pairedRatio(s, "backup_A", p, ref, repoOf)
			any = any || ok
			cells = append(cells, cellOr(ok, func() string { return ratio(r) }), "", "")
		}
		if any {
			row(w, cells...)
		}
		cells = []string{s, "growth"}
		any = false
		gr := t.growth(s, ref)
		for _, p := range peers {
			gp := t.growth(s, p)
			var rs []float64
			for rd, v := range gp {
				if b, ok := gr[rd]; ok && b > 0 {
					rs = append(rs, v/b)
				}
			}
			any = any || len(rs) > 0
			cells = append(cells, cellOr(len(rs) > 0, func() string { return ratio(median(rs)) }), "", "")
		}
		if any {
			row(w, cells...)
		}
	}
	fmt.Fprintln(w)
}

func row(w io.Writer, cells ...string) {
	fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
}
