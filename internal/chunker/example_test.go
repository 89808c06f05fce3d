package chunker_test

import (
	"bytes"
	"fmt"
	"io"

	"github.com/coffer-backup/coffer/internal/chunker"
)

func Example() {
	var seed [32]byte // in Coffer: the machine's secret chunker seed
	tab := chunker.NewTable(seed)

	data := bytes.Repeat([]byte("a small file "), 10)
	c := chunker.New(bytes.NewReader(data), tab, nil)
	for {
		chunk, err := c.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(len(chunk)) // hash, compress and store the chunk here
	}
	// Output: 130
}
