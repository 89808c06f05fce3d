package main

import (
	"fmt"
	"io"
)

// target is one of the project's performance requirements, checked against
// the run's figures. Kinds:
//
//	speedup: median paired ratio restic ÷ coffer of wall time >= limit
//	under:   coffer's median wall time < limit seconds
//	rss:     coffer's median peak RSS < limit MiB
//	size:    median paired ratio coffer ÷ restic of the repository after A <= limit
//	growth:  median paired ratio coffer ÷ restic of the growth <= limit
type target struct {
	source     string
	what       string
	scen, step string
	kind       string
	limit      float64
}

var targets = []target{
	{"core", "initial backup linux vs restic", "linux", "backup_A", "speedup", 2},
	{"core", "unchanged backup linux", "linux", "backup_A2", "under", 1},
	{"core", "full restore linux vs restic", "linux", "restore_full", "speedup", 2},
	{"core", "repository linux vs restic", "linux", "backup_A", "size", 1.2},
	{"speed", "initial backup linux vs restic", "linux", "backup_A", "speedup", 3},
	{"speed", "unchanged backup linux", "linux", "backup_A2", "under", 0.5},
	{"speed", "changed backup linux -> linux2", "linux", "backup_B", "under", 1},
	{"speed", "full restore linux vs restic", "linux", "restore_full", "speedup", 4},
	{"speed", "one small file restored (linux)", "linux", "restore_one", "under", 0.25},
	{"speed", "peak RSS of the linux backup", "linux", "backup_A", "rss", 100},
	{"speed", "repository linux vs restic", "linux", "backup_A", "size", 1},
	{"speed", "growth pgdata -> pgdata2 vs restic", "pg", "backup_B", "growth", 1},
}

// evaluate returns the measured value as text and whether the target is met;
// ok is false when the run lacks the figures.
func (tg target) evaluate(t *table) (measured string, met bool, ok bool) {
	const ref, peer = "coffer", "restic"
	switch tg.kind {
	case "speedup":
		r, _, ok := t.pairedRatio(tg.scen, tg.step, peer, ref, wallOf)
		if !ok {
			return "", false, false
		}
		return fmt.Sprintf("%.2f× (coffer %s s, restic %s s)", r,
			secs(median(t.values(tg.scen, ref, tg.step, wallOf))),
			secs(median(t.values(tg.scen, peer, tg.step, wallOf)))), r >= tg.limit, true
	case "under":
		if !t.has(tg.scen, ref, tg.step) {
			return "", false, false
		}
		v := median(t.values(tg.scen, ref, tg.step, wallOf))
		return secs(v) + " s", v < tg.limit, true
	case "rss":
		if !t.has(tg.scen, ref, tg.step) {
			return "", false, false
		}
		v := median(t.values(tg.scen, ref, tg.step, rssOf)) / 1024
		return fmt.Sprintf("%.0f MiB", v), v < tg.limit, true
	case "size":
		r, _, ok := t.pairedRatio(tg.scen, tg.step, ref, peer, repoOf)
		if !ok {
			return "", false, false
		}
		return fmt.Sprintf("%.2f× (coffer %s MB, restic %s MB)", r,
			mbs(median(t.values(tg.scen, ref, tg.step, repoOf))),
			mbs(median(t.values(tg.scen, peer, tg.step, repoOf)))), r <= tg.limit, true
	case "growth":
		gc, gr := t.growth(tg.scen, ref), t.growth(tg.scen, peer)
		var rs, cs, ps []float64
		for rd, c := range gc {
			if p, ok := gr[rd]; ok && p > 0 {
				rs, cs, ps = append(rs, c/p), append(cs, c), append(ps, p)
			}
		}
		if len(rs) == 0 {
			return "", false, false
		}
		r := median(rs)
		return fmt.Sprintf("%.2f× (coffer %s MB, restic %s MB)", r, mbs(median(cs)), mbs(median(ps))),
			r <= tg.limit, true
	}
	return "", false, false
}

func (tg target) required() string {
	switch tg.kind {
	case "speedup":
		return fmt.Sprintf(">= %g× faster", tg.limit)
	case "under":
		return fmt.Sprintf("< %g s", tg.limit)
	case "rss":
		return fmt.Sprintf("< %g MiB", tg.limit)
	default:
		return fmt.Sprintf("<= %g× restic", tg.limit)
	}
}

// targetTable prints the targets the run has figures for (only when the
// reference tool is coffer).
func targetTable(w io.Writer, t *table, ref string) {
	if ref != "coffer" {
		return
	}
	header := false
	for _, tg := range targets {
		m, met, ok := tg.evaluate(t)
		if !ok {
			continue
		}
		if !header {
			fmt.Fprintf(w, "## Targets\n\n\"core\": the core issue's done-when; \"speed\": the speed issue's targets.\n\n")
			row(w, "set", "target", "required", "measured", "met")
			row(w, "---", "---", "---", "---", "---")
			header = true
		}
		verdict := "yes"
		if !met {
			verdict = "**no**"
		}
		row(w, tg.source, tg.what, tg.required(), m, verdict)
	}
	if header {
		fmt.Fprintln(w)
	}
}
