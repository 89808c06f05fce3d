package sized

import "fmt"

// Range checks the range [off, off+length) of an object of the given size
// (length < 0: to the end) and returns the length it spans.
func Range(off, length, size int64) (int64, error) {
	if off < 0 || off > size {
		return 0, fmt.Errorf("range offset %d outside object of %d bytes", off, size)
	}
	if length < 0 {
		return size - off, nil
	}
	if length > size-off {
		return 0, fmt.Errorf("range [%d, %d) past the end of object of %d bytes", off, off+length, size)
	}
	return length, nil
}
