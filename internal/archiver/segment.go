package archiver

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/coffer-backup/coffer/internal/format"
)

// Large files are cut into segments at fixed offsets and each segment is
// chunked on its own, so that several workers read, chunk and hash one
// file at once (doc/FORMAT.md, "Chunking"). Boundaries stay a function of
// the content and the offset: the same file gives the same chunks. A
// change that shifts content costs about two chunks per later segment; a
// change in place, as databases and disk images make, costs nothing more.
const (
	// SegmentSize is the size of a segment of a large file.
	SegmentSize = 64 << 20
	// SegmentFrom is the size from which a file is cut into segments.
	SegmentFrom = 2 * SegmentSize
)

// segmented gathers the chunks of a file read in segments by several
// workers; the last one to finish completes the file's future.
type segmented struct {
	mu      sync.Mutex
	parts   [][]format.Chunk
	left    int
	read    int64
	readErr error
	fatal   error
}

// segmentJobs returns the jobs of a large, non-sparse file: one per
// segment, sharing the open file.
func segmentJobs(f sourceFile, path string, st fileStat, fut *future, s *stream) []*fileJob {
	n := int((st.size + SegmentSize - 1) / SegmentSize)
	seg := &segmented{parts: make([][]format.Chunk, n), left: n}
	jobs := make([]*fileJob, n)
	for i := range jobs {
		off := int64(i) * SegmentSize
		jobs[i] = &fileJob{f: f, path: path, st: st, fut: fut, stream: s, seg: seg, idx: i, off: off, n: min(SegmentSize, st.size-off)}
	}
	return jobs
}

// segment chunks one segment; the worker that finishes the last one
// checks the file did not change, fills in the node and reports whether
// the file is complete (then the caller closes it and its future).
func (ru *run) segment(c *chunking, job *fileJob) bool {
	var chunks []format.Chunk
	var n int64
	var err error
	if ru.ctx.Err() == nil {
		chunks, n, err = ru.chunkFile(c, io.NewSectionReader(job.f, job.off, job.n), job.stream)
	} else {
		err = fatalError{ru.ctx.Err()}
	}
	s := job.seg
	s.mu.Lock()
	defer s.mu.Unlock()
	var fe fatalError
	switch {
	case errors.As(err, &fe):
		if s.fatal == nil {
			s.fatal = fe.err
			ru.fail(fe.err)
		}
	case err != nil:
		if s.readErr == nil {
			s.readErr = err
		}
	case n != job.n && s.readErr == nil:
		s.readErr = fmt.Errorf("read %d bytes of a %d-byte segment: the file shrank while being read", n, job.n)
	}
	s.parts[job.idx] = chunks
	s.read += n
	s.left--
	if s.left > 0 {
		return false
	}
	node := &job.fut.node
	switch {
	case s.fatal != nil:
		job.fut.err = s.fatal
		return true
	case s.readErr != nil:
		ru.problem(job.path, s.readErr, true)
		job.fut.skip = true
		return true
	}
	if after, err := job.f.stat(); err == nil &&
		(after.size != job.st.size || after.mtime != job.st.mtime || after.ctime != job.st.ctime) {
		ru.problem(job.path, errors.New("changed while being read; stored as read"), false)
		node.MTime, node.CTime = after.mtime, after.ctime
	}
	for _, p := range s.parts {
		node.Chunks = append(node.Chunks, p...)
		for _, c := range p {
			ru.addRefs(c.ID)
		}
	}
	return true
}
