package main

import (
	"encoding/json"
	"sync"
)

// command is one PUT, as a log entry's data. ID lets the node that
// proposed it tell the waiting client once it is applied.
type command struct {
	ID  uint64 `json:"id"`
	Key string `json:"k"`
	Val string `json:"v"`
}

// kvStore is the replicated state machine: a map, changed only by applying
// committed entries in log order, and its snapshot image.
type kvStore struct {
	mu      sync.RWMutex
	m       map[string]string
	waiters map[uint64]chan struct{} // proposals waiting to be applied
}

func newKV() *kvStore {
	return &kvStore{m: map[string]string{}, waiters: map[uint64]chan struct{}{}}
}

func (kv *kvStore) Lookup(key string) (string, bool) {
	kv.mu.RLock()
	defer kv.mu.RUnlock()
	v, ok := kv.m[key]
	return v, ok
}

// Wait registers a proposal; the channel closes once it is applied here.
func (kv *kvStore) Wait(id uint64) chan struct{} {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	ch := make(chan struct{})
	kv.waiters[id] = ch
	return ch
}

// Forget drops a waiter that gave up.
func (kv *kvStore) Forget(id uint64) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	delete(kv.waiters, id)
}

// Apply applies one committed entry's data (ignored when it is not a
// command: raft's empty entries, or the no-ops a rotation proposes).
func (kv *kvStore) Apply(data []byte) {
	var c command
	if len(data) == 0 || json.Unmarshal(data, &c) != nil {
		return
	}
	kv.mu.Lock()
	defer kv.mu.Unlock()
	kv.m[c.Key] = c.Val
	if ch, ok := kv.waiters[c.ID]; ok {
		close(ch)
		delete(kv.waiters, c.ID)
	}
}

// Snapshot is the image of the map.
func (kv *kvStore) Snapshot() ([]byte, error) {
	kv.mu.RLock()
	defer kv.mu.RUnlock()
	return json.Marshal(kv.m)
}

// Restore replaces the map with a snapshot image.
func (kv *kvStore) Restore(data []byte) error {
	m := map[string]string{}
	if len(data) > 0 {
		if err := json.Unmarshal(data, &m); err != nil {
			return err
		}
	}
	kv.mu.Lock()
	defer kv.mu.Unlock()
	kv.m = m
	return nil
}
