package restorer

import (
	"bytes"
	"slices"
	"sync"

	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// keptBytes bounds the plaintext of the groups a restore keeps.
const keptBytes = 16 << 20

// keptGroups holds opened groups (doc/FORMAT.md, "Groups") some of whose
// chunks the plan did not need yet when they were opened. The backup
// gathers a group's small files from several folders at once, so the
// plan, walking folder by folder, may need the rest of a group batches
// later; those chunks are then written from here, without the group being
// read and opened again. The oldest groups make room for new ones.
type keptGroups struct {
	mu    sync.Mutex
	size  int
	byAt  map[groupAt]*keptGroup
	order []groupAt // oldest first
}

// groupAt is where a group is stored.
type groupAt struct {
	pack string
	off  uint64
}

// keptGroup is a group's chunks, sorted by ID; read-only once kept.
type keptGroup struct {
	ids     []vaultapi.ID
	members [][]byte
	size    int
}

// keep copies a group's chunks (ids sorted, as a repo.ChunkOpener gives
// them) and keeps them.
func (k *keptGroups) keep(at groupAt, ids []vaultapi.ID, members [][]byte) {
	n := 0
	for _, m := range members {
		n += len(m)
	}
	if n > keptBytes {
		return
	}
	g := &keptGroup{ids: slices.Clone(ids), members: make([][]byte, len(members)), size: n}
	plain := make([]byte, 0, n)
	for i, m := range members {
		plain = append(plain, m...)
		g.members[i] = plain[len(plain)-len(m):]
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.byAt == nil {
		k.byAt = make(map[groupAt]*keptGroup)
	}
	if _, ok := k.byAt[at]; ok {
		return
	}
	for k.size+n > keptBytes && len(k.order) > 0 {
		old := k.order[0]
		k.order = k.order[1:]
		k.size -= k.byAt[old].size
		delete(k.byAt, old)
	}
	k.byAt[at] = g
	k.order = append(k.order, at)
	k.size += n
}

// chunk returns chunk id of the group kept at at, if there is one.
func (k *keptGroups) chunk(at groupAt, id vaultapi.ID) ([]byte, bool) {
	k.mu.Lock()
	g := k.byAt[at]
	k.mu.Unlock()
	if g == nil {
		return nil, false
	}
	i, ok := slices.BinarySearchFunc(g.ids, id, func(a, b vaultapi.ID) int { return bytes.Compare(a[:], b[:]) })
	if !ok {
		return nil, false
	}
	return g.members[i], true
}
