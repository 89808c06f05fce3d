// Command summarize turns the raw per-run CSV files written by bench/run.sh into
// the Markdown report: per scenario a tool × step table of medians (wall s /
// CPU s / peak RSS MiB, repository size and growth, restore verification), the
// per-round wall times, paired ratios peer ÷ reference tool computed round by
// round, and the project's targets with met / missed.
//
//	summarize -runs runs.csv -verify verify.csv [-meta meta.txt] [-floor floor.csv] [-ref coffer]
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	if err := summarize(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "summarize: %v\n", err)
		os.Exit(1)
	}
}

func summarize(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("summarize", flag.ContinueOnError)
	runsPath := fs.String("runs", "", "runs.csv written by bench/run.sh")
	verifyPath := fs.String("verify", "", "verify.csv written by bench/run.sh (optional)")
	metaPath := fs.String("meta", "", "meta.txt written by bench/run.sh (optional)")
	floorPath := fs.String("floor", "", "floor.csv written by bench/run.sh (optional)")
	ref := fs.String("ref", "coffer", "reference tool of the ratio table")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("flags: %w", err)
	}
	if *runsPath == "" {
		return fmt.Errorf("flags: -runs is required")
	}
	runs, err := parseFile(*runsPath, parseRuns)
	if err != nil {
		return err
	}
	var checks []check
	if *verifyPath != "" {
		if checks, err = parseFile(*verifyPath, parseChecks); err != nil {
			return err
		}
	}
	var meta [][2]string
	if *metaPath != "" {
		if meta, err = readMeta(*metaPath); err != nil {
			return err
		}
	}
	var floors []floorStep
	if *floorPath != "" {
		if floors, err = parseFile(*floorPath, parseFloors); err != nil {
			return err
		}
	}
	bw := bufio.NewWriter(w)
	report(bw, newTable(runs, checks), meta, floors, *ref)
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

func parseFile[T any](path string, parse func(io.Reader) ([]T, error)) ([]T, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	defer f.Close()
	v, err := parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// readMeta reads key=value lines, keeping their order.
func readMeta(path string) ([][2]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read meta: %w", err)
	}
	var out [][2]string
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			out = append(out, [2]string{k, v})
		}
	}
	return out, nil
}
