package format

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestDefaultArgon2(t *testing.T) {
	want := KDF{Name: "argon2id", Time: 3, MemoryKiB: 64 << 10, Threads: 2}
	if !equalKDF(DefaultArgon2, want) {
		t.Fatalf("DefaultArgon2 = %+v, want %+v (doc/FORMAT.md states it)", DefaultArgon2, want)
	}
	if err := (KDF{Name: "argon2id", Salt: make([]byte, 32), Time: 3, MemoryKiB: 64 << 10, Threads: 2}).check(); err != nil {
		t.Fatalf("default parameters refused: %v", err)
	}
}

func equalKDF(a, b KDF) bool {
	return a.Name == b.Name && bytes.Equal(a.Salt, b.Salt) && a.Time == b.Time && a.MemoryKiB == b.MemoryKiB && a.Threads == b.Threads
}

func TestWrapUnwrapDefault(t *testing.T) {
	keys, err := NewKeys(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pass := []byte("a passphrase of sixteen+ characters")
	slot, err := WrapKeys(keys, pass, DefaultArgon2, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if SlotKDF(slot) != "argon2id" {
		t.Fatalf("SlotKDF = %q", SlotKDF(slot))
	}
	got, err := UnwrapKeys(slot, pass)
	if err != nil || *got != *keys {
		t.Fatalf("unwrap: %v", err)
	}
	if bytes.Contains(slot, keys.Data[:8]) || bytes.Contains(slot, pass) {
		t.Fatal("slot holds key or passphrase bytes in the clear")
	}
}

func TestRecoveryKeyRoundTrip(t *testing.T) {
	keys := goldenKeys(t)
	printable, rk, err := NewRecoveryKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	groups := strings.Split(printable, "-")
	if len(groups) != 11 || len(groups[10]) != 2 || len(rk) != 32 {
		t.Fatalf("printable form %q: want 10 groups of five and one of two", printable)
	}
	slot, err := WrapKeys(keys, rk, KDF{Name: "blake3"}, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, typed := range []string{printable, strings.ToLower(printable), " " + strings.ReplaceAll(printable, "-", " ") + "\n",
		strings.ReplaceAll(printable, "-", "")} {
		k, err := ParseRecoveryKey(typed)
		if err != nil || !bytes.Equal(k, rk) {
			t.Fatalf("ParseRecoveryKey(%q) = %x, %v", typed, k, err)
		}
	}
	got, err := UnwrapKeys(slot, rk)
	if err != nil || *got != *keys {
		t.Fatalf("unwrap: %v", err)
	}
	wrong := bytes.Clone(rk)
	wrong[0] ^= 1
	if _, err := UnwrapKeys(slot, wrong); !errors.Is(err, ErrWrongSecret) {
		t.Fatalf("wrong recovery key: %v", err)
	}
}

func TestParseRecoveryKeyRejects(t *testing.T) {
	valid, _, err := NewRecoveryKey(&seqReader{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		"", "AAAAA", valid[:len(valid)-1], valid + "A",
		valid[:len(valid)-1] + "B",          // last character must carry four zero bits
		valid[:len(valid)-1] + "1",          // not base32
		strings.Replace(valid, "A", "0", 1), // 0 is not in the alphabet
		valid + "====",
	} {
		if k, err := ParseRecoveryKey(s); err == nil {
			t.Errorf("ParseRecoveryKey(%q) = %x, want an error", s, k)
		}
	}
}

func slotJSON(t *testing.T, mutate func(f *slotFile)) []byte {
	t.Helper()
	var f slotFile
	if err := json.Unmarshal(checkGoldenRead(t, "keyslot-argon2id.json"), &f); err != nil {
		t.Fatal(err)
	}
	mutate(&f)
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func checkGoldenRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := readTestdata(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestUnwrapRefusesBeforeDeriving checks that slots with parameters out of
// range are refused without running the KDF: a hostile vault must not make
// the agent allocate gigabytes or spin for minutes.
func TestUnwrapRefusesBeforeDeriving(t *testing.T) {
	calls := 0
	defer func(f func([]byte, []byte, uint32, uint32, uint8, uint32) []byte) { argon2IDKey = f }(argon2IDKey)
	argon2IDKey = func(p, s []byte, time, mem uint32, threads uint8, n uint32) []byte {
		calls++
		return make([]byte, n)
	}
	for _, tc := range []struct {
		name   string
		mutate func(f *slotFile)
	}{
		{"time 0", func(f *slotFile) { f.KDF.Time = 0 }},
		{"time 11", func(f *slotFile) { f.KDF.Time = 11 }},
		{"time huge", func(f *slotFile) { f.KDF.Time = 1 << 31 }},
		{"memory 8 MiB - 1 KiB", func(f *slotFile) { f.KDF.MemoryKiB = 8<<10 - 1 }},
		{"memory 1 GiB + 1 KiB", func(f *slotFile) { f.KDF.MemoryKiB = 1<<20 + 1 }},
		{"memory 4 GiB", func(f *slotFile) { f.KDF.MemoryKiB = 1<<32 - 1 }},
		{"threads 0", func(f *slotFile) { f.KDF.Threads = 0 }},
		{"threads 17", func(f *slotFile) { f.KDF.Threads = 17 }},
		{"unknown KDF", func(f *slotFile) { f.KDF.Name = "scrypt" }},
		{"blake3 with argon2 parameters", func(f *slotFile) { f.KDF.Name = "blake3" }},
		{"salt 15 bytes", func(f *slotFile) { f.KDF.Salt = f.KDF.Salt[:15] }},
		{"salt 65 bytes", func(f *slotFile) { f.KDF.Salt = make([]byte, 65) }},
		{"nonce 11 bytes", func(f *slotFile) { f.Nonce = f.Nonce[:11] }},
		{"box short", func(f *slotFile) { f.Box = f.Box[:len(f.Box)-1] }},
		{"box long", func(f *slotFile) { f.Box = append(f.Box, 0) }},
		{"version 2", func(f *slotFile) { f.Version = 2 }},
		{"version 0", func(f *slotFile) { f.Version = 0 }},
	} {
		calls = 0
		_, err := UnwrapKeys(slotJSON(t, tc.mutate), []byte(goldenPassphrase))
		if err == nil || errors.Is(err, ErrWrongSecret) || calls != 0 {
			t.Errorf("%s: got %v after %d KDF runs; want a format error before any", tc.name, err, calls)
		}
	}
	for _, bad := range [][]byte{nil, []byte("{"), []byte(`{"v":1,"kdf":{"threads":300}}`),
		append([]byte(`{"v":1,"x":"`), append(bytes.Repeat([]byte{'a'}, maxSlotSize), '"', '}')...)} {
		calls = 0
		if _, err := UnwrapKeys(bad, nil); err == nil || calls != 0 {
			t.Errorf("%.40q: got %v after %d KDF runs", bad, err, calls)
		}
	}
	// In range, the limits themselves are accepted.
	for _, kdf := range []KDF{
		{Name: "argon2id", Salt: make([]byte, 16), Time: 10, MemoryKiB: 1 << 20, Threads: 16},
		{Name: "argon2id", Salt: make([]byte, 64), Time: 1, MemoryKiB: 8 << 10, Threads: 1},
	} {
		if err := kdf.check(); err != nil {
			t.Errorf("%+v: %v", kdf, err)
		}
	}
}

func TestWrapKeysRefusesBadKDF(t *testing.T) {
	keys := goldenKeys(t)
	for _, kdf := range []KDF{{Name: "argon2id"}, {Name: "none"}, {Name: "argon2id", Time: 99, MemoryKiB: 8 << 10, Threads: 1}} {
		if _, err := WrapKeys(keys, []byte("x"), kdf, rand.Reader); err == nil {
			t.Errorf("WrapKeys with %+v: no error", kdf)
		}
	}
	if _, err := WrapKeys(keys, []byte("x"), KDF{Name: "blake3"}, &failReader{}); err == nil {
		t.Error("WrapKeys with a failing reader: no error")
	}
}

func TestSlotKDF(t *testing.T) {
	if got := SlotKDF([]byte("not json")); got != "" {
		t.Errorf("SlotKDF(garbage) = %q", got)
	}
	if got := SlotKDF(checkGoldenRead(t, "keyslot-recovery.json")); got != "blake3" {
		t.Errorf("SlotKDF(recovery slot) = %q", got)
	}
}

func TestNewKeys(t *testing.T) {
	k, err := NewKeys(&seqReader{})
	if err != nil {
		t.Fatal(err)
	}
	if *k != *goldenKeys(t) {
		t.Fatalf("NewKeys must read Data, ID, Chunker in that order: %x", *k)
	}
	if _, err := NewKeys(&failReader{n: 40}); err == nil {
		t.Fatal("NewKeys with a failing reader: no error")
	}
}
