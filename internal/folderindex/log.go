package folderindex

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// Log holds a backup's entries in a file beside the index until the
// backup ends, not in memory: on the linux tree they are 2.9 MB, which the
// collector's pacing would have raised the peak of a first backup by more
// than that. Entries are written as the file holds them (appendEntry). It
// is safe for concurrent use.
type Log struct {
	mu  sync.Mutex
	f   *os.File
	w   *bufio.Writer
	err error
	buf []byte
	ids []vaultapi.ID
}

// LogSuffix ends the name of a Log's file.
const LogSuffix = ".log"

// CreateLog makes a Log in dir for the index file name.
func CreateLog(dir, name string) (*Log, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, name+".*"+LogSuffix)
	if err != nil {
		return nil, err
	}
	return &Log{f: f, w: bufio.NewWriterSize(f, 64<<10)}, nil
}

// Add logs the entry of folder k; chunks calls its argument with each
// chunk ID the folder's files reference, in order.
func (l *Log) Add(k Key, fp FP, tree vaultapi.ID, chunks func(add func(vaultapi.ID))) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ids := l.ids[:0]
	chunks(func(id vaultapi.ID) { ids = append(ids, id) })
	l.ids = ids
	l.write(k, fp, tree, ids)
}

// AddEntry logs e for k.
func (l *Log) AddEntry(k Key, e Entry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.write(k, e.FP, e.Tree, e.Chunks)
}

// write appends an entry to the file; l.mu is held.
func (l *Log) write(k Key, fp FP, tree vaultapi.ID, chunks []vaultapi.ID) {
	l.buf = appendEntry(l.buf[:0], k, fp, tree, chunks)
	if l.err == nil {
		_, l.err = l.w.Write(l.buf)
	}
}

// Builder reads the log back into a Builder, and removes it.
func (l *Log) Builder() (*Builder, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.close()
	if l.err == nil {
		l.err = l.w.Flush()
	}
	if l.err != nil {
		return nil, l.err
	}
	p, err := os.ReadFile(l.f.Name())
	if err != nil {
		return nil, err
	}
	b := NewBuilder()
	for len(p) > 0 {
		var e Entry
		var k Key
		var chunks []byte
		k, e.FP, e.Tree, chunks, p, err = cutEntry(p)
		if err != nil {
			return nil, fmt.Errorf("%w: its log: %v", ErrIndex, err)
		}
		e.Chunks = make([]vaultapi.ID, 0, len(chunks)/idSize)
		for ; len(chunks) > 0; chunks = chunks[idSize:] {
			e.Chunks = append(e.Chunks, vaultapi.ID(chunks))
		}
		b.Add(k, e)
	}
	return b, nil
}

// Discard removes the log, if Builder has not.
func (l *Log) Discard() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.close()
}

func (l *Log) close() {
	if l.f != nil {
		l.f.Close()
		os.Remove(l.f.Name())
		l.f = nil
	}
}

// Tidy removes from dir the logs that interrupted backups left, and the
// index files other than keep that were last written before oldest.
func Tidy(dir, keep string, oldest time.Time) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if strings.HasSuffix(e.Name(), LogSuffix) {
			_ = os.Remove(p)
		} else if fi, err := e.Info(); err == nil && e.Name() != keep && fi.ModTime().Before(oldest) {
			_ = os.Remove(p)
		}
	}
}
