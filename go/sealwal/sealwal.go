// Package sealwal is the Go binding of sealwal's C API
// (include/sealwal/sealwal.h): one Raft node's log and snapshots, on disk,
// encrypted at rest, in etcd's formats.
//
// A Store is opened with Open, recovered once with Bootstrap, then fed with
// Save (or Submit + Flush), SaveSnapshot and GC, and closed with Close.
// After Bootstrap it also serves the log (FirstIndex, LastIndex, Term,
// Entries) from disk, as raft's Storage interface reads it.
//
// Thread-safety: a Store's methods are called by one goroutine at a time,
// except FirstIndex, LastIndex, Term and Entries, which any goroutine may
// call while the store is open. Callbacks (Options.OnSnapshotRequest and a
// Submit's done) run on other threads and must not call into the store.
//
// Errors are *Error values with the library's code and message; the log's
// out-of-range reads wrap raft.ErrCompacted or raft.ErrUnavailable, so
// errors.Is works as raft's MemoryStorage callers expect.
//
// Build: GOPATH mode against Debian's packages, through scripts/go.sh,
// which points cgo at include/ and at the build's libsealwal.so.
package sealwal

/*
#cgo LDFLAGS: -lsealwal
#include <stdlib.h>
#include <string.h>
#include "shim.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"io"
	"runtime/cgo"
	"strings"
	"time"
	"unsafe"

	"go.etcd.io/etcd/raft"
	"go.etcd.io/etcd/raft/raftpb"
)

// Code is a status code of the C API (absl::StatusCode's values).
type Code int

// The codes callers act on.
const (
	CodeInvalidArgument    Code = C.SEALWAL_ERR_INVALID_ARGUMENT
	CodeNotFound           Code = C.SEALWAL_ERR_NOT_FOUND
	CodePermissionDenied   Code = C.SEALWAL_ERR_PERMISSION_DENIED
	CodeFailedPrecondition Code = C.SEALWAL_ERR_FAILED_PRECONDITION
	CodeOutOfRange         Code = C.SEALWAL_ERR_OUT_OF_RANGE
	CodeDataLoss           Code = C.SEALWAL_ERR_DATA_LOSS
	CodeResourceExhausted  Code = C.SEALWAL_ERR_RESOURCE_EXHAUSTED
)

// Error is a failed call: the library's code and its one-line message.
type Error struct {
	Code Code
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("sealwal: %s (code %d)", e.Msg, int(e.Code)) }

// Is makes errors.Is(err, raft.ErrCompacted / raft.ErrUnavailable) true for
// the log's out-of-range reads.
func (e *Error) Is(target error) bool {
	if e.Code != CodeOutOfRange {
		return false
	}
	switch target {
	case raft.ErrCompacted:
		return strings.HasPrefix(e.Msg, "compacted:")
	case raft.ErrUnavailable:
		return strings.HasPrefix(e.Msg, "unavailable:")
	}
	return false
}

// IsCode reports whether err is a sealwal *Error with code c.
func IsCode(err error, c Code) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == c
}

func toError(code C.int, msg *C.char) error {
	if code == C.SEALWAL_OK {
		return nil
	}
	e := &Error{Code: Code(code), Msg: "(no message)"}
	if msg != nil {
		e.Msg = C.GoString(msg)
		C.sealwal_free(unsafe.Pointer(msg))
	}
	return e
}

// Version is the library's version.
func Version() string { return C.GoString(C.sealwal_version()) }

// Options say how Open opens a store.
type Options struct {
	// Make a new store when the directory holds none.
	CreateIfMissing bool
	// A new store is plaintext (default: encrypted).
	Plaintext bool
	// The key file's unlock key, text form "SEALWAL-1-..." (the
	// SEALWAL_UNLOCK_KEY variable's format). A new store is locked under
	// it; empty: the key file is not locked.
	UnlockKey string
	// The WAL metadata of a new store.
	Metadata []byte
	// Read only: no repair, no writes.
	ReadOnly bool
	// WAL segment size in bytes (0: 64 MiB).
	SegmentSize uint64
	// Reserve segments with fallocate only, as etcd does, instead of
	// writing zeros over each one first (default), which makes every
	// fdatasync cheaper at the cost of writing each segment twice.
	Fallocate bool
	// Submit batches in flight at most (0: 16).
	PipelineDepth int
	// Rotate the DEK after this many messages (0: 2^30) or this age (0: off).
	RotationMaxEncryptions uint64
	RotationMaxAge         time.Duration
	// The key rotator's request for a snapshot at an index >= minIndex.
	// Called on the goroutine (thread) calling Save, Submit, SaveSnapshot or
	// GC, inside that call: record it and answer with a later SaveSnapshot;
	// never call into the store from it.
	OnSnapshotRequest func(minIndex uint64)
}

// Store is an open store. See the package comment for thread-safety.
type Store struct {
	s       *C.sealwal_store
	request cgo.Handle // OnSnapshotRequest, or 0
}

//export sealwalGoSnapshotRequest
func sealwalGoSnapshotRequest(h C.uintptr_t, minIndex C.uint64_t) {
	cgo.Handle(h).Value().(func(uint64))(uint64(minIndex))
}

//export sealwalGoDone
func sealwalGoDone(h C.uintptr_t, code C.int, msg *C.char) {
	handle := cgo.Handle(h)
	done := handle.Value().(func(error))
	handle.Delete()
	var err error
	if code != C.SEALWAL_OK {
		err = &Error{Code: Code(code), Msg: C.GoString(msg)}
	}
	done(err)
}

// Open opens (or with CreateIfMissing creates) the store in dir. A missing
// store is CodeNotFound; a missing or wrong unlock key CodePermissionDenied
// (nothing is modified).
func Open(dir string, opts Options) (*Store, error) {
	o := C.sealwal_options_create()
	if o == nil {
		return nil, &Error{Code: CodeResourceExhausted, Msg: "out of memory"}
	}
	defer C.sealwal_options_destroy(o) // wipes its copy of the unlock key
	C.sealwal_options_set_create_if_missing(o, cbool(opts.CreateIfMissing))
	C.sealwal_options_set_encrypted(o, cbool(!opts.Plaintext))
	C.sealwal_options_set_read_only(o, cbool(opts.ReadOnly))
	if opts.UnlockKey != "" {
		// Straight into C memory (no Go []byte copy left behind), wiped
		// once the library has its own copy. The Go string itself cannot
		// be wiped.
		key := C.CString(opts.UnlockKey)
		var msg *C.char
		code := C.sealwal_options_set_unlock_key(o, key, C.size_t(len(opts.UnlockKey)), &msg)
		C.memset(unsafe.Pointer(key), 0, C.size_t(len(opts.UnlockKey)))
		C.free(unsafe.Pointer(key))
		if err := toError(code, msg); err != nil {
			return nil, err
		}
	}
	if len(opts.Metadata) > 0 {
		C.sealwal_options_set_metadata(o, unsafe.Pointer(&opts.Metadata[0]), C.size_t(len(opts.Metadata)))
	}
	if opts.SegmentSize > 0 {
		C.sealwal_options_set_segment_size(o, C.uint64_t(opts.SegmentSize))
	}
	if opts.Fallocate {
		C.sealwal_options_set_preallocation(o, C.SEALWAL_PREALLOC_FALLOCATE)
	}
	if opts.PipelineDepth > 0 {
		C.sealwal_options_set_pipeline_depth(o, C.size_t(opts.PipelineDepth))
	}
	if opts.RotationMaxEncryptions > 0 {
		C.sealwal_options_set_rotation_max_encryptions(o, C.uint64_t(opts.RotationMaxEncryptions))
	}
	if opts.RotationMaxAge > 0 {
		secs := uint64((opts.RotationMaxAge + time.Second - 1) / time.Second)
		C.sealwal_options_set_rotation_max_age_seconds(o, C.uint64_t(secs))
	}
	st := &Store{}
	if opts.OnSnapshotRequest != nil {
		st.request = cgo.NewHandle(opts.OnSnapshotRequest)
		C.sealwal_go_set_snapshot_request(o, C.uintptr_t(st.request))
	}
	cdir := C.CString(dir)
	defer C.free(unsafe.Pointer(cdir))
	var msg *C.char
	if err := toError(C.sealwal_open(cdir, o, &st.s, &msg), msg); err != nil {
		if st.request != 0 {
			st.request.Delete()
		}
		return nil, err
	}
	return st, nil
}

// bytesPtr is p's first byte, or nil when p is empty.
func bytesPtr(p []byte) unsafe.Pointer {
	if len(p) == 0 {
		return nil
	}
	return unsafe.Pointer(&p[0])
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// Close waits for submitted batches, closes the store and frees it; it
// returns the store's first error. The Store must not be used afterwards.
func (s *Store) Close() error {
	if s.s == nil {
		return nil
	}
	var msg *C.char
	err := toError(C.sealwal_close(s.s, &msg), msg)
	s.s = nil
	if s.request != 0 {
		s.request.Delete()
		s.request = 0
	}
	return err
}

// Encrypted reports whether the store is encrypted.
func (s *Store) Encrypted() bool { return C.sealwal_encrypted(s.s) != 0 }

// WriteKeyID is the id of the DEK new data is sealed under (0: plaintext).
func (s *Store) WriteKeyID() uint32 { return uint32(C.sealwal_write_key_id(s.s)) }

// Recovery is what Bootstrap recovered. Close it once its snapshot data
// has been read.
type Recovery struct {
	// The snapshot recovery starts from (nil: none).
	Snapshot *raftpb.SnapshotMetadata
	// Its data's size in bytes.
	SnapshotSize uint64
	HardState    raftpb.HardState
	// The WAL metadata.
	Metadata []byte
	// A torn WAL tail (a batch never acknowledged) was truncated.
	RepairedTornTail bool

	r *C.sealwal_recovery
}

// Bootstrap recovers the store, once, before any save.
func (s *Store) Bootstrap() (*Recovery, error) {
	var r *C.sealwal_recovery
	var msg *C.char
	if err := toError(C.sealwal_bootstrap(s.s, &r, &msg), msg); err != nil {
		return nil, err
	}
	rec := &Recovery{r: r}
	hs := C.sealwal_recovery_hardstate(r)
	rec.HardState = raftpb.HardState{Term: uint64(hs.term), Vote: uint64(hs.vote), Commit: uint64(hs.commit)}
	var p unsafe.Pointer
	var n C.size_t
	C.sealwal_recovery_metadata(r, &p, &n)
	rec.Metadata = C.GoBytes(p, C.int(n))
	rec.RepairedTornTail = C.sealwal_recovery_repaired_torn_tail(r) != 0
	if C.sealwal_recovery_has_snapshot(r) != 0 {
		C.sealwal_recovery_snapshot_metadata(r, &p, &n)
		var m raftpb.SnapshotMetadata
		if err := m.Unmarshal(C.GoBytes(p, C.int(n))); err != nil {
			C.sealwal_recovery_destroy(r)
			return nil, fmt.Errorf("sealwal: snapshot metadata: %w", err)
		}
		rec.Snapshot = &m
		rec.SnapshotSize = uint64(C.sealwal_recovery_snapshot_size(r))
	}
	return rec, nil
}

// Read reads the snapshot's data in order (io.Reader); every chunk is
// authenticated before it is returned. io.EOF at the end.
func (r *Recovery) Read(p []byte) (int, error) {
	if r.r == nil {
		return 0, errors.New("sealwal: recovery is closed")
	}
	if len(p) == 0 {
		return 0, nil
	}
	buf := C.malloc(C.size_t(len(p)))
	defer C.free(buf)
	var n C.size_t
	var msg *C.char
	if err := toError(C.sealwal_recovery_read_snapshot(r.r, buf, C.size_t(len(p)), &n, &msg), msg); err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, io.EOF
	}
	copy(p, unsafe.Slice((*byte)(buf), int(n)))
	return int(n), nil
}

// SnapshotData reads the whole snapshot data into memory.
func (r *Recovery) SnapshotData() ([]byte, error) {
	out := make([]byte, 0, r.SnapshotSize)
	buf := make([]byte, 1<<20)
	for {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// Close frees the recovery (the log stays with the store).
func (r *Recovery) Close() {
	if r.r != nil {
		C.sealwal_recovery_destroy(r.r)
		r.r = nil
	}
}

// FirstIndex is the first index the log holds (snapshot index + 1).
func (s *Store) FirstIndex() uint64 { return uint64(C.sealwal_log_first_index(s.s)) }

// LastIndex is the last index the log holds (FirstIndex - 1 when empty).
func (s *Store) LastIndex() uint64 { return uint64(C.sealwal_log_last_index(s.s)) }

// Term is entry i's term (the snapshot's term for FirstIndex - 1).
func (s *Store) Term(i uint64) (uint64, error) {
	var t C.uint64_t
	var msg *C.char
	if err := toError(C.sealwal_log_term(s.s, C.uint64_t(i), &t, &msg), msg); err != nil {
		return 0, err
	}
	return uint64(t), nil
}

// Entries returns entries [lo, hi), stopping once their data passes maxSize
// bytes (at least one entry is returned), as raft's Storage.Entries does.
func (s *Store) Entries(lo, hi, maxSize uint64) ([]raftpb.Entry, error) {
	var it *C.sealwal_entry_iter
	var msg *C.char
	if err := toError(C.sealwal_log_entries(s.s, C.uint64_t(lo), C.uint64_t(hi), &it, &msg), msg); err != nil {
		return nil, err
	}
	defer C.sealwal_entry_iter_destroy(it)
	var out []raftpb.Entry
	var size uint64
	for {
		var has C.int
		var e C.sealwal_entry
		if err := toError(C.sealwal_entry_iter_next(it, &has, &e, &msg), msg); err != nil {
			return nil, err
		}
		if has == 0 {
			return out, nil
		}
		ent := raftpb.Entry{Term: uint64(e.term), Index: uint64(e.index), Type: raftpb.EntryType(e._type)}
		if e.data_len > 0 {
			ent.Data = C.GoBytes(e.data, C.int(e.data_len))
		}
		size += uint64(ent.Size())
		if len(out) > 0 && size > maxSize {
			return out, nil
		}
		out = append(out, ent)
	}
}

// pack lays out entries for the shim: metadata without pointers plus one
// buffer holding every payload (cgo's pointer rules).
func pack(ents []raftpb.Entry) ([]C.sealwal_go_entry, []byte) {
	total := 0
	for i := range ents {
		total += len(ents[i].Data)
	}
	meta := make([]C.sealwal_go_entry, len(ents))
	buf := make([]byte, 0, total)
	for i := range ents {
		meta[i].term = C.uint64_t(ents[i].Term)
		meta[i].index = C.uint64_t(ents[i].Index)
		meta[i]._type = C.int32_t(ents[i].Type)
		meta[i].off = C.uint64_t(len(buf))
		meta[i].len = C.uint64_t(len(ents[i].Data))
		buf = append(buf, ents[i].Data...)
	}
	return meta, buf
}

func (s *Store) save(hs raftpb.HardState, ents []raftpb.Entry, done func(error)) error {
	meta, buf := pack(ents)
	var chs *C.sealwal_hardstate
	if !raft.IsEmptyHardState(hs) {
		chs = &C.sealwal_hardstate{term: C.uint64_t(hs.Term), vote: C.uint64_t(hs.Vote), commit: C.uint64_t(hs.Commit)}
	}
	var mp *C.sealwal_go_entry
	if len(meta) > 0 {
		mp = &meta[0]
	}
	var bp *C.char
	if len(buf) > 0 {
		bp = (*C.char)(unsafe.Pointer(&buf[0]))
	}
	var msg *C.char
	if done == nil {
		return toError(C.sealwal_go_save(s.s, chs, mp, C.size_t(len(meta)), bp, 0, 0, &msg), msg)
	}
	h := cgo.NewHandle(done)
	code := C.sealwal_go_save(s.s, chs, mp, C.size_t(len(meta)), bp, 1, C.uintptr_t(h), &msg)
	if code != C.SEALWAL_OK {
		h.Delete() // a refused batch: done is never called
	}
	return toError(code, msg)
}

// Save appends entries (an index at or below the last one overwrites from
// there) and the HardState (an empty one is not written), durable on
// return when raft needs it (entries, or a term or vote change). After a
// failed write or fsync the store is failed for good.
func (s *Store) Save(hs raftpb.HardState, ents []raftpb.Entry) error {
	return s.save(hs, ents, nil)
}

// Submit is the pipelined Save: it seals and queues the batch and returns;
// done is called once, in submission order, on the store's I/O thread,
// with nil once the batch is durable or the error that lost it. A refused
// batch returns its error and done is never called. done must not call
// into the store.
func (s *Store) Submit(hs raftpb.HardState, ents []raftpb.Entry, done func(error)) error {
	if done == nil {
		return errors.New("sealwal: Submit needs a done function")
	}
	return s.save(hs, ents, done)
}

// Flush waits for every submitted batch; it returns the store's first error.
func (s *Store) Flush() error {
	var msg *C.char
	return toError(C.sealwal_flush(s.s, &msg), msg)
}

// SaveSnapshot saves a snapshot held in memory: durable, then recorded in
// the WAL, then the WAL releases what is below it.
func (s *Store) SaveSnapshot(snap raftpb.Snapshot) error {
	md, err := snap.Metadata.Marshal()
	if err != nil {
		return err
	}
	var dp unsafe.Pointer
	if len(snap.Data) > 0 {
		dp = unsafe.Pointer(&snap.Data[0])
	}
	var msg *C.char
	return toError(C.sealwal_save_snapshot(s.s, bytesPtr(md), C.size_t(len(md)), dp,
		C.size_t(len(snap.Data)), &msg), msg)
}

// SnapshotWriter streams a snapshot's data (io.Writer), for snapshots too
// large for memory: Write the data, then Commit or Abort.
type SnapshotWriter struct {
	w *C.sealwal_snapshot_writer
}

// SnapshotWriter begins a streamed snapshot. No other store call may run
// until it is committed or aborted.
func (s *Store) SnapshotWriter(m raftpb.SnapshotMetadata) (*SnapshotWriter, error) {
	md, err := m.Marshal()
	if err != nil {
		return nil, err
	}
	var w *C.sealwal_snapshot_writer
	var msg *C.char
	if err := toError(C.sealwal_snapshot_begin(s.s, bytesPtr(md), C.size_t(len(md)), &w, &msg), msg); err != nil {
		return nil, err
	}
	return &SnapshotWriter{w: w}, nil
}

// Write appends data to the snapshot.
func (w *SnapshotWriter) Write(p []byte) (int, error) {
	if w.w == nil {
		return 0, errors.New("sealwal: snapshot writer is closed")
	}
	if len(p) == 0 {
		return 0, nil
	}
	var msg *C.char
	if err := toError(C.sealwal_snapshot_write(w.w, unsafe.Pointer(&p[0]), C.size_t(len(p)), &msg), msg); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Commit makes the snapshot durable and records it.
func (w *SnapshotWriter) Commit() error {
	if w.w == nil {
		return errors.New("sealwal: snapshot writer is closed")
	}
	var msg *C.char
	err := toError(C.sealwal_snapshot_commit(w.w, &msg), msg)
	w.w = nil
	return err
}

// Abort drops the snapshot; nothing is left behind.
func (w *SnapshotWriter) Abort() {
	if w.w != nil {
		C.sealwal_snapshot_abort(w.w)
		w.w = nil
	}
}

// GC keeps the keep newest snapshots (>= 1) and the WAL they need.
func (s *Store) GC(keep int) error {
	if keep < 1 {
		return &Error{Code: CodeInvalidArgument, Msg: "gc must keep at least one snapshot"}
	}
	var msg *C.char
	return toError(C.sealwal_gc(s.s, C.size_t(keep), &msg), msg)
}

// RequestRotation asks for a DEK rotation (no-op for a plaintext store).
func (s *Store) RequestRotation() { C.sealwal_request_rotation(s.s) }

// Poll notices an operator's rotation request in the key file and runs any
// due rotation step, as a save does; an idle node calls it now and then.
func (s *Store) Poll() error {
	var msg *C.char
	return toError(C.sealwal_poll(s.s, &msg), msg)
}
