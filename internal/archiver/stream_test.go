package archiver

import (
	"bytes"
	"context"
	"crypto/rand"
	"slices"
	"testing"

	"github.com/coffer-backup/coffer/internal/format"
	"github.com/coffer-backup/coffer/internal/repo"
	"github.com/coffer-backup/coffer/internal/vault"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// TestStreamsHandUp: a stream closes once its walker has listed, and
// hands its group not yet full to the nearest open stream above it, past
// closed ones, which also gathers the files it queued that are still
// being read; two groups not full become one while below GroupTarget,
// else the larger is sealed; finish seals the rest.
func TestStreamsHandUp(t *testing.T) {
	ctx := context.Background()
	e, err := vault.OpenEmbedded(ctx, t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	r, _, err := repo.Open(ctx, e.Machine, []byte("stream test passphrase"), true, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := format.NewSealer(r.Keys, rand.Reader, format.LevelAuto)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := r.Vault.BeginBackup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p := newPacker(ctx, r.Vault, sess.ID, sealer, nil, 2, 1)
	var n byte
	// add stores a file of one chunk of size bytes with s, as a worker does.
	add := func(s *stream, size int) vaultapi.ID {
		t.Helper()
		n++
		b := bytes.Repeat([]byte{'a' + n%26, n}, size/2)
		id := r.Hasher.ID(b)
		if err := p.add(vaultapi.KindData, id, b, s); err != nil {
			t.Fatal(err)
		}
		return id
	}
	members := func(s *stream) int {
		if s.filling == nil {
			return 0
		}
		return len(s.filling.ids)
	}
	listed := func(s *stream) {
		t.Helper()
		if err := p.listed(s); err != nil {
			t.Fatal(err)
		}
	}

	a := p.newStream(nil)
	b := p.newStream(a)
	c := p.newStream(b)
	var small []vaultapi.ID // the files that end in one group
	small = append(small, add(c, 10<<10), add(c, 10<<10), add(c, 10<<10))
	if c.closed || members(c) != 3 {
		t.Fatalf("c: closed %v with %d members before its walker is done", c.closed, members(c))
	}
	listed(c)
	if !c.closed || members(c) != 0 || members(b) != 3 {
		t.Fatalf("c closed %v: c %d, b %d members; want c's group handed to b", c.closed, members(c), members(b))
	}
	small = append(small, add(a, 10<<10), add(a, 10<<10))
	listed(b)
	if !b.closed || members(a) != 5 {
		t.Fatalf("b closed %v; a has %d members, want b's 3 merged into its 2", b.closed, members(a))
	}
	d := p.newStream(b) // b is closed: d's group goes to a
	small = append(small, add(d, 10<<10))
	listed(d)
	if members(a) != 6 {
		t.Fatalf("a has %d members, want 6: d's passed closed b", members(a))
	}
	small = append(small, add(c, 10<<10)) // a file c queued, read late
	if members(a) != 7 || members(c)+members(b) != 0 {
		t.Fatalf("a has %d members, want 7: c's late file gathered by a", members(a))
	}

	// Two groups that together pass GroupTarget: the larger is sealed.
	var big, rest []vaultapi.ID
	for range 3 {
		big = append(big, add(nil, 100<<10)) // the packer's own, larger
	}
	x := p.newStream(nil)
	for range 3 {
		rest = append(rest, add(x, 80<<10))
	}
	listed(x)
	if members(p.own) != 3 || !slices.Contains(rest, p.own.filling.ids[0]) {
		t.Fatalf("own has %d members; want x's 3 after its own were sealed", members(p.own))
	}
	listed(a) // a's group goes to own's, with x's: one group of both
	if members(p.own) != 10 || len(p.open) != 1 {
		t.Fatalf("own has %d members, %d streams open; want 10 and own alone", members(p.own), len(p.open))
	}
	if err := p.finish(); err != nil {
		t.Fatal(err)
	}
	ids := append(append(append([]vaultapi.ID{}, small...), rest...), big...)
	locs, err := r.Vault.Locate(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	place := map[vaultapi.ID]uint64{}
	for _, l := range locs {
		if l.Pack == "" {
			t.Fatalf("chunk %s not stored", l.ID.Short())
		}
		place[l.ID] = l.Offset
	}
	for _, id := range append(small[1:], rest...) {
		if place[id] != place[small[0]] {
			t.Errorf("chunk %s not in the group of the other streams' last files", id.Short())
		}
	}
	for _, id := range big {
		if place[id] != place[big[0]] || place[id] == place[small[0]] {
			t.Errorf("chunk %s of the sealed group placed at %d", id.Short(), place[id])
		}
	}
}
