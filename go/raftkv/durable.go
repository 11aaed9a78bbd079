package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"go.etcd.io/etcd/etcdserver/api/snap"
	"go.etcd.io/etcd/raft/raftpb"
	"go.etcd.io/etcd/wal"
	"go.etcd.io/etcd/wal/walpb"
	"go.uber.org/zap"

	"sealwal.dev/go/sealwal"
)

// durable is where a node keeps its Raft log and snapshots: sealwal (the
// product) or etcd's own wal and snap packages (the benchmark's peer).
type durable interface {
	// What the last run left: the newest usable snapshot (nil: none), the
	// HardState and the entries after the snapshot.
	Recover() (*raftpb.Snapshot, raftpb.HardState, []raftpb.Entry, error)
	// Entries and HardState, durable on return when raft needs it.
	Save(hs raftpb.HardState, ents []raftpb.Entry) error
	// A snapshot: durable, recorded in the log, older log released.
	SaveSnapshot(s raftpb.Snapshot) error
	// Drops snapshots and log no longer needed.
	GC() error
	// Idle-time work (sealwal: notice `store rotate`, run rotation steps).
	Poll() error
	Close() error
}

// keepSnapshots is how many snapshots GC keeps (etcd's --max-snapshots is 5).
const keepSnapshots = 2

// sealwalStore keeps everything in one sealwal store (DATADIR).
type sealwalStore struct {
	st *sealwal.Store
}

func openSealwal(dir, unlockKey string, plaintext, fallocate bool, onRequest func(uint64)) (*sealwalStore, error) {
	st, err := sealwal.Open(dir, sealwal.Options{
		CreateIfMissing:   true,
		Plaintext:         plaintext,
		Fallocate:         fallocate,
		UnlockKey:         unlockKey,
		OnSnapshotRequest: onRequest,
	})
	if err != nil {
		return nil, err
	}
	return &sealwalStore{st: st}, nil
}

func (s *sealwalStore) Recover() (*raftpb.Snapshot, raftpb.HardState, []raftpb.Entry, error) {
	rec, err := s.st.Bootstrap()
	if err != nil {
		return nil, raftpb.HardState{}, nil, err
	}
	defer rec.Close()
	var snapshot *raftpb.Snapshot
	if rec.Snapshot != nil {
		data, err := rec.SnapshotData()
		if err != nil {
			return nil, raftpb.HardState{}, nil, err
		}
		snapshot = &raftpb.Snapshot{Metadata: *rec.Snapshot, Data: data}
	}
	var ents []raftpb.Entry
	if first, last := s.st.FirstIndex(), s.st.LastIndex(); last >= first {
		ents, err = s.st.Entries(first, last+1, ^uint64(0))
		if err != nil {
			return nil, raftpb.HardState{}, nil, err
		}
	}
	return snapshot, rec.HardState, ents, nil
}

func (s *sealwalStore) Save(hs raftpb.HardState, ents []raftpb.Entry) error {
	return s.st.Save(hs, ents)
}
func (s *sealwalStore) SaveSnapshot(sn raftpb.Snapshot) error { return s.st.SaveSnapshot(sn) }
func (s *sealwalStore) GC() error                             { return s.st.GC(keepSnapshots) }
func (s *sealwalStore) Poll() error                           { return s.st.Poll() }
func (s *sealwalStore) Close() error                          { return s.st.Close() }

// etcdStore is etcd's layout and code: DATADIR/wal and DATADIR/snap, used
// as etcd's server uses them.
type etcdStore struct {
	walDir, snapDir string
	w               *wal.WAL
	ss              *snap.Snapshotter
	lg              *zap.Logger
}

func openEtcd(dir string) (*etcdStore, error) {
	e := &etcdStore{walDir: filepath.Join(dir, "wal"), snapDir: filepath.Join(dir, "snap"), lg: zap.NewNop()}
	if err := os.MkdirAll(e.snapDir, 0o700); err != nil {
		return nil, err
	}
	e.ss = snap.New(e.lg, e.snapDir)
	if !wal.Exist(e.walDir) {
		w, err := wal.Create(e.lg, e.walDir, nil)
		if err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
	}
	return e, nil
}

func (e *etcdStore) Recover() (*raftpb.Snapshot, raftpb.HardState, []raftpb.Entry, error) {
	var hs raftpb.HardState
	// The newest snapshot that the WAL recorded (etcd 3.5's order).
	valid, err := wal.ValidSnapshotEntries(e.lg, e.walDir)
	if err != nil {
		return nil, hs, nil, err
	}
	snapshot, err := e.ss.LoadNewestAvailable(valid)
	if err != nil && !errors.Is(err, snap.ErrNoSnapshot) {
		return nil, hs, nil, err
	}
	at := walpb.Snapshot{}
	if snapshot != nil {
		at.Index, at.Term = snapshot.Metadata.Index, snapshot.Metadata.Term
	}
	if e.w, err = wal.Open(e.lg, e.walDir, at); err != nil {
		return nil, hs, nil, err
	}
	_, hs, ents, err := e.w.ReadAll()
	if err != nil {
		// A torn tail from a crash: repair as etcd's server does, then read again.
		e.w.Close()
		if !errors.Is(err, io.ErrUnexpectedEOF) || !wal.Repair(e.lg, e.walDir) {
			return nil, hs, nil, fmt.Errorf("read wal: %w", err)
		}
		if e.w, err = wal.Open(e.lg, e.walDir, at); err != nil {
			return nil, hs, nil, err
		}
		if _, hs, ents, err = e.w.ReadAll(); err != nil {
			return nil, hs, nil, err
		}
	}
	return snapshot, hs, ents, nil
}

func (e *etcdStore) Save(hs raftpb.HardState, ents []raftpb.Entry) error { return e.w.Save(hs, ents) }

func (e *etcdStore) SaveSnapshot(sn raftpb.Snapshot) error {
	if err := e.ss.SaveSnap(sn); err != nil {
		return err
	}
	if err := e.w.SaveSnapshot(walpb.Snapshot{Index: sn.Metadata.Index, Term: sn.Metadata.Term}); err != nil {
		return err
	}
	return e.w.ReleaseLockTo(sn.Metadata.Index)
}

// GC: etcd purges old files on a timer (fileutil.PurgeFile); the benchmark
// runs are short, so nothing is removed.
func (e *etcdStore) GC() error   { return nil }
func (e *etcdStore) Poll() error { return nil }
func (e *etcdStore) Close() error {
	if e.w == nil {
		return nil
	}
	return e.w.Close()
}
