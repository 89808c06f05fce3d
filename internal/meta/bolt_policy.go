package meta

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/coffer-backup/coffer/internal/vaultapi"
	bolt "go.etcd.io/bbolt"
)

// maxJobs is vaultapi.MaxJobs (a variable so tests can lower it).
var maxJobs = vaultapi.MaxJobs

var (
	bPolicy = []byte("policy")
	bJobs   = []byte("jobs")
)

// policyBucket is where the machine's policy key lives: the machine's
// bucket, or the vault bucket for the default ("").
func policyBucket(tx *bolt.Tx, machine string) (*bolt.Bucket, error) {
	if machine == "" {
		return tx.Bucket(bVault), nil
	}
	return machineBucket(tx, machine)
}

func (s *Bolt) Policy(ctx context.Context, machine string) (vaultapi.Policy, error) {
	var p vaultapi.Policy
	err := s.view(ctx, func(tx *bolt.Tx) error {
		b, err := policyBucket(tx, machine)
		if err != nil {
			return err
		}
		v := b.Get(bPolicy)
		if v == nil {
			return fmt.Errorf("policy of %q: %w", machine, ErrNotFound)
		}
		return json.Unmarshal(v, &p)
	})
	return p, err
}

func (s *Bolt) PutPolicy(ctx context.Context, machine string, p vaultapi.Policy) error {
	js, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return s.update(ctx, func(tx *bolt.Tx) error {
		b, err := policyBucket(tx, machine)
		if err != nil {
			return err
		}
		return b.Put(bPolicy, js)
	})
}

func (s *Bolt) PutJob(ctx context.Context, machine string, j vaultapi.Job) error {
	js, err := json.Marshal(j)
	if err != nil {
		return err
	}
	return s.update(ctx, func(tx *bolt.Tx) error {
		mb, err := machineBucket(tx, machine)
		if err != nil {
			return err
		}
		jb, err := mb.CreateBucketIfNotExists(bJobs)
		if err != nil {
			return err
		}
		if err := jb.Put([]byte(j.ID), js); err != nil {
			return err
		}
		type started struct {
			id []byte
			t  time.Time
		}
		var all []started
		err = jb.ForEach(func(k, v []byte) error {
			var x vaultapi.Job
			if err := json.Unmarshal(v, &x); err != nil {
				return err
			}
			all = append(all, started{slices.Clone(k), x.Started})
			return nil
		})
		if err != nil {
			return err
		}
		if len(all) <= maxJobs {
			return nil
		}
		slices.SortFunc(all, func(a, b started) int { return a.t.Compare(b.t) })
		for _, x := range all[:len(all)-maxJobs] {
			if err := jb.Delete(x.id); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *Bolt) Jobs(ctx context.Context, machine string) ([]vaultapi.Job, error) {
	var out []vaultapi.Job
	err := s.view(ctx, func(tx *bolt.Tx) error {
		mb, err := machineBucket(tx, machine)
		if err != nil {
			return err
		}
		jb := mb.Bucket(bJobs)
		if jb == nil {
			return nil
		}
		return jb.ForEach(func(k, v []byte) error {
			var j vaultapi.Job
			if err := json.Unmarshal(v, &j); err != nil {
				return err
			}
			out = append(out, j)
			return nil
		})
	})
	slices.SortStableFunc(out, func(a, b vaultapi.Job) int {
		if c := b.Started.Compare(a.Started); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out, err
}

func (s *Bolt) SetPointDeleted(ctx context.Context, machine, id string, t time.Time) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		mb, err := machineBucket(tx, machine)
		if err != nil {
			return err
		}
		pb := mb.Bucket(bPoints)
		v := pb.Get([]byte(id))
		if v == nil {
			return fmt.Errorf("point %q: %w", id, ErrNotFound)
		}
		var p vaultapi.Point
		if err := json.Unmarshal(v, &p); err != nil {
			return err
		}
		p.Deleted = t
		js, _ := json.Marshal(p)
		return pb.Put([]byte(id), js)
	})
}

func (s *Bolt) PurgePoint(ctx context.Context, machine, id string) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		mb, err := machineBucket(tx, machine)
		if err != nil {
			return err
		}
		pb := mb.Bucket(bPoints)
		if pb.Get([]byte(id)) == nil {
			return fmt.Errorf("point %q: %w", id, ErrNotFound)
		}
		rs, err := writableRefs(mb)
		if err != nil {
			return err
		}
		if err := purgeRefs(rs, []byte(id)); err != nil {
			return fmt.Errorf("purge point %s: %w", id, err)
		}
		if err := pb.Delete([]byte(id)); err != nil {
			return err
		}
		if string(mb.Get(bLatest)) != id {
			return nil
		}
		// The next point's delta base: the newest point left.
		var newest []byte
		var newestT time.Time
		err = pb.ForEach(func(k, v []byte) error {
			var p vaultapi.Point
			if err := json.Unmarshal(v, &p); err != nil {
				return err
			}
			if newest == nil || p.Time.After(newestT) {
				newest, newestT = slices.Clone(k), p.Time
			}
			return nil
		})
		if err != nil {
			return err
		}
		if newest == nil {
			return mb.Delete(bLatest)
		}
		return mb.Put(bLatest, newest)
	})
}
