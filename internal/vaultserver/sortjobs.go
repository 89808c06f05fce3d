package vaultserver

import (
	"cmp"
	"slices"

	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// sortJobs orders jobs newest first (by start), then by machine and ID.
func sortJobs(js []vaultapi.Job) {
	slices.SortStableFunc(js, func(a, b vaultapi.Job) int {
		if c := b.Started.Compare(a.Started); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Machine, b.Machine); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
}
