package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"go.etcd.io/etcd/etcdserver/api/rafthttp"
	stats "go.etcd.io/etcd/etcdserver/api/v2stats"
	"go.etcd.io/etcd/pkg/types"
	"go.etcd.io/etcd/raft"
	"go.etcd.io/etcd/raft/raftpb"
	"go.uber.org/zap"
)

// Entries kept in memory after a snapshot so that a slow follower gets
// entries rather than a whole snapshot: etcd keeps 5000; fewer when
// snapshots are more frequent than that.
const maxCatchUpEntries = 5000

type nodeConfig struct {
	id        uint64
	peers     []string // raft URLs, peers[id-1] is ours
	join      bool
	snapCount uint64
	// Opens the node's durable storage; onRequest is the key rotator's
	// snapshot request (sealwal only).
	open func(onRequest func(minIndex uint64)) (durable, error)
}

// node runs one Raft member: etcd's raft, persisted through a durable, with
// the log raft reads in a raft.MemoryStorage (compacted after snapshots),
// as etcd's own server does.
//
// One goroutine (run) owns the Ready loop, the durable and every field
// below kv; HTTP handlers only propose and read kv.
type node struct {
	cfg       nodeConfig
	kv        *kvStore
	rn        raft.Node
	transport *rafthttp.Transport
	raftSrv   *http.Server

	store     durable
	mem       *raft.MemoryStorage
	confState raftpb.ConfState
	snapIndex uint64
	applied   uint64
	// The key rotator's request: a snapshot at an index >= rotationMin
	// (0: none).
	rotationMin uint64

	stopc chan struct{}
	done  chan error // run's end: nil after stop, else the error
}

func startNode(cfg nodeConfig, kv *kvStore) (*node, error) {
	n := &node{cfg: cfg, kv: kv, stopc: make(chan struct{}), done: make(chan error, 1)}
	store, err := cfg.open(func(minIndex uint64) {
		// Called inside a durable call, on run's goroutine.
		log.Printf("raftkv: key rotation asks for a snapshot at index >= %d", minIndex)
		if minIndex > n.rotationMin {
			n.rotationMin = minIndex
		}
	})
	if err != nil {
		return nil, err
	}
	n.store = store
	snapshot, hs, ents, err := store.Recover()
	if err != nil {
		store.Close()
		return nil, err
	}
	n.mem = raft.NewMemoryStorage()
	existed := snapshot != nil || !raft.IsEmptyHardState(hs) || len(ents) > 0
	if snapshot != nil {
		if err := n.mem.ApplySnapshot(*snapshot); err != nil {
			store.Close()
			return nil, err
		}
		if err := kv.Restore(snapshot.Data); err != nil {
			store.Close()
			return nil, fmt.Errorf("snapshot %d: %w", snapshot.Metadata.Index, err)
		}
		n.confState = snapshot.Metadata.ConfState
		n.snapIndex = snapshot.Metadata.Index
		n.applied = snapshot.Metadata.Index
	}
	if err := n.mem.SetHardState(hs); err != nil {
		store.Close()
		return nil, err
	}
	if err := n.mem.Append(ents); err != nil {
		store.Close()
		return nil, err
	}
	log.Printf("raftkv: node %d recovered: snapshot %d, %d entries, commit %d", cfg.id, n.snapIndex,
		len(ents), hs.Commit)

	c := &raft.Config{
		ID:                        cfg.id,
		ElectionTick:              10,
		HeartbeatTick:             1,
		Storage:                   n.mem,
		Applied:                   n.applied,
		MaxSizePerMsg:             1 << 20,
		MaxInflightMsgs:           256,
		MaxUncommittedEntriesSize: 1 << 30,
		Logger:                    quietLogger{&raft.DefaultLogger{Logger: log.Default()}},
	}
	if existed {
		n.rn = raft.RestartNode(c)
	} else {
		var peers []raft.Peer
		if !cfg.join {
			for i := range cfg.peers {
				peers = append(peers, raft.Peer{ID: uint64(i + 1)})
			}
		}
		n.rn = raft.StartNode(c, peers)
	}

	n.transport = &rafthttp.Transport{
		Logger:      zap.NewNop(),
		ID:          types.ID(cfg.id),
		ClusterID:   0x5ea1,
		Raft:        n,
		ServerStats: stats.NewServerStats("", ""),
		LeaderStats: stats.NewLeaderStats(strconv.FormatUint(cfg.id, 10)),
		ErrorC:      make(chan error, 1),
	}
	if err := n.transport.Start(); err != nil {
		n.rn.Stop()
		store.Close()
		return nil, err
	}
	for i, p := range cfg.peers {
		if uint64(i+1) != cfg.id {
			n.transport.AddPeer(types.ID(i+1), []string{p})
		}
	}
	u, err := url.Parse(cfg.peers[cfg.id-1])
	if err != nil {
		return nil, fmt.Errorf("--cluster: %w", err)
	}
	ln, err := net.Listen("tcp", u.Host)
	if err != nil {
		n.transport.Stop()
		n.rn.Stop()
		store.Close()
		return nil, err
	}
	n.raftSrv = &http.Server{Handler: n.transport.Handler()}
	go n.raftSrv.Serve(ln)
	go n.run()
	return n, nil
}

// Stop ends the Ready loop and closes the storage; returns run's error.
func (n *node) Stop() error {
	close(n.stopc)
	return <-n.done
}

// Done delivers the error that ended the node (nil after Stop).
func (n *node) Done() <-chan error { return n.done }

func (n *node) run() {
	err := n.loop()
	n.raftSrv.Close()
	n.transport.Stop()
	n.rn.Stop()
	if cerr := n.store.Close(); err == nil {
		err = cerr
	}
	n.done <- err
}

func (n *node) loop() error {
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	poll := time.NewTicker(time.Second)
	defer poll.Stop()
	for {
		select {
		case <-ticker.C:
			n.rn.Tick()
		case <-poll.C:
			if err := n.store.Poll(); err != nil {
				return fmt.Errorf("storage: %w", err)
			}
			if err := n.maybeSnapshot(true); err != nil {
				return err
			}
		case rd := <-n.rn.Ready():
			if err := n.handle(rd); err != nil {
				return err
			}
			n.rn.Advance()
		case err := <-n.transport.ErrorC:
			return fmt.Errorf("transport: %w", err)
		case <-n.stopc:
			return nil
		}
	}
}

// handle persists a Ready, then sends its messages, then applies what it
// committed: nothing leaves this node before it is durable.
func (n *node) handle(rd raft.Ready) error {
	if !raft.IsEmptySnap(rd.Snapshot) {
		// A snapshot from the leader. Saved before the entries that follow
		// it (the log refuses a gap), as etcd 3.5's server orders them.
		if err := n.store.SaveSnapshot(rd.Snapshot); err != nil {
			return fmt.Errorf("storage: save snapshot: %w", err)
		}
		if err := n.mem.ApplySnapshot(rd.Snapshot); err != nil {
			return err
		}
		if err := n.kv.Restore(rd.Snapshot.Data); err != nil {
			return fmt.Errorf("snapshot %d: %w", rd.Snapshot.Metadata.Index, err)
		}
		n.confState = rd.Snapshot.Metadata.ConfState
		n.snapIndex = rd.Snapshot.Metadata.Index
		n.applied = rd.Snapshot.Metadata.Index
		log.Printf("raftkv: installed the leader's snapshot at %d", n.snapIndex)
	}
	if err := n.store.Save(rd.HardState, rd.Entries); err != nil {
		return fmt.Errorf("storage: save: %w", err)
	}
	if err := n.mem.Append(rd.Entries); err != nil {
		return err
	}
	n.transport.Send(rd.Messages)
	if err := n.apply(rd.CommittedEntries); err != nil {
		return err
	}
	return n.maybeSnapshot(false)
}

func (n *node) apply(ents []raftpb.Entry) error {
	for i := range ents {
		e := &ents[i]
		if e.Index <= n.applied {
			continue
		}
		switch e.Type {
		case raftpb.EntryNormal:
			n.kv.Apply(e.Data)
		case raftpb.EntryConfChange:
			var cc raftpb.ConfChange
			if err := cc.Unmarshal(e.Data); err != nil {
				return fmt.Errorf("entry %d: conf change: %w", e.Index, err)
			}
			n.confState = *n.rn.ApplyConfChange(cc)
			switch cc.Type {
			case raftpb.ConfChangeAddNode:
				if len(cc.Context) > 0 && cc.NodeID != n.cfg.id {
					n.transport.AddPeer(types.ID(cc.NodeID), []string{string(cc.Context)})
				}
			case raftpb.ConfChangeRemoveNode:
				if cc.NodeID == n.cfg.id {
					return errRemoved
				}
				n.transport.RemovePeer(types.ID(cc.NodeID))
			}
		}
		n.applied = e.Index
	}
	return nil
}

var errRemoved = errors.New("this node was removed from the cluster")

// maybeSnapshot takes a snapshot every snapCount applied entries, and when
// the key rotator asked for one and the applied index has reached its
// minimum. Until then a rotation proposes an empty entry at each poll
// (nudge), so that an idle cluster still moves its log past the minimum.
func (n *node) maybeSnapshot(nudge bool) error {
	rotation := n.rotationMin > 0
	if rotation && n.applied < n.rotationMin {
		if nudge {
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				n.rn.Propose(ctx, nil)
			}()
		}
		rotation = false
	}
	if !rotation && n.applied-n.snapIndex < n.cfg.snapCount {
		return nil
	}
	if n.applied <= n.snapIndex {
		return nil
	}
	data, err := n.kv.Snapshot()
	if err != nil {
		return err
	}
	snap, err := n.mem.CreateSnapshot(n.applied, &n.confState, data)
	if errors.Is(err, raft.ErrSnapOutOfDate) {
		return nil
	}
	if err != nil {
		return err
	}
	if rotation {
		n.rotationMin = 0 // a request made inside SaveSnapshot is a new one
	}
	if err := n.store.SaveSnapshot(snap); err != nil {
		return fmt.Errorf("storage: save snapshot: %w", err)
	}
	n.snapIndex = n.applied
	// Keep catch-up entries in memory. Compacting at or below what is
	// already compacted is not an error here (raftexample panics on it).
	catchUp := n.cfg.snapCount
	if catchUp > maxCatchUpEntries {
		catchUp = maxCatchUpEntries
	}
	if n.applied > catchUp {
		if err := n.mem.Compact(n.applied - catchUp); err != nil && !errors.Is(err, raft.ErrCompacted) {
			return err
		}
	}
	if err := n.store.GC(); err != nil {
		return fmt.Errorf("storage: gc: %w", err)
	}
	if rotation {
		log.Printf("raftkv: snapshot at %d for the key rotation", n.applied)
	}
	return nil
}

// Leader is the leader this node knows of (0: none).
func (n *node) Leader() uint64 { return n.rn.Status().Lead }

// Propose hands a command to raft (any member; followers forward it).
func (n *node) Propose(ctx context.Context, data []byte) error { return n.rn.Propose(ctx, data) }

// ProposeConfChange hands a membership change to raft.
func (n *node) ProposeConfChange(ctx context.Context, cc raftpb.ConfChange) error {
	return n.rn.ProposeConfChange(ctx, cc)
}

// rafthttp.Raft
func (n *node) Process(ctx context.Context, m raftpb.Message) error { return n.rn.Step(ctx, m) }
func (n *node) IsIDRemoved(id uint64) bool                          { return false }
func (n *node) ReportUnreachable(id uint64)                         { n.rn.ReportUnreachable(id) }
func (n *node) ReportSnapshot(id uint64, status raft.SnapshotStatus) {
	n.rn.ReportSnapshot(id, status)
}

// quietLogger drops raft's info and debug lines (one per election and
// message type) and keeps warnings and errors.
type quietLogger struct{ *raft.DefaultLogger }

func (quietLogger) Debug(...interface{})          {}
func (quietLogger) Debugf(string, ...interface{}) {}
func (quietLogger) Info(...interface{})           {}
func (quietLogger) Infof(string, ...interface{})  {}
