package chunker

import (
	"bytes"
	"fmt"
	"io"
	"testing"
)

const benchSize = 64 << 20

var benchInputs = []struct {
	name string
	data func() []byte
}{
	{"random", func() []byte { return randomData(1, benchSize) }},
	{"text", func() []byte { return textData(1, benchSize) }},
}

func BenchmarkCut(b *testing.B) {
	tab := NewTable(testSeed())
	for _, in := range benchInputs {
		data := in.data()
		b.Run(in.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			chunks := 0
			for b.Loop() {
				for d := data; len(d) > 0; chunks++ {
					d = d[tab.Cut(d):]
				}
			}
			b.ReportMetric(float64(b.N)*float64(len(data))/float64(chunks), "B/chunk")
		})
	}
}

// BenchmarkChunker reads through Chunkers with buffers of several sizes:
// a smaller buffer moves more of the bytes it reads to its front.
func BenchmarkChunker(b *testing.B) {
	tab := NewTable(testSeed())
	for _, in := range benchInputs {
		data := in.data()
		for _, size := range []int{MinBufSize, BufSize, 2 * MaxSize} {
			b.Run(fmt.Sprintf("%s/buf=%dKiB", in.name, size>>10), func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				r := bytes.NewReader(data)
				c := New(r, tab, make([]byte, size))
				for b.Loop() {
					r.Reset(data)
					c.Reset(r)
					for {
						if _, err := c.Next(); err == io.EOF {
							break
						} else if err != nil {
							b.Fatal(err)
						}
					}
				}
			})
		}
	}
}

func BenchmarkNewTable(b *testing.B) {
	seed := testSeed()
	for b.Loop() {
		NewTable(seed)
	}
}
