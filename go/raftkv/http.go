package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"time"

	"go.etcd.io/etcd/raft/raftpb"
)

// How long a PUT waits for raft to take the proposal, and with ?wait=1
// for it to be committed and applied here.
const (
	proposeTimeout = 5 * time.Second
	commitTimeout  = 10 * time.Second
)

// httpAPI serves raftexample's API:
//
//	PUT /KEY (value as body)  propose; 204 once raft took it, or with
//	                          ?wait=1 once it is committed and applied here
//	GET /KEY                  the value applied here (404 when none)
//	POST /NODE_ID (URL body)  add a member; DELETE /NODE_ID removes one
type httpAPI struct {
	n  *node
	kv *kvStore
}

func newID() uint64 {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return binary.LittleEndian.Uint64(b[:])
}

func (h *httpAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer r.Body.Close()
	// Who leads, as this node knows it (tests kill a follower by it).
	w.Header().Set("X-Raftkv-Leader", strconv.FormatUint(h.n.Leader(), 10))
	key := r.URL.Path
	switch r.Method {
	case http.MethodPut:
		v, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "raftkv: reading the body: "+err.Error(), http.StatusBadRequest)
			return
		}
		wait := r.URL.Query().Get("wait") == "1"
		c := command{ID: newID(), Key: key, Val: string(v)}
		data, _ := json.Marshal(c)
		var applied chan struct{}
		if wait {
			applied = h.kv.Wait(c.ID)
		}
		ctx, cancel := context.WithTimeout(r.Context(), proposeTimeout)
		err = h.n.Propose(ctx, data)
		cancel()
		if err != nil {
			h.kv.Forget(c.ID)
			http.Error(w, "raftkv: propose: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		if wait {
			select {
			case <-applied:
			case <-time.After(commitTimeout):
				// Lost in a leader change, or not yet committed: the client
				// may retry (a PUT is idempotent).
				h.kv.Forget(c.ID)
				http.Error(w, "raftkv: not committed in time", http.StatusGatewayTimeout)
				return
			case <-r.Context().Done():
				h.kv.Forget(c.ID)
				return
			}
		}
		w.WriteHeader(http.StatusNoContent)
	case http.MethodGet:
		if v, ok := h.kv.Lookup(key); ok {
			w.Write([]byte(v))
		} else {
			http.Error(w, "raftkv: no such key", http.StatusNotFound)
		}
	case http.MethodPost, http.MethodDelete:
		id, err := strconv.ParseUint(key[1:], 0, 64)
		if err != nil || id == 0 {
			http.Error(w, "raftkv: the path must be a node id", http.StatusBadRequest)
			return
		}
		cc := raftpb.ConfChange{Type: raftpb.ConfChangeRemoveNode, NodeID: id}
		if r.Method == http.MethodPost {
			u, err := io.ReadAll(r.Body)
			if err != nil || len(u) == 0 {
				http.Error(w, "raftkv: the body must be the new node's raft URL", http.StatusBadRequest)
				return
			}
			cc = raftpb.ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: id, Context: u}
		}
		ctx, cancel := context.WithTimeout(r.Context(), proposeTimeout)
		defer cancel()
		if err := h.n.ProposeConfChange(ctx, cc); err != nil {
			http.Error(w, "raftkv: propose: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "PUT, GET, POST, DELETE")
		http.Error(w, "raftkv: method not allowed", http.StatusMethodNotAllowed)
	}
}
