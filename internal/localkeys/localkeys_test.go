package localkeys

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/coffer-backup/coffer/internal/format"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

func testKeys(t *testing.T, seed byte) *format.Keys {
	t.Helper()
	k, err := format.NewKeys(bytes.NewReader(bytes.Repeat([]byte{seed}, 96)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSaveLoad(t *testing.T) {
	d := Dir(filepath.Join(t.TempDir(), "keys"))
	k := testKeys(t, 7)
	slotA := vaultapi.KeySlot{ID: "passphrase", Data: []byte(`{"slot":"a"}`)}
	slotB := vaultapi.KeySlot{ID: "recovery-1", Data: []byte(`{"slot":"b"}`)}

	got, slot, err := d.Load([]vaultapi.KeySlot{slotA, slotB})
	if err != nil || got != nil || slot.ID != "" {
		t.Fatalf("empty folder: keys %v, slot %q, err %v; want none", got, slot.ID, err)
	}
	if err := d.Save(slotB.Data, k); err != nil {
		t.Fatal(err)
	}
	got, slot, err = d.Load([]vaultapi.KeySlot{slotA, slotB})
	if err != nil || got == nil || *got != *k || slot.ID != "recovery-1" {
		t.Fatalf("Load = %v, %q, %v; want the saved keys from recovery-1", got, slot.ID, err)
	}
	// The slot changed (a new passphrase): the file no longer matches.
	changed := vaultapi.KeySlot{ID: "recovery-1", Data: []byte(`{"slot":"b2"}`)}
	if got, _, err := d.Load([]vaultapi.KeySlot{slotA, changed}); err != nil || got != nil {
		t.Fatalf("changed slot: keys %v, err %v; want none", got, err)
	}
	if runtime.GOOS != "windows" {
		for _, p := range []string{string(d), d.path(slotHash(slotB.Data))} {
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			want := os.FileMode(0o600)
			if st.IsDir() {
				want = 0o700
			}
			if st.Mode().Perm() != want {
				t.Errorf("%s: mode %v, want %v", p, st.Mode().Perm(), want)
			}
		}
	}
}

func TestDamagedFileRefused(t *testing.T) {
	d := Dir(t.TempDir())
	slot := vaultapi.KeySlot{ID: "passphrase", Data: []byte("slot bytes")}
	if err := d.Save(slot.Data, testKeys(t, 1)); err != nil {
		t.Fatal(err)
	}
	p := d.path(slotHash(slot.Data))
	good, _ := os.ReadFile(p)
	for name, b := range map[string][]byte{
		"truncated":  good[:len(good)/2],
		"empty":      nil,
		"key bit":    bytes.Replace(good, []byte(`"keys":"`), []byte(`"keys":"B`), 1),
		"other slot": bytes.Replace(good, []byte(`"slot":"`), []byte(`"slot":"0`), 1),
	} {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		k, _, err := d.Load([]vaultapi.KeySlot{slot})
		if k != nil || !errors.Is(err, ErrDamaged) {
			t.Errorf("%s: keys %v, err %v; want ErrDamaged", name, k, err)
		}
	}
}

func TestForget(t *testing.T) {
	d := Dir(t.TempDir())
	a := vaultapi.KeySlot{ID: "a", Data: []byte("a")}
	b := vaultapi.KeySlot{ID: "b", Data: []byte("b")}
	for _, s := range []vaultapi.KeySlot{a, b} {
		if err := d.Save(s.Data, testKeys(t, 2)); err != nil {
			t.Fatal(err)
		}
	}
	if !d.Any() {
		t.Fatal("Any = false with two kept files")
	}
	if n, err := d.Forget([]vaultapi.KeySlot{a}); n != 1 || err != nil {
		t.Fatalf("Forget(a) = %d, %v; want 1", n, err)
	}
	if k, _, _ := d.Load([]vaultapi.KeySlot{a}); k != nil {
		t.Error("a still kept after Forget")
	}
	if k, _, _ := d.Load([]vaultapi.KeySlot{b}); k == nil {
		t.Error("b forgotten with a")
	}
	if n, err := d.Forget(nil); n != 1 || err != nil {
		t.Fatalf("Forget(all) = %d, %v; want 1", n, err)
	}
	if d.Any() {
		t.Error("Any = true after forgetting everything")
	}
	if n, err := Dir(filepath.Join(string(d), "none")).Forget(nil); n != 0 || err != nil {
		t.Fatalf("Forget in a missing folder = %d, %v; want 0, nil", n, err)
	}
}

// FuzzLoad: whatever a kept key file holds, Load returns keys whose
// checksum holds, or an error; never both, never neither, never a panic.
// (The checksum catches damage, not forgery: the command line also checks
// kept keys against the vault's newest point.)
func FuzzLoad(f *testing.F) {
	seedDir := Dir(f.TempDir())
	slot := vaultapi.KeySlot{ID: "passphrase", Data: []byte("slot")}
	k, _ := format.NewKeys(bytes.NewReader(bytes.Repeat([]byte{3}, 96)))
	if err := seedDir.Save(slot.Data, k); err != nil {
		f.Fatal(err)
	}
	good, _ := os.ReadFile(seedDir.path(slotHash(slot.Data)))
	f.Add(good)
	f.Add([]byte(`{"v":1}`))
	f.Add([]byte(`{"v":1,"slot":"","keys":"","check":""}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d := Dir(t.TempDir())
		if err := os.WriteFile(d.path(slotHash(slot.Data)), b, 0o600); err != nil {
			t.Fatal(err)
		}
		got, _, err := d.Load([]vaultapi.KeySlot{slot})
		if err != nil && got != nil {
			t.Fatalf("Load returned keys and an error")
		}
		if got != nil {
			var fl file
			if json.Unmarshal(b, &fl) != nil || fl.Check != check(slotHash(slot.Data), fl.Keys) {
				t.Fatalf("Load accepted a file whose checksum does not hold")
			}
		}
		if err == nil && got == nil {
			t.Fatalf("Load found the file but returned neither keys nor an error")
		}
	})
}
