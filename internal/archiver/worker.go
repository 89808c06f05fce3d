package archiver

import (
	"errors"
	"fmt"
	"io"

	"github.com/coffer-backup/coffer/internal/chunker"
	"github.com/coffer-backup/coffer/internal/format"
	"github.com/coffer-backup/coffer/internal/offheap"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

type fileJob struct {
	f      sourceFile
	path   string
	st     fileStat
	fut    *future
	xattrs bool    // read the file's extended attributes too
	stream *stream // where its small chunks are grouped

	seg    *segmented // a segment of a large file, or nil for a whole file
	idx    int
	off, n int64
}

// fatalError wraps an error that must stop the backup (vault, sealing),
// as opposed to a file's read error, which skips the file.
type fatalError struct{ err error }

func (e fatalError) Error() string { return e.err.Error() }
func (e fatalError) Unwrap() error { return e.err }

// chunking is a worker's chunker and the buffer it reads into: outside
// the Go heap where the system allows (package offheap), so its 5 MiB,
// which only files of over a megabyte fill, neither count towards the
// collector's goal nor stay resident after such a file.
type chunking struct {
	ch  *chunker.Chunker
	buf *offheap.Buffer
}

// residentChunkBuf is how much of a chunker buffer stays resident between
// files: the files of a source tree fit, and a larger file gives the rest
// back when it is done.
const residentChunkBuf = 1 << 20

// read notes that n bytes of one file (or segment) went through the
// buffer.
func (c *chunking) read(n int64) {
	if n > residentChunkBuf {
		c.buf.Release(residentChunkBuf)
	}
}

func (ru *run) worker() {
	// The chunker and its buffer come with the first job: a backup with
	// nothing changed sends none.
	var c *chunking
	for job := range ru.jobs {
		if c == nil {
			buf := offheap.New(chunker.BufSize, !offheap.Huge)
			defer buf.Free()
			c = &chunking{ch: chunker.New(nil, ru.table, buf.Bytes()), buf: buf}
		}
		if job.seg != nil {
			if ru.segment(c, job) {
				job.f.Close()
				close(job.fut.done)
			}
			continue
		}
		if job.xattrs {
			xs, err := job.f.xattrs()
			if err != nil {
				ru.problem(job.path, fmt.Errorf("extended attributes not stored: %w", err), false)
			}
			job.fut.node.Xattrs = xs
		}
		ru.file(c, job)
		job.f.Close()
		close(job.fut.done)
	}
}

// file reads, chunks and stores one file, re-reading it once if it changed
// while being read.
func (ru *run) file(c *chunking, job *fileJob) {
	if err := ru.ctx.Err(); err != nil {
		job.fut.err = err
		return
	}
	for attempt := 0; ; attempt++ {
		chunks, n, err := ru.chunkFile(c, job.source(), job.stream)
		var fe fatalError
		if errors.As(err, &fe) {
			job.fut.err = fe.err
			ru.fail(fe.err)
			return
		}
		if err != nil {
			ru.problem(job.path, err, true)
			job.fut.skip = true
			return
		}
		after, serr := job.f.stat()
		changed := uint64(n) != job.dataSize() ||
			serr == nil && (after.size != job.st.size || after.mtime != job.st.mtime || after.ctime != job.st.ctime)
		if changed && attempt == 0 {
			if _, err := job.f.Seek(0, io.SeekStart); err == nil {
				var stp *fileStat
				if serr == nil {
					job.st = after
					job.fut.node.MTime, job.fut.node.CTime = after.mtime, after.ctime
					stp = &after
				}
				size := job.resize(n, stp)
				ru.bytes.Add(size - job.fut.node.Size)
				job.fut.node.Size = size
				continue
			}
		}
		if changed {
			ru.problem(job.path, errors.New("changed while being read twice; stored as last read"), false)
			if serr == nil {
				job.fut.node.MTime, job.fut.node.CTime = after.mtime, after.ctime
			}
		}
		size := job.fut.node.Size
		if uint64(n) != job.dataSize() {
			size = job.resize(n, nil)
		}
		ru.bytes.Add(size - job.fut.node.Size)
		job.fut.node.Size = size
		job.fut.node.Chunks = chunks
		for _, c := range chunks {
			ru.addRefs(c.ID)
		}
		return
	}
}

func (ru *run) chunkFile(cg *chunking, f io.Reader, s *stream) (_ []format.Chunk, n int64, _ error) {
	cg.ch.Reset(f)
	defer func() { cg.read(n) }()
	var chunks []format.Chunk
	for {
		c, err := cg.ch.Next()
		if err == io.EOF {
			return chunks, n, nil
		}
		if err != nil {
			return nil, n, fmt.Errorf("read: %w", err)
		}
		n += int64(len(c))
		ru.bytesRead.Add(uint64(len(c)))
		id := ru.r.Hasher.ID(c)
		if err := ru.storeBlob(vaultapi.KindData, id, c, s); err != nil {
			return nil, n, fatalError{err}
		}
		chunks = append(chunks, format.Chunk{ID: id, Size: uint32(len(c))})
	}
}
