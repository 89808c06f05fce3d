package chunker

import (
	"errors"
	"fmt"
	"io"
)

// Buffer sizes for New. A Chunker cuts chunks from what its buffer holds
// as long as the content decides each boundary (a hash match), and refills
// only when it needs more bytes for the next one; a refill first moves the
// unconsumed tail (part of one chunk) to the front. On random data a
// buffer of BufSize moves about a sixth of the bytes read once, one of
// MinBufSize a fifth, one of 2*MaxSize a fifteenth.
const (
	BufSize    = MaxSize + AvgSize // allocated by New when buf is nil; the size to pool
	MinBufSize = MaxSize + MinSize // the smallest buffer New accepts
)

// maxEmptyReads is how many (0, nil) results in a row from the reader are
// tolerated before Next gives up with io.ErrNoProgress.
const maxEmptyReads = 100

// Chunker splits a stream into chunks, reading into a buffer it owns and reuses.
// It is not safe for concurrent use.
type Chunker struct {
	r     io.Reader
	t     *Table
	buf   []byte // full capacity; unconsumed data is buf[start:end]
	start int
	end   int
	err   error // sticky: io.EOF or the reader's error
}

// New returns a Chunker reading r. buf, if non-nil, is used as its buffer so
// callers can pool buffers; it must have a capacity of at least MinBufSize
// (BufSize is better), and New panics otherwise. If buf is nil, New allocates
// BufSize bytes. The Chunker owns buf until the caller stops using it.
func New(r io.Reader, t *Table, buf []byte) *Chunker {
	if buf == nil {
		buf = make([]byte, BufSize)
	}
	if cap(buf) < MinBufSize {
		panic(fmt.Sprintf("chunker: buffer capacity %d < MinBufSize %d", cap(buf), MinBufSize))
	}
	return &Chunker{r: r, t: t, buf: buf[:cap(buf)]}
}

// Next returns the next chunk, a slice into the internal buffer valid until the next call
// to Next or Reset. At end of input it returns nil, io.EOF. A zero-length input yields io.EOF at once.
//
// If the reader fails, Next still returns the chunks whose boundaries the
// bytes read so far determine, then returns the reader's error (wrapped) from
// then on; the rest of the buffered bytes are never returned.
func (c *Chunker) Next() ([]byte, error) {
	for {
		avail := c.end - c.start
		n, found := c.t.cut(c.buf[c.start:c.end])
		if !found && avail < MaxSize {
			if c.err == nil {
				// The boundary may lie in bytes not read yet.
				c.fill()
				continue
			}
			if c.err != io.EOF {
				return nil, fmt.Errorf("chunker: read: %w", c.err)
			}
		}
		if avail == 0 {
			return nil, io.EOF
		}
		chunk := c.buf[c.start : c.start+n : c.start+n]
		c.start += n
		return chunk, nil
	}
}

// Reset makes the Chunker read r from the start of a new stream, keeping its buffer.
func (c *Chunker) Reset(r io.Reader) {
	c.r = r
	c.start, c.end = 0, 0
	c.err = nil
}

// fill moves the unconsumed bytes to the front of the buffer and reads until
// the buffer is full or the reader returns an error (io.EOF included). It is
// called only when fewer than MaxSize bytes are buffered, and the buffer holds
// more than MaxSize, so afterwards more bytes are buffered than before, at
// least MaxSize of them, unless c.err is set.
func (c *Chunker) fill() {
	if c.start > 0 {
		c.end = copy(c.buf, c.buf[c.start:c.end])
		c.start = 0
	}
	empty := 0
	for c.end < len(c.buf) {
		n, err := c.r.Read(c.buf[c.end:])
		if n < 0 || n > len(c.buf)-c.end {
			c.err = errors.New("reader returned an invalid count")
			return
		}
		c.end += n
		if err != nil {
			c.err = err
			return
		}
		if n > 0 {
			empty = 0
		} else if empty++; empty >= maxEmptyReads {
			c.err = io.ErrNoProgress
			return
		}
	}
}
