//go:build linux

package archiver

import (
	"errors"
	"fmt"

	"github.com/coffer-backup/coffer/internal/format"
	"golang.org/x/sys/unix"
)

// sparseExtents returns the data regions of a file that has fewer blocks
// allocated than its size says, found with SEEK_DATA and SEEK_HOLE. It
// returns nil for a file that is not sparse, or where the file system
// cannot tell; such files are read whole.
func sparseExtents(f sourceFile, st fileStat) ([]format.Extent, error) {
	if st.size <= 0 || st.blocks*512 >= st.size {
		return nil, nil
	}
	raw, ok := f.(rawFile)
	if !ok {
		return nil, nil
	}
	fd := int(raw)
	size := st.size
	var ext []format.Extent
	for off := int64(0); off < size; {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole up to the end
		}
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("seek data: %w", err)
		}
		if data >= size {
			break
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return nil, fmt.Errorf("seek hole: %w", err)
		}
		hole = min(hole, size)
		ext = append(ext, format.Extent{Off: uint64(data), Len: uint64(hole - data)})
		off = hole
	}
	if _, err := unix.Seek(fd, 0, unix.SEEK_SET); err != nil {
		return nil, fmt.Errorf("seek: %w", err)
	}
	if len(ext) == 1 && ext[0].Off == 0 && ext[0].Len == uint64(size) {
		return nil, nil
	}
	if len(ext) == 0 {
		// All hole: one empty extent at the end marks the file as sparse.
		ext = []format.Extent{{Off: uint64(size), Len: 0}}
	}
	return ext, nil
}
