package vaulttest

import (
	"context"
	"slices"
	"sync"

	"github.com/coffer-backup/coffer/internal/pack"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

func testHasBlobsBatch(f *fixture) {
	f.wantHas(f.A, nil, nil)
	s := f.begin(f.A)
	var stored []vaultapi.ID
	for range 3 {
		p := f.pack(vaultapi.KindData, 1500, 16)
		f.store(f.A, s.ID, p)
		stored = append(stored, packIDs(p)...)
	}
	query := make([]vaultapi.ID, 5000)
	want := make([]bool, len(query))
	for i := range query {
		if f.r.IntN(3) == 0 {
			query[i] = f.id()
		} else {
			query[i], want[i] = stored[f.r.IntN(len(stored))], true
		}
	}
	f.wantHas(f.A, query, want)
}

func testStorePack(f *fixture) {
	s := f.begin(f.A)
	data := f.pack(vaultapi.KindData, 40, 4000)
	tree := f.pack(vaultapi.KindTree, 3, 500)
	f.wantAbsent(f.A, data)
	f.store(f.A, s.ID, data)
	f.store(f.A, s.ID, tree)
	f.wantStored(f.A, data)
	f.wantStored(f.A, tree)
}

// groupPack builds a data pack of single blobs and groups: runs of
// entries sharing one region, their IDs in increasing order.
func (f *fixture) groupPack() vaultapi.Pack {
	w := pack.NewWriter(nil)
	for i := range 6 {
		ids := f.ids(1 + i%3*4) // 1, 5 or 9 chunks at one place
		slices.SortFunc(ids, vaultapi.ID.Compare)
		data := f.bytes(1 + f.r.IntN(2000))
		if err := w.AddGroupFunc(vaultapi.KindData, ids, func(dst []byte) ([]byte, error) {
			return append(dst, data...), nil
		}); err != nil {
			f.t.Fatalf("AddGroupFunc: %v", err)
		}
	}
	return w.Finish()
}

// testStorePackGroups: every chunk of a group is indexed at the group's
// offset and length.
func testStorePackGroups(f *fixture) {
	s := f.begin(f.A)
	p := f.groupPack()
	f.store(f.A, s.ID, p)
	f.wantStored(f.A, p)
	f.commit(f.A, s.ID, p.Entries[0].ID, packIDs(p))
	f.wantStored(f.A, p)
}

// testStorePackRelease: Pack.Release is called at most once, and the vault
// reads Data no more after it. The callback overwrites Data, as a backup
// reusing the buffer would, so a vault that read it again would store or
// index the overwritten bytes. Storing the same pack again (a no-op) with
// the same callback changes nothing either.
func testStorePackRelease(f *fixture) {
	s := f.begin(f.A)
	want := f.pack(vaultapi.KindData, 300, 8000)
	for range 2 {
		p := want
		p.Data = slices.Clone(want.Data)
		calls := 0
		p.Release = func() {
			calls++
			clear(p.Data)
		}
		f.store(f.A, s.ID, p)
		if calls > 1 {
			f.t.Fatalf("Release called %d times", calls)
		}
		f.wantStored(f.A, want)
		f.wantRead(f.A, want.Name, 0, int64(len(want.Data)), want.Data)
	}
}

func testStorePackIdempotent(f *fixture) {
	s := f.begin(f.A)
	p := f.pack(vaultapi.KindData, 20, 1000)
	f.store(f.A, s.ID, p)
	f.store(f.A, s.ID, p)
	f.wantStored(f.A, p)
	// Again in a later session, as a resumed backup would.
	s2 := f.begin(f.A)
	f.store(f.A, s2.ID, p)
	f.wantStored(f.A, p)
	// A pack holding blobs already stored elsewhere is stored too; the
	// blobs keep their first location.
	q := f.packOf(vaultapi.KindData, packIDs(p)[:5])
	f.store(f.A, s2.ID, q)
	f.wantStored(f.A, p)
	f.wantRead(f.A, q.Name, 0, int64(len(q.Data)), q.Data)
}

// withData returns p with its data replaced and its name made to match.
func withData(p vaultapi.Pack, data []byte) vaultapi.Pack {
	return vaultapi.Pack{Name: pack.Name(data), Data: data, Entries: p.Entries}
}

func testStorePackRefused(f *fixture) {
	s := f.begin(f.A)
	good := f.pack(vaultapi.KindData, 10, 300)
	flipped := slices.Clone(good.Data)
	flipped[pack.HeaderSize] ^= 1
	other := f.pack(vaultapi.KindData, 10, 300)
	changed := func(fn func(es []vaultapi.PackEntry) []vaultapi.PackEntry) vaultapi.Pack {
		return vaultapi.Pack{Name: good.Name, Data: good.Data, Entries: fn(slices.Clone(good.Entries))}
	}
	garbage := f.bytes(5000)
	grouped := f.groupPack()
	regroup := func(fn func(es []vaultapi.PackEntry) []vaultapi.PackEntry) vaultapi.Pack {
		// The trailer itself says what fn says: a pack whose bytes and
		// entries agree, which the vault must still refuse.
		es := fn(slices.Clone(grouped.Entries))
		data := pack.AppendTrailer(slices.Clone(grouped.Data[:len(grouped.Data)-pack.TrailerSize(len(grouped.Entries))]), es)
		return vaultapi.Pack{Name: pack.Name(data), Data: data, Entries: es}
	}
	second := 1 // the second entry of the first group of five
	for second < len(grouped.Entries) && grouped.Entries[second].Offset != grouped.Entries[second-1].Offset {
		second++
	}
	// A pack whose trailer lists a blob past its end.
	liar := slices.Clone(good.Data)
	liar[len(liar)-pack.TailSize-4] ^= 0x40 // the last entry's length, low byte

	bad := []struct {
		what string
		p    vaultapi.Pack
	}{
		{"bytes not matching the name", vaultapi.Pack{Name: good.Name, Data: flipped, Entries: good.Entries}},
		{"another pack's name", vaultapi.Pack{Name: other.Name, Data: good.Data, Entries: good.Entries}},
		{"upper-case name", vaultapi.Pack{Name: upper(good.Name), Data: good.Data, Entries: good.Entries}},
		{"short name", vaultapi.Pack{Name: good.Name[:63], Data: good.Data, Entries: good.Entries}},
		{"path as name", vaultapi.Pack{Name: "../../" + good.Name[6:], Data: good.Data, Entries: good.Entries}},
		{"no entries", changed(func([]vaultapi.PackEntry) []vaultapi.PackEntry { return nil })},
		{"an entry missing", changed(func(es []vaultapi.PackEntry) []vaultapi.PackEntry { return es[1:] })},
		{"an extra entry", changed(func(es []vaultapi.PackEntry) []vaultapi.PackEntry { return append(es, es[0]) })},
		{"an entry of another ID", changed(func(es []vaultapi.PackEntry) []vaultapi.PackEntry { es[3].ID = f.id(); return es })},
		{"an entry of another kind", changed(func(es []vaultapi.PackEntry) []vaultapi.PackEntry { es[3].Kind = vaultapi.KindTree; return es })},
		{"an entry at another offset", changed(func(es []vaultapi.PackEntry) []vaultapi.PackEntry { es[3].Offset++; return es })},
		{"an entry of another length", changed(func(es []vaultapi.PackEntry) []vaultapi.PackEntry { es[3].Length--; return es })},
		{"entries in another order", changed(func(es []vaultapi.PackEntry) []vaultapi.PackEntry { es[0], es[1] = es[1], es[0]; return es })},
		{"garbage bytes", withData(good, garbage)},
		{"no bytes", withData(good, nil)},
		{"a truncated pack", withData(good, good.Data[:len(good.Data)-1])},
		{"the header alone", withData(good, good.Data[:pack.HeaderSize])},
		{"a trailer that lies", withData(good, liar)},
		{"a group listing a chunk twice", regroup(func(es []vaultapi.PackEntry) []vaultapi.PackEntry {
			es[second].ID = es[second-1].ID
			return es
		})},
		{"a group's chunks out of order", regroup(func(es []vaultapi.PackEntry) []vaultapi.PackEntry {
			es[second].ID, es[second-1].ID = es[second-1].ID, es[second].ID
			return es
		})},
		{"a group of mixed kinds", regroup(func(es []vaultapi.PackEntry) []vaultapi.PackEntry {
			es[second].Kind = vaultapi.KindInfo
			return es
		})},
	}
	for _, b := range bad {
		f.wantErr("StorePack with "+b.what, f.A.StorePack(f.ctx, s.ID, b.p), vaultapi.ErrBadRequest)
	}
	f.wantAbsent(f.A, good)
	f.wantAbsent(f.A, other)
	f.wantHas(f.A, packIDs(good), all(len(good.Entries), false))
	_, err := f.A.ReadPack(f.ctx, pack.Name(garbage), 0, 1)
	f.wantErr("ReadPack of a refused pack", err, vaultapi.ErrNotFound)

	// The session survives refused packs.
	f.store(f.A, s.ID, good)
	f.wantStored(f.A, good)
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'f' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

func testStorePackConcurrent(f *fixture) {
	const workers, each = 6, 4
	s := f.begin(f.A)
	packs := make([][]vaultapi.Pack, workers)
	shared := f.pack(vaultapi.KindData, 50, 2000) // stored by every worker at once
	var refs []vaultapi.ID
	for w := range packs {
		packs[w] = append(packs[w], shared)
		for range each {
			p := f.pack(vaultapi.KindData, 30, 3000)
			packs[w] = append(packs[w], p)
			refs = append(refs, packIDs(p)...)
		}
	}
	refs = append(refs, packIDs(shared)...)
	var wg sync.WaitGroup
	errs := make(chan error, workers*(each+1)*2)
	for w := range packs {
		wg.Go(func() {
			for _, p := range packs[w] {
				errs <- f.A.StorePack(f.ctx, s.ID, p)
				_, err := f.A.HasBlobs(f.ctx, packIDs(p))
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			f.t.Fatalf("concurrent StorePack: %v", err)
		}
	}
	for _, ps := range packs {
		for _, p := range ps {
			f.wantStored(f.A, p)
		}
	}
	f.commit(f.A, s.ID, shared.Entries[0].ID, refs)
}

func testLocate(f *fixture) {
	s := f.begin(f.A)
	p := f.pack(vaultapi.KindTree, 30, 500)
	f.store(f.A, s.ID, p)
	absent := f.ids(4)
	query := []vaultapi.ID{absent[0], p.Entries[29].ID, absent[1], p.Entries[0].ID, p.Entries[0].ID, absent[2], absent[3]}
	want := []vaultapi.Location{{ID: absent[0]}, loc(p, 29), {ID: absent[1]}, loc(p, 0), loc(p, 0), {ID: absent[2]}, {ID: absent[3]}}
	got, err := f.A.Locate(f.ctx, query)
	if err != nil {
		f.t.Fatalf("Locate: %v", err)
	}
	if !slices.Equal(got, want) {
		f.t.Fatalf("Locate:\n got %+v\nwant %+v", got, want)
	}
	if got, err := f.A.Locate(f.ctx, nil); err != nil || len(got) != 0 {
		f.t.Fatalf("Locate(nil): got %v, %v; want nothing", got, err)
	}
}

func loc(p vaultapi.Pack, i int) vaultapi.Location {
	e := p.Entries[i]
	return vaultapi.Location{ID: e.ID, Kind: e.Kind, Pack: p.Name, Offset: e.Offset, Length: e.Length}
}

func testReadPack(f *fixture) {
	s := f.begin(f.A)
	p := f.pack(vaultapi.KindData, 25, 70000)
	f.store(f.A, s.ID, p)
	size := int64(len(p.Data))
	for _, e := range p.Entries {
		f.wantRead(f.A, p.Name, int64(e.Offset), int64(e.Length), p.Data[e.Offset:e.Offset+uint64(e.Length)])
	}
	// Several blobs in one range, as a restore reads them.
	first, last := p.Entries[3], p.Entries[9]
	end := last.Offset + uint64(last.Length)
	f.wantRead(f.A, p.Name, int64(first.Offset), int64(end-first.Offset), p.Data[first.Offset:end])
	f.wantRead(f.A, p.Name, 0, size, p.Data)
	f.wantRead(f.A, p.Name, 0, 0, nil)
	f.wantRead(f.A, p.Name, size, 0, nil)
	f.wantRead(f.A, p.Name, size-1, 1, p.Data[size-1:])
	for range 20 {
		off := f.r.Int64N(size)
		n := f.r.Int64N(size - off + 1)
		f.wantRead(f.A, p.Name, off, n, p.Data[off:off+n])
	}
}

func testReadPackRefused(f *fixture) {
	s := f.begin(f.A)
	p := f.pack(vaultapi.KindData, 5, 1000)
	f.store(f.A, s.ID, p)
	size := int64(len(p.Data))
	unknown := f.pack(vaultapi.KindData, 1, 10)
	_, err := f.A.ReadPack(f.ctx, unknown.Name, 0, 1)
	f.wantErr("ReadPack of an unknown pack", err, vaultapi.ErrNotFound)
	bad := []struct {
		what        string
		name        string
		off, length int64
	}{
		{"a negative offset", p.Name, -1, 1},
		{"a negative length", p.Name, 0, -1},
		{"both negative", p.Name, -5, -5},
		{"a range past the end", p.Name, size - 1, 2},
		{"an offset past the end", p.Name, size + 1, 0},
		{"an invalid name", "not-a-pack", 0, 1},
		{"a path as name", "../" + p.Name[3:], 0, 1},
		{"an upper-case name", upper(p.Name), 0, 1},
	}
	for _, b := range bad {
		_, err := f.A.ReadPack(f.ctx, b.name, b.off, b.length)
		f.wantErr("ReadPack with "+b.what, err, vaultapi.ErrBadRequest)
	}
}

// testCancelledContext: a call with a cancelled context fails with an
// error that says so and changes nothing.
func testCancelledContext(f *fixture) {
	s := f.begin(f.A)
	p := f.pack(vaultapi.KindData, 5, 100)
	cctx, cancel := context.WithCancel(f.ctx)
	cancel()
	f.wantErr("StorePack with a cancelled context", f.A.StorePack(cctx, s.ID, p), context.Canceled)
	_, err := f.A.HasBlobs(cctx, packIDs(p))
	f.wantErr("HasBlobs with a cancelled context", err, context.Canceled)
	_, err = f.A.Commit(cctx, s.ID, vaultapi.Commit{Info: p.Entries[0].ID, Refs: packIDs(p)})
	f.wantErr("Commit with a cancelled context", err, context.Canceled)
	f.wantAbsent(f.A, p)
	f.wantPoints(f.A)
	f.store(f.A, s.ID, p)
}

// testLargePack stores and reads back the largest pack an agent writes: it
// closes a pack at pack.TargetSize, so the last blob (a chunk of up to
// 4 MiB, sealed) may take it past that.
func testLargePack(f *fixture) {
	w := pack.NewWriter(make([]byte, 0, pack.TargetSize+6<<20))
	for w.Size() < pack.TargetSize-1<<20 {
		w.Add(vaultapi.KindData, f.id(), f.bytes(1<<20))
	}
	w.Add(vaultapi.KindData, f.id(), f.bytes(4<<20+64))
	p := w.Finish()
	f.t.Logf("pack of %d bytes", len(p.Data))
	s := f.begin(f.A)
	f.store(f.A, s.ID, p)
	f.wantStored(f.A, p)
	last := p.Entries[len(p.Entries)-1]
	f.wantRead(f.A, p.Name, int64(last.Offset), int64(last.Length), p.Data[last.Offset:last.Offset+uint64(last.Length)])
	f.wantRead(f.A, p.Name, 0, int64(len(p.Data)), p.Data)
}
