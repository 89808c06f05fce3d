package wrap

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/coffer-backup/coffer/internal/storage"
)

// Prefix returns the store of the objects of s whose names start with
// prefix, with prefix taken off their names. A prefix that does not end in
// "/" gets one; an empty prefix returns s itself.
func Prefix(s storage.Storage, prefix string) (storage.Storage, error) {
	prefix = strings.TrimSuffix(prefix, "/")
	if prefix == "" {
		return s, nil
	}
	if err := storage.CheckName(prefix); err != nil {
		return nil, fmt.Errorf("prefix: %w", err)
	}
	return &prefixed{s: s, prefix: prefix + "/"}, nil
}

type prefixed struct {
	s      storage.Storage
	prefix string
}

// full checks name and returns it with the prefix.
func (p *prefixed) full(name string) (string, error) {
	if err := storage.CheckName(name); err != nil {
		return "", err
	}
	return p.prefix + name, nil
}

func (p *prefixed) Put(ctx context.Context, name string, r io.Reader, size int64, opts storage.PutOptions) error {
	full, err := p.full(name)
	if err != nil {
		return err
	}
	return p.s.Put(ctx, full, r, size, opts)
}

func (p *prefixed) Get(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	full, err := p.full(name)
	if err != nil {
		return nil, err
	}
	return p.s.Get(ctx, full, off, length)
}

func (p *prefixed) Stat(ctx context.Context, name string) (storage.Info, error) {
	full, err := p.full(name)
	if err != nil {
		return storage.Info{}, err
	}
	info, err := p.s.Stat(ctx, full)
	info.Name = strings.TrimPrefix(info.Name, p.prefix)
	return info, err
}

func (p *prefixed) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	return p.s.List(ctx, p.prefix+prefix, func(info storage.Info) error {
		info.Name = strings.TrimPrefix(info.Name, p.prefix)
		return fn(info)
	})
}

func (p *prefixed) Delete(ctx context.Context, name string) error {
	full, err := p.full(name)
	if err != nil {
		return err
	}
	return p.s.Delete(ctx, full)
}
