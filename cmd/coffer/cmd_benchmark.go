package main

import (
	"crypto/rand"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/coffer-backup/coffer/internal/throughput"
	"github.com/spf13/cobra"
)

func newBenchmarkCmd(g *globals) *cobra.Command {
	var dataFile, dir string
	var seconds float64
	var noStorage bool
	cmd := &cobra.Command{
		Use:   "benchmark",
		Short: "Measure this machine's chunking, hashing, compression, encryption and storage speed",
		Long: `Measure, on one core, each stage of Coffer's backup pipeline — chunking,
hashing, zstd at every level (with its ratio), encryption, decryption — and
the write and read speed of the vault's disk, then suggest a --compression
setting. Each figure is shown beside the same stage on the reference machine
(a 2-core AMD EPYC virtual machine).

Use --data-file with a sample of your own data: generated text flatters or
harms compression depending on what you back up.

Examples:
  coffer benchmark
  coffer benchmark --data-file /var/lib/postgresql/base/16384/1259 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := throughput.Options{Duration: time.Duration(seconds * float64(time.Second)), Rand: rand.Reader}
			if dataFile != "" {
				b, err := os.ReadFile(dataFile)
				if err != nil {
					return usageError{fmt.Errorf("data file: %w", err)}
				}
				if len(b) == 0 {
					return usageError{fmt.Errorf("data file %s is empty", dataFile)}
				}
				if len(b) > 256<<20 {
					b = b[:256<<20]
				}
				opts.Data = b
			}
			if !noStorage {
				if dir == "" {
					v, err := g.vaultDir()
					if err != nil {
						return err
					}
					dir = v
				}
				opts.Dir = dir
			}
			if !g.quiet && !g.json {
				fmt.Fprintln(g.stderr, "measuring; this takes about ten seconds…")
			}
			res, err := throughput.Run(cmd.Context(), opts)
			if err != nil {
				return err
			}
			level, why := throughput.Suggest(res)
			if g.json {
				return writeJSON(g.stdout, map[string]any{"results": res, "suggested_compression": level, "why": why})
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "STAGE\tMB/s\tRATIO\tREFERENCE\t")
			for _, r := range res {
				ratio := ""
				if r.Ratio > 0 {
					ratio = fmt.Sprintf("%.2f", r.Ratio)
				}
				ref := ""
				if r.Reference > 0 {
					ref = fmt.Sprintf("%.0f (%.0f%%)", r.Reference, 100*r.MBps/r.Reference)
				}
				fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t\n", r.Stage, r.MBps, ratio, ref)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "\nsuggested: --compression %s (%s)\n", level, why)
			return nil
		},
	}
	cmd.Flags().StringVar(&dataFile, "data-file", "", "measure on the first 256 MiB of FILE instead of generated text")
	cmd.Flags().StringVar(&dir, "dir", "", "directory for the storage test (default: the embedded vault's)")
	cmd.Flags().BoolVar(&noStorage, "no-storage", false, "skip the storage test")
	cmd.Flags().Float64Var(&seconds, "seconds", 1, "seconds per stage")
	return cmd
}
