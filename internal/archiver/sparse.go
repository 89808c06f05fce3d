package archiver

import (
	"io"

	"github.com/coffer-backup/coffer/internal/format"
)

// extentReader reads the data regions of a sparse file one after the
// other; the holes between them are not read.
type extentReader struct {
	r   io.ReaderAt
	ext []format.Extent
	i   int
	off uint64 // within ext[i]
}

func (e *extentReader) Read(p []byte) (int, error) {
	for e.i < len(e.ext) && e.off >= e.ext[e.i].Len {
		e.i, e.off = e.i+1, 0
	}
	if e.i == len(e.ext) {
		return 0, io.EOF
	}
	x := e.ext[e.i]
	if left := x.Len - e.off; uint64(len(p)) > left {
		p = p[:left]
	}
	n, err := e.r.ReadAt(p, int64(x.Off+e.off))
	e.off += uint64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

func extentsLen(ext []format.Extent) uint64 {
	var n uint64
	for _, x := range ext {
		n += x.Len
	}
	return n
}

// source is what the worker chunks: the whole file, or the data regions of
// a sparse one.
func (j *fileJob) source() io.Reader {
	if j.fut.node.Extents == nil {
		// Read as many bytes as the lstat said and no more: that saves the
		// read that would only find the end of the file. A file that grew
		// meanwhile shows in the fstat after the read, and is read again.
		return io.LimitReader(j.f, j.st.size)
	}
	return &extentReader{r: j.f, ext: j.fut.node.Extents}
}

// dataSize is how many bytes source should yield.
func (j *fileJob) dataSize() uint64 {
	if j.fut.node.Extents == nil {
		return j.fut.node.Size
	}
	return extentsLen(j.fut.node.Extents)
}

// resize fixes the node after a read of n bytes that did not match what
// was expected; with st set (the file's status after the read), extents
// are looked up again. It returns the file's size.
func (j *fileJob) resize(n int64, st *fileStat) uint64 {
	node := &j.fut.node
	if node.Extents == nil {
		return uint64(n)
	}
	if st != nil {
		if ext, err := sparseExtents(j.f, *st); err == nil {
			node.Extents = ext
			return uint64(st.size)
		}
	}
	// Keep the extents consistent with the n bytes that were stored.
	left := uint64(n)
	for i := range node.Extents {
		if node.Extents[i].Len > left {
			node.Extents[i].Len = left
		}
		left -= node.Extents[i].Len
	}
	return node.Size
}
