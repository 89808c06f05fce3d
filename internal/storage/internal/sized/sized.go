// Package sized checks that a Put body has exactly the size the caller
// announced, and stops reading when the context ends. The storage drivers
// share it.
package sized

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
)

// ErrSize is returned (wrapped) when a body is shorter or longer than the
// size given to Put. It is permanent: reading the same body again gives the
// same answer.
var ErrSize = errors.New("body size differs from the announced size")

// Reader returns a reader that yields the bytes of r and then io.EOF when r
// has yielded exactly size bytes. It fails with ErrSize when r ends early or
// has more, and with ctx.Err() once ctx is done.
func Reader(ctx context.Context, r io.Reader, size int64) io.Reader {
	return &reader{ctx: ctx, r: r, size: size, left: size}
}

type reader struct {
	ctx  context.Context
	r    io.Reader
	size int64
	left int64
	err  error
}

func (s *reader) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if err := s.ctx.Err(); err != nil {
		s.err = err
		return 0, err
	}
	if s.left == 0 {
		// Expect the end of r: a further byte means r is too long.
		var one [1]byte
		n, err := io.ReadFull(s.r, one[:])
		switch {
		case n > 0:
			s.err = fmt.Errorf("%w: more than %d bytes", ErrSize, s.size)
		case err == io.EOF:
			s.err = io.EOF
		default:
			s.err = err
		}
		return 0, s.err
	}
	if int64(len(p)) > s.left {
		p = p[:s.left]
	}
	n, err := s.r.Read(p)
	s.left -= int64(n)
	if err == io.EOF {
		if s.left > 0 {
			err = fmt.Errorf("%w: got %d of %d bytes", ErrSize, s.size-s.left, s.size)
			s.err = err
			return n, err
		}
		if n > 0 {
			err = nil
		} else {
			return s.Read(p)
		}
	} else if err != nil {
		s.err = err
	}
	return n, err
}

// writePiece is the most WriteTo hands to one Write: a 16 MiB pack goes to
// a file in four system calls instead of io.Copy's 512, and the context is
// checked between pieces.
const writePiece = 4 << 20

// WriteTo writes a body held in memory (a *bytes.Reader) straight to w, in
// pieces of at most writePiece bytes, after checking its length: a body of
// the wrong size fails with ErrSize before anything is written. Other
// bodies are copied through Read.
func (s *reader) WriteTo(w io.Writer) (int64, error) {
	br, ok := s.r.(*bytes.Reader)
	if !ok || s.err != nil || s.left != s.size {
		return io.Copy(w, readOnly{s})
	}
	switch n := int64(br.Len()); {
	case n < s.size:
		s.err = fmt.Errorf("%w: got %d of %d bytes", ErrSize, n, s.size)
	case n > s.size:
		s.err = fmt.Errorf("%w: more than %d bytes", ErrSize, s.size)
	}
	if s.err != nil {
		return 0, s.err
	}
	n, err := br.WriteTo(pieces{s.ctx, w})
	s.left -= n
	if err != nil {
		s.err = err
		return n, err
	}
	s.err = io.EOF
	return n, nil
}

// readOnly hides WriteTo, so that io.Copy reads.
type readOnly struct{ r io.Reader }

func (r readOnly) Read(p []byte) (int, error) { return r.r.Read(p) }

// pieces writes to w at most writePiece bytes at a time while ctx lasts.
type pieces struct {
	ctx context.Context
	w   io.Writer
}

func (p pieces) Write(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		if err := p.ctx.Err(); err != nil {
			return n, err
		}
		m, err := p.w.Write(b[:min(len(b), writePiece)])
		n += m
		if err != nil {
			return n, err
		}
		b = b[m:]
	}
	return n, nil
}
