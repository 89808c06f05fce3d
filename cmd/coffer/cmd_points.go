package main

import (
	"fmt"
	"os"
	"path"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/coffer-backup/coffer/internal/format"
	"github.com/coffer-backup/coffer/internal/repo"
	"github.com/coffer-backup/coffer/internal/vaultapi"
	"github.com/spf13/cobra"
)

func newPointsCmd(g *globals) *cobra.Command {
	var deleted bool
	cmd := &cobra.Command{
		Use:   "points [--deleted]",
		Short: "List this machine's recovery points",
		Long: `List this machine's recovery points, oldest first: ID, time (stamped by
the vault), source paths, files, size and the bytes each one added.

Use an ID prefix, or "latest", wherever a POINT is asked for.

With --deleted, lists the points the vault's retention soft-deleted: when,
and until when the vault operator can restore them (14 days); then they
are purged. A machine cannot delete or restore points itself.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if deleted {
				return listDeletedPoints(g, cmd)
			}
			r, s, err := g.openRepo(ctx, false)
			if err != nil {
				return err
			}
			defer s.close()
			points, err := r.Vault.Points(ctx)
			if err != nil {
				return err
			}
			type row struct {
				vaultapi.Point
				Paths []string `json:"paths"`
				Host  string   `json:"host"`
			}
			rows := make([]row, 0, len(points))
			for _, p := range points {
				rw := row{Point: p, Paths: []string{}}
				if m, err := r.Manifest(ctx, p); err == nil {
					rw.Host = m.Host
					for _, b := range m.Paths {
						rw.Paths = append(rw.Paths, string(b))
					}
				} else {
					rw.Paths = []string{"(unreadable: " + err.Error() + ")"}
				}
				rows = append(rows, rw)
			}
			if g.json {
				return writeJSON(g.stdout, rows)
			}
			if len(rows) == 0 {
				fmt.Fprintln(g.stdout, "no recovery points yet; make one with: coffer backup PATH")
				return nil
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTIME\tFILES\tSIZE\tADDED\tPATHS")
			for _, rw := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", rw.ID[:8], rw.Time.Local().Format(time.DateTime),
					rw.Stats.Files, humanBytes(rw.Stats.Bytes), humanBytes(rw.Stats.BytesAdded), strings.Join(rw.Paths, " "))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&deleted, "deleted", false, "list the points retention soft-deleted")
	return cmd
}

func listDeletedPoints(g *globals, cmd *cobra.Command) error {
	s, err := g.openVault(cmd.Context())
	if err != nil {
		return err
	}
	defer s.close()
	ps, err := s.v.DeletedPoints(cmd.Context())
	if err != nil {
		return err
	}
	if g.json {
		return writeJSONList(g.stdout, ps)
	}
	if len(ps) == 0 {
		fmt.Fprintln(g.stdout, "no deleted recovery points")
		return nil
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTIME\tDELETED\tRESTORABLE UNTIL\tFILES\tSIZE")
	for _, p := range ps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", p.ID, p.Time.Local().Format(time.DateTime), p.Deleted.Local().Format(time.DateTime),
			p.Deleted.Add(vaultapi.DeleteGrace).Local().Format(time.DateTime), p.Stats.Files, humanBytes(p.Stats.Bytes))
	}
	return tw.Flush()
}

func newLsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "ls POINT [PATH]",
		Short: "List a folder of a recovery point",
		Long: `List a folder of a recovery point (default: its top), like ls -l.
POINT is an ID prefix or "latest"; PATH is an absolute path as backed up.

Examples:
  coffer ls latest
  coffer ls 3f2a /home/ana/Documents --json`,
		Args: argCount(1, 2, "ls takes POINT and an optional PATH (for example: coffer ls latest /home)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, s, err := g.openRepo(ctx, false)
			if err != nil {
				return err
			}
			defer s.close()
			p, err := repo.ResolvePoint(ctx, r.Vault, args[0])
			if err != nil {
				return err
			}
			m, err := r.Manifest(ctx, p)
			if err != nil {
				return err
			}
			dir := "/"
			if len(args) == 2 {
				dir = path.Clean("/" + args[1])
			}
			id := m.Root
			if dir != "/" {
				for _, el := range strings.Split(strings.TrimPrefix(dir, "/"), "/") {
					t, err := r.Tree(ctx, id)
					if err != nil {
						return err
					}
					n := lookup(t, el)
					if n == nil {
						return fmt.Errorf("%s: %w in point %s", dir, vaultapi.ErrNotFound, p.ID[:8])
					}
					if n.Type != format.TypeDir {
						return fmt.Errorf("%s is a %s, not a folder", dir, n.Type)
					}
					id = n.Subtree
				}
			}
			t, err := r.Tree(ctx, id)
			if err != nil {
				return err
			}
			if g.json {
				type entry struct {
					Name    string    `json:"name"`
					NameB64 []byte    `json:"name_bytes,omitempty"`
					Path    string    `json:"path"`
					Type    string    `json:"type"`
					Mode    string    `json:"mode"`
					Size    uint64    `json:"size"`
					User    string    `json:"user"`
					Group   string    `json:"group"`
					UID     uint32    `json:"uid"`
					GID     uint32    `json:"gid"`
					MTime   time.Time `json:"mtime"`
					Target  string    `json:"target,omitempty"`
				}
				out := make([]entry, 0, len(t.Nodes))
				for _, n := range t.Nodes {
					e := entry{Name: string(n.Name), Path: path.Join(dir, string(n.Name)), Type: n.Type.String(),
						Mode: modeString(&n), Size: n.Size, User: n.User, Group: n.Group, UID: n.UID, GID: n.GID,
						MTime: time.Unix(0, n.MTime).UTC(), Target: string(n.Target)}
					if !utf8.Valid(n.Name) {
						e.NameB64 = n.Name
					}
					out = append(out, e)
				}
				return writeJSON(g.stdout, out)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 1, ' ', tabwriter.AlignRight)
			for _, n := range t.Nodes {
				user, group := n.User, n.Group
				if user == "" {
					user = fmt.Sprint(n.UID)
				}
				if group == "" {
					group = fmt.Sprint(n.GID)
				}
				name := printable(n.Name)
				if n.Type == format.TypeSymlink {
					name += " -> " + printable(n.Target)
				}
				fmt.Fprintf(tw, "%s\t %s\t %s\t %d\t %s\t %s\n", modeString(&n), user, group, n.Size,
					time.Unix(0, n.MTime).Local().Format("2006-01-02 15:04"), name)
			}
			return tw.Flush()
		},
	}
}

func lookup(t *format.Tree, name string) *format.Node {
	for i := range t.Nodes {
		if string(t.Nodes[i].Name) == name {
			return &t.Nodes[i]
		}
	}
	return nil
}

// printable quotes a name that is not plain, printable UTF-8.
func printable(b []byte) string {
	s := string(b)
	if utf8.ValidString(s) && !strings.ContainsAny(s, "\n\r\t\x1b") {
		return s
	}
	return fmt.Sprintf("%q", s)
}

func modeString(n *format.Node) string {
	m := os.FileMode(n.Mode & 0o777)
	switch n.Type {
	case format.TypeDir:
		m |= os.ModeDir
	case format.TypeSymlink:
		m |= os.ModeSymlink
	case format.TypeFIFO:
		m |= os.ModeNamedPipe
	case format.TypeCharDev:
		m |= os.ModeDevice | os.ModeCharDevice
	case format.TypeBlockDev:
		m |= os.ModeDevice
	case format.TypeSocket:
		m |= os.ModeSocket
	}
	if n.Mode&0o4000 != 0 {
		m |= os.ModeSetuid
	}
	if n.Mode&0o2000 != 0 {
		m |= os.ModeSetgid
	}
	if n.Mode&0o1000 != 0 {
		m |= os.ModeSticky
	}
	return m.String()
}
