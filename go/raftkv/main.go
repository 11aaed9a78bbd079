// raftkv is a replicated key-value store on etcd's raft that keeps its Raft
// log and snapshots in sealwal: the proof that sealwal can replace etcd's
// wal and snap packages under a real consensus implementation. Its flags
// and HTTP API follow etcd's contrib/raftexample (see http.go), plus:
//
//	--data-dir DIR       the node's sealwal store, created (encrypted) when
//	                     missing or empty; a store made by `sealwal store
//	                     init DIR` is used as it is
//	--snapshot-count N   a snapshot every N applied entries
//	--plaintext          a new store is plaintext
//	--storage etcd       etcd's wal/snap packages instead (DIR/wal,
//	                     DIR/snap): the benchmark's peer
//
// The unlock key of the store's key file comes from SEALWAL_UNLOCK_KEY.
// The key rotator's snapshot requests (`sealwal store rotate DIR` on a
// running node, or a DEK's age or count) are answered with a snapshot of
// the key-value state.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"sealwal.dev/go/sealwal"
)

func usage() {
	fmt.Fprintf(os.Stderr, `usage: raftkv --id N --cluster URL1,URL2,... --port P [--join] [--data-dir DIR]
              [--snapshot-count N] [--plaintext] [--storage sealwal|etcd] [--host H]
              [--preallocation zero-fill|fallocate]

A replicated key-value store on etcd's raft, its log and snapshots kept in
sealwal (encrypted at rest). PUT /KEY (body: value; ?wait=1 answers once
committed), GET /KEY, POST /NODE_ID (body: raft URL), DELETE /NODE_ID.
The unlock key of an encrypted store comes from SEALWAL_UNLOCK_KEY.

`)
	flag.PrintDefaults()
}

func main() {
	// etcd's packages point the standard logger at capnslog when loaded;
	// take it back so that each line has one time stamp.
	log.SetOutput(os.Stderr)
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	flag.Usage = usage
	cluster := flag.String("cluster", "http://127.0.0.1:9021", "comma-separated raft URLs of the members, in id order")
	id := flag.Uint64("id", 1, "this node's id (its URL is the id-th of --cluster)")
	port := flag.Int("port", 9121, "key-value HTTP port")
	host := flag.String("host", "127.0.0.1", "key-value HTTP address")
	join := flag.Bool("join", false, "join an existing cluster")
	dataDir := flag.String("data-dir", "", "the node's store (default raftkv-ID)")
	snapCount := flag.Uint64("snapshot-count", 10000, "applied entries between snapshots")
	plaintext := flag.Bool("plaintext", false, "a new store is plaintext")
	storage := flag.String("storage", "sealwal", "sealwal, or etcd (etcd's wal/snap packages)")
	prealloc := flag.String("preallocation", "zero-fill", "how sealwal reserves WAL segments: zero-fill or fallocate (etcd's way)")
	flag.Parse()
	fail := func(format string, a ...interface{}) {
		fmt.Fprintf(os.Stderr, "raftkv: "+format+"\n", a...)
		os.Exit(2)
	}
	if flag.NArg() > 0 {
		fail("unexpected argument %q", flag.Arg(0))
	}
	peers := strings.Split(*cluster, ",")
	if *id == 0 || *id > uint64(len(peers)) {
		fail("--id %d: must be 1..%d (the members of --cluster)", *id, len(peers))
	}
	if *snapCount == 0 {
		fail("--snapshot-count must be >= 1")
	}
	dir := *dataDir
	if dir == "" {
		dir = "raftkv-" + strconv.FormatUint(*id, 10)
	}
	cfg := nodeConfig{id: *id, peers: peers, join: *join, snapCount: *snapCount}
	switch *storage {
	case "sealwal":
		if *prealloc != "zero-fill" && *prealloc != "fallocate" {
			fail("--preallocation %q: zero-fill or fallocate", *prealloc)
		}
		key := os.Getenv("SEALWAL_UNLOCK_KEY")
		cfg.open = func(onRequest func(uint64)) (durable, error) {
			return openSealwal(dir, key, *plaintext, *prealloc == "fallocate", onRequest)
		}
	case "etcd":
		cfg.open = func(func(uint64)) (durable, error) { return openEtcd(dir) }
	default:
		fail("--storage %q: sealwal or etcd", *storage)
	}

	kv := newKV()
	n, err := startNode(cfg, kv)
	if err != nil {
		if sealwal.IsCode(err, sealwal.CodePermissionDenied) {
			fail("%s: %v (set SEALWAL_UNLOCK_KEY to the store's unlock key)", dir, err)
		}
		fail("%s: %v", dir, err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*port)))
	if err != nil {
		n.Stop()
		fail("%v", err)
	}
	go http.Serve(ln, &httpAPI{n: n, kv: kv})
	log.Printf("raftkv: node %d serving on %s (%s storage in %s)", *id, ln.Addr(), *storage, dir)

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	select {
	case s := <-sigs:
		log.Printf("raftkv: %v: stopping", s)
		if err := n.Stop(); err != nil {
			fail("%v", err)
		}
	case err := <-n.Done():
		if err != nil {
			fail("%v", err)
		}
	}
}
