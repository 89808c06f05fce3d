package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/coffer-backup/coffer/internal/format"
	"github.com/coffer-backup/coffer/internal/repo"
	"github.com/coffer-backup/coffer/internal/restorer"
	"github.com/coffer-backup/coffer/internal/vaultapi"
	"github.com/spf13/cobra"
)

// pointRoot resolves a point reference to the point and its root tree.
func pointRoot(ctx context.Context, r *repo.Repo, ref string) (vaultapi.Point, vaultapi.ID, error) {
	p, err := repo.ResolvePoint(ctx, r.Vault, ref)
	if err != nil {
		return p, vaultapi.ID{}, err
	}
	m, err := r.Manifest(ctx, p)
	if err != nil {
		return p, vaultapi.ID{}, err
	}
	return p, m.Root, nil
}

func newCatCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "cat POINT PATH",
		Short: "Write one file of a recovery point to standard output",
		Long: `Write one file of a recovery point to standard output, as it was backed
up (holes of sparse files as zeros). POINT is an ID prefix or "latest";
PATH is the file's absolute path as backed up.

Example:
  coffer cat latest /etc/fstab | diff - /etc/fstab`,
		Args: argCount(2, 2, "cat takes POINT and PATH (for example: coffer cat latest /etc/hosts)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, s, err := g.openRepo(ctx, false)
			if err != nil {
				return err
			}
			defer s.close()
			_, root, err := pointRoot(ctx, r, args[0])
			if err != nil {
				return err
			}
			n, err := r.Lookup(ctx, root, args[1])
			if err != nil {
				return err
			}
			f, err := r.OpenFile(ctx, r.NewChunkCache(64<<20, 4), n)
			if err != nil {
				return err
			}
			w := bufio.NewWriterSize(g.stdout, 1<<20)
			if _, err := io.Copy(w, io.NewSectionReader(f, 0, f.Size())); err != nil {
				return err
			}
			return w.Flush()
		},
	}
}

func newDumpCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "dump POINT [PATH]",
		Short: "Stream a recovery point, or a folder of it, as a tar archive",
		Long: `Stream a recovery point, or the file or folder PATH of it, to standard
output as a POSIX (PAX) tar archive. Names are the paths as backed up
without the leading slash; owners, modes, nanosecond times, symlinks, hard
links, device nodes, extended attributes and ACLs (SCHILY.xattr records)
are kept. Holes of sparse files are written as zeros.

Examples:
  coffer dump latest /home/ana > ana.tar
  coffer dump 3f2a | tar -tv`,
		Args: argCount(1, 2, "dump takes POINT and an optional PATH (for example: coffer dump latest /home > home.tar)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, s, err := g.openRepo(ctx, false)
			if err != nil {
				return err
			}
			defer s.close()
			_, root, err := pointRoot(ctx, r, args[0])
			if err != nil {
				return err
			}
			p := "/"
			if len(args) == 2 {
				p = path.Clean("/" + args[1])
			}
			n, err := r.Lookup(ctx, root, p)
			if err != nil {
				return err
			}
			w := bufio.NewWriterSize(g.stdout, 1<<20)
			if err := restorer.WriteTar(ctx, r, r.NewChunkCache(64<<20, 4), n, p, w); err != nil {
				return err
			}
			return w.Flush()
		},
	}
}

func newFindCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "find PATTERN",
		Short: "Find files by name across all recovery points",
		Long: `Find entries whose name matches PATTERN (a glob: *, ?, [a-z]) in every
recovery point, and say which points hold each. A PATTERN holding a slash
is matched against the whole path instead (for example /home/*/notes.txt).

Examples:
  coffer find '*.odt'
  coffer find 'report-2026*' --json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{fmt.Errorf("find takes one PATTERN (for example: coffer find '*.odt')")}
			}
			if _, err := path.Match(args[0], ""); err != nil {
				return usageError{fmt.Errorf("find: bad pattern %q: %w", args[0], err)}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, s, err := g.openRepo(ctx, false)
			if err != nil {
				return err
			}
			defer s.close()
			points, err := r.Vault.Points(ctx)
			if err != nil {
				return err
			}
			pat := args[0]
			whole := strings.Contains(pat, "/")
			type hit struct {
				Path   string    `json:"path"`
				Type   string    `json:"type"`
				Size   uint64    `json:"size"`
				MTime  time.Time `json:"mtime"`
				Points []string  `json:"points"`
			}
			hits := map[string]*hit{}
			var order []string
			for _, p := range points {
				m, err := r.Manifest(ctx, p)
				if err != nil {
					return err
				}
				top := &format.Node{Type: format.TypeDir, Subtree: m.Root}
				err = r.Walk(ctx, top, "/", func(fp string, n *format.Node) error {
					subject := string(n.Name)
					if whole {
						subject = fp
					}
					if ok, _ := path.Match(pat, subject); !ok {
						return nil
					}
					key := fp + "\x00" + n.Type.String()
					h := hits[key]
					if h == nil {
						h = &hit{Path: fp, Type: n.Type.String()}
						hits[key] = h
						order = append(order, key)
					}
					h.Size, h.MTime = n.Size, time.Unix(0, n.MTime).UTC()
					h.Points = append(h.Points, p.ID[:8])
					return nil
				})
				if err != nil {
					return err
				}
			}
			slices.Sort(order)
			if g.json {
				out := make([]*hit, 0, len(order))
				for _, k := range order {
					out = append(out, hits[k])
				}
				return writeJSON(g.stdout, out)
			}
			if len(order) == 0 {
				fmt.Fprintf(g.stderr, "no entry named %q in %d recovery points\n", pat, len(points))
				return nil
			}
			for _, k := range order {
				h := hits[k]
				where := strings.Join(h.Points, " ")
				if len(h.Points) == len(points) && len(points) > 1 {
					where = "all points"
				}
				fmt.Fprintf(g.stdout, "%s\t%s\t%d\tin %s\n", printable([]byte(h.Path)), h.Type, h.Size, where)
			}
			return nil
		},
	}
}

func newDiffCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "diff POINT POINT",
		Short: "List paths added, removed and changed between two recovery points",
		Long: `List what changed from the first recovery point to the second: "+" added,
"-" removed, "M" changed (with what: content, mode, owner, mtime, target,
device, xattrs). Folders whose contents are identical are not opened.

Example:
  coffer diff 3f2a latest`,
		Args: argCount(2, 2, "diff takes two POINTs (for example: coffer diff 3f2a latest)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, s, err := g.openRepo(ctx, false)
			if err != nil {
				return err
			}
			defer s.close()
			_, a, err := pointRoot(ctx, r, args[0])
			if err != nil {
				return err
			}
			_, b, err := pointRoot(ctx, r, args[1])
			if err != nil {
				return err
			}
			w := bufio.NewWriter(g.stdout)
			na := &format.Node{Type: format.TypeDir, Subtree: a}
			nb := &format.Node{Type: format.TypeDir, Subtree: b}
			var added, removed, changed int
			err = r.Diff(ctx, na, nb, "/", func(c repo.Change) error {
				switch c.Op {
				case '+':
					added++
				case '-':
					removed++
				default:
					changed++
				}
				if g.json {
					return writeJSON(w, map[string]any{"op": string(c.Op), "path": c.Path, "changed": c.Detail})
				}
				line := fmt.Sprintf("%c %s", c.Op, printable([]byte(c.Path)))
				if c.Detail != "" {
					line += "  (" + c.Detail + ")"
				}
				_, err := fmt.Fprintln(w, line)
				return err
			})
			if err != nil {
				return err
			}
			if !g.json && !g.quiet {
				fmt.Fprintf(g.stderr, "%d added, %d removed, %d changed\n", added, removed, changed)
			}
			return w.Flush()
		},
	}
}
