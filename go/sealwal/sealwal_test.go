package sealwal

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/etcd/raft"
	"go.etcd.io/etcd/raft/raftpb"
)

// An unlock key in its text form (32 bytes 0x00..0x1f).
const testKey = "SEALWAL-1-AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"

// Another valid key: the same bytes but the first.
const otherKey = "SEALWAL-1-AQECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"

func payload(i uint64) []byte {
	return bytes.Repeat([]byte(fmt.Sprintf("value-%d;", i)), int(1+i%40))
}

func entries(lo, hi, term uint64) []raftpb.Entry {
	var out []raftpb.Entry
	for i := lo; i < hi; i++ {
		out = append(out, raftpb.Entry{Term: term, Index: i, Type: raftpb.EntryNormal, Data: payload(i)})
	}
	return out
}

func open(t *testing.T, dir string, opts Options) *Store {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func bootstrap(t *testing.T, s *Store) *Recovery {
	t.Helper()
	r, err := s.Bootstrap()
	if err != nil {
		t.Fatalf("Bootstrap: %v", err)
	}
	return r
}

func TestSaveSnapshotRecover(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	opts := Options{CreateIfMissing: true, UnlockKey: testKey, Metadata: []byte("go"), SegmentSize: 64 << 10}
	s := open(t, dir, opts)
	if !s.Encrypted() || s.WriteKeyID() == 0 {
		t.Fatalf("a new store is encrypted with a DEK: encrypted=%v key=%d", s.Encrypted(), s.WriteKeyID())
	}
	bootstrap(t, s).Close()
	if err := s.Save(raftpb.HardState{Term: 1, Vote: 1, Commit: 99}, entries(1, 100, 1)); err != nil {
		t.Fatal(err)
	}
	meta := raftpb.SnapshotMetadata{Index: 60, Term: 1, ConfState: raftpb.ConfState{Voters: []uint64{1, 2, 3}}}
	if err := s.SaveSnapshot(raftpb.Snapshot{Metadata: meta, Data: []byte("inline")}); err != nil {
		t.Fatal(err)
	}
	// A streamed snapshot at 90.
	meta.Index = 90
	w, err := s.SnapshotWriter(meta)
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("0123456789"), 100000)
	if _, err := io.Copy(w, bytes.NewReader(big)); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, dir, opts)
	defer s.Close()
	r := bootstrap(t, s)
	defer r.Close()
	if r.Snapshot == nil || r.Snapshot.Index != 90 || r.Snapshot.Term != 1 {
		t.Fatalf("snapshot = %+v, want 90/1", r.Snapshot)
	}
	if got := r.Snapshot.ConfState.Voters; len(got) != 3 {
		t.Errorf("voters = %v", got)
	}
	data, err := r.SnapshotData()
	if err != nil || !bytes.Equal(data, big) {
		t.Fatalf("snapshot data: %d bytes, err %v", len(data), err)
	}
	if hs := r.HardState; hs.Term != 1 || hs.Vote != 1 || hs.Commit != 99 || string(r.Metadata) != "go" {
		t.Errorf("hardstate %+v metadata %q", r.HardState, r.Metadata)
	}
	if s.FirstIndex() != 91 || s.LastIndex() != 99 {
		t.Fatalf("log [%d, %d], want [91, 99]", s.FirstIndex(), s.LastIndex())
	}
	got, err := s.Entries(91, 100, ^uint64(0))
	if err != nil || len(got) != 9 {
		t.Fatalf("Entries: %d, %v", len(got), err)
	}
	for _, e := range got {
		if !bytes.Equal(e.Data, payload(e.Index)) {
			t.Fatalf("entry %d differs", e.Index)
		}
	}
	// maxSize: at least one entry, then stop once past it.
	if one, err := s.Entries(91, 100, 1); err != nil || len(one) != 1 {
		t.Errorf("Entries maxSize 1: %d, %v", len(one), err)
	}
	if _, err := s.Term(10); !errors.Is(err, raft.ErrCompacted) {
		t.Errorf("Term below the snapshot: %v, want ErrCompacted", err)
	}
	if _, err := s.Entries(95, 200, 1<<20); !errors.Is(err, raft.ErrUnavailable) {
		t.Errorf("Entries past the end: %v, want ErrUnavailable", err)
	}
	if term, err := s.Term(90); err != nil || term != 1 {
		t.Errorf("Term(snapshot index) = %d, %v", term, err)
	}
}

func TestSubmitCompletesInOrder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	s := open(t, dir, Options{CreateIfMissing: true, UnlockKey: testKey})
	defer s.Close()
	bootstrap(t, s).Close()
	done := make(chan uint64, 100)
	for i := uint64(1); i <= 50; i++ {
		i := i
		err := s.Submit(raftpb.HardState{Term: 1, Commit: i}, entries(i, i+1, 1), func(err error) {
			if err != nil {
				t.Errorf("batch %d: %v", i, err)
			}
			done <- i
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	close(done)
	want := uint64(1)
	for i := range done {
		if i != want {
			t.Fatalf("completion %d came when %d was due", i, want)
		}
		want++
	}
	if want != 51 {
		t.Fatalf("%d completions, want 50", want-1)
	}
	// A gap is refused and its done never runs.
	called := false
	err := s.Submit(raftpb.HardState{}, entries(100, 101, 1), func(error) { called = true })
	if err == nil {
		t.Fatal("a gap was accepted")
	}
	if err := s.Flush(); err != nil || called {
		t.Fatalf("after a refused batch: flush %v, done called %v", err, called)
	}
	if s.LastIndex() != 50 {
		t.Errorf("LastIndex = %d", s.LastIndex())
	}
}

func TestWrongUnlockKeyChangesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	s := open(t, dir, Options{CreateIfMissing: true, UnlockKey: testKey})
	bootstrap(t, s).Close()
	if err := s.Save(raftpb.HardState{Term: 1, Commit: 3}, entries(1, 4, 1)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	before := snapshotDir(t, dir)
	for _, key := range []string{otherKey, ""} {
		_, err := Open(dir, Options{UnlockKey: key})
		if !IsCode(err, CodePermissionDenied) {
			t.Errorf("key %q: %v, want permission denied", key, err)
		}
		if err != nil && strings.Contains(err.Error(), testKey[10:]) {
			t.Errorf("the error shows key bytes: %v", err)
		}
	}
	if _, err := Open(dir, Options{UnlockKey: "SEALWAL-1-nope"}); !IsCode(err, CodeInvalidArgument) {
		t.Errorf("a malformed key: %v", err)
	}
	if _, err := Open(filepath.Join(dir, "missing"), Options{}); !IsCode(err, CodeNotFound) {
		t.Errorf("no store: %v", err)
	}
	if after := snapshotDir(t, dir); after != before {
		t.Errorf("files changed:\n%s\n%s", before, after)
	}
}

// snapshotDir lists every file with its size and content hash.
func snapshotDir(t *testing.T, dir string) string {
	var b strings.Builder
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		data, _ := os.ReadFile(p)
		fmt.Fprintf(&b, "%s %d %x\n", p, len(data), data[:min(len(data), 64)])
		return nil
	})
	return b.String()
}

func min(a, b int) int {
	if a < b {
		return a
	}
	return b
}

func TestRotationAnsweredBySnapshot(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	var requested []uint64
	opts := Options{CreateIfMissing: true, UnlockKey: testKey, SegmentSize: 64 << 10,
		OnSnapshotRequest: func(min uint64) { requested = append(requested, min) }}
	s := open(t, dir, opts)
	bootstrap(t, s).Close()
	old := s.WriteKeyID()
	s.RequestRotation()
	last := uint64(0)
	for round := 0; round < 5 && len(requested) == 0; round++ {
		if err := s.Save(raftpb.HardState{Term: 1, Commit: last + 10}, entries(last+1, last+11, 1)); err != nil {
			t.Fatal(err)
		}
		last += 10
	}
	if len(requested) != 1 {
		t.Fatalf("snapshot requests: %v", requested)
	}
	if s.WriteKeyID() == old {
		t.Fatal("the write key did not change")
	}
	at := last
	if requested[0] > at {
		at = requested[0]
		if err := s.Save(raftpb.HardState{Term: 1, Commit: at}, entries(last+1, at+1, 1)); err != nil {
			t.Fatal(err)
		}
	}
	meta := raftpb.SnapshotMetadata{Index: at, Term: 1, ConfState: raftpb.ConfState{Voters: []uint64{1}}}
	if err := s.SaveSnapshot(raftpb.Snapshot{Metadata: meta, Data: []byte("state")}); err != nil {
		t.Fatal(err)
	}
	if err := s.GC(1); err != nil {
		t.Fatal(err)
	}
	newKey := s.WriteKeyID()
	s.Close()
	key, err := os.ReadFile(filepath.Join(dir, "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(key, []byte("raft-dek-pending")) || bytes.Contains(key, []byte("needs-rotation")) {
		t.Fatalf("the rotation did not finish:\n%s", key)
	}
	s = open(t, dir, Options{UnlockKey: testKey})
	defer s.Close()
	r := bootstrap(t, s)
	defer r.Close()
	if r.Snapshot == nil || r.Snapshot.Index != at || s.WriteKeyID() != newKey {
		t.Fatalf("after the rotation: snapshot %+v, key %d (want %d)", r.Snapshot, s.WriteKeyID(), newKey)
	}
}

// BenchmarkSave: raft-sized batches (4 entries of 150 bytes with a
// HardState, one fdatasync each) through the binding.
func BenchmarkSave(b *testing.B) {
	for _, plaintext := range []bool{true, false} {
		name := "encrypted"
		if plaintext {
			name = "plaintext"
		}
		b.Run(name, func(b *testing.B) {
			dir := filepath.Join(b.TempDir(), "store")
			s, err := Open(dir, Options{CreateIfMissing: true, Plaintext: plaintext, UnlockKey: testKey})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			r, err := s.Bootstrap()
			if err != nil {
				b.Fatal(err)
			}
			r.Close()
			data := bytes.Repeat([]byte("x"), 150)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				var ents []raftpb.Entry
				for k := 0; k < 4; k++ {
					idx := uint64(i*4 + k + 1)
					ents = append(ents, raftpb.Entry{Term: 1, Index: idx, Data: data})
				}
				if err := s.Save(raftpb.HardState{Term: 1, Vote: 1, Commit: uint64(i * 4)}, ents); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
