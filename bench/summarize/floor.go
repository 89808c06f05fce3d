package main

import (
	"fmt"
	"io"
)

// floorStep is one step of bench/floor on one scenario's corpus (one row
// of floor.csv: scenario, then floor's own -csv columns).
type floorStep struct {
	scen, step      string
	files           int
	wall, user, sys float64
}

// parseFloors decodes floor.csv.
func parseFloors(r io.Reader) ([]floorStep, error) {
	rows, err := readCSV(r)
	if err != nil {
		return nil, fmt.Errorf("floor: %w", err)
	}
	out := make([]floorStep, 0, len(rows))
	for i, m := range rows {
		var v [4]float64
		for j, k := range []string{"files", "wall_s", "user_s", "sys_s"} {
			if v[j], err = num(m, k); err != nil {
				return nil, fmt.Errorf("floor row %d: %w", i+2, err)
			}
		}
		out = append(out, floorStep{scen: m["scenario"], step: m["step"], files: int(v[0]), wall: v[1], user: v[2], sys: v[3]})
	}
	return out, nil
}

// floorWork names floor's steps in the report.
var floorWork = map[string]string{
	"read":   "read every file (open, fstat, read, close)",
	"mkdir":  "make the folders",
	"create": "create, write and timestamp every file (openat O_CREAT, pwrite, futimens, close)",
}

// floorTable prints what bench/floor measured, and for each scenario the
// reference tool's full restore beside the kernel's share of it (folders
// and files).
func floorTable(w io.Writer, t *table, floors []floorStep, ref string) {
	if len(floors) == 0 {
		return
	}
	fmt.Fprintf(w, "## Floors\n\n")
	fmt.Fprintf(w, "`bench/floor` on each restored scenario's first corpus, once before the rounds:\n")
	fmt.Fprintf(w, "the kernel's own file work, with no compression, hashing, encryption or vault\n")
	fmt.Fprintf(w, "(two workers; wall s and CPU s = user + system).\n\n")
	row(w, "scenario", "work", "items", "wall s", "CPU s")
	row(w, "---", "---", "---", "---", "---")
	restore := map[string][2]float64{}
	for _, f := range floors {
		work := floorWork[f.step]
		if work == "" {
			work = f.step
		}
		row(w, f.scen, work, fmt.Sprint(f.files), secs(f.wall), secs(f.user+f.sys))
		if f.step == "mkdir" || f.step == "create" {
			r := restore[f.scen]
			restore[f.scen] = [2]float64{r[0] + f.wall, r[1] + f.user + f.sys}
		}
	}
	fmt.Fprintln(w)
	for _, s := range t.scens {
		r, ok := restore[s]
		if !ok || !t.has(s, ref, "restore_full") {
			continue
		}
		fmt.Fprintf(w, "- %s: %s's full restore %s s wall / %s CPU s (medians); the kernel alone making its folders and files %s s / %s CPU s.\n",
			s, ref, secs(median(t.values(s, ref, "restore_full", wallOf))), secs(median(t.values(s, ref, "restore_full", cpuOf))),
			secs(r[0]), secs(r[1]))
	}
	fmt.Fprintln(w)
}
