package main

// Three raftkv processes on loopback, killed and restarted: writes
// committed through any node are served by every node, a follower killed
// mid-load catches up, acknowledged writes survive all three being killed,
// a DEK rotation requested on a running node completes, and no value
// reaches the disk in plaintext.
//
// Needs the sealwal CLI (SEALWAL_CLI_BIN) for `store init/rotate/inspect`;
// builds raftkv itself.

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const testUnlockKey = "SEALWAL-1-AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"

var raftkvBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "raftkv-bin")
	if err != nil {
		panic(err)
	}
	raftkvBin = filepath.Join(dir, "raftkv")
	build := exec.Command("go", "build", "-o", raftkvBin, "sealwal.dev/go/raftkv")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "raftkv test: go build: %v\n", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type cluster struct {
	t         *testing.T
	dir       string
	raftURLs  []string
	httpPorts []int
	procs     []*exec.Cmd
	snapCount int
	client    *http.Client
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func newCluster(t *testing.T, snapCount int) *cluster {
	c := &cluster{t: t, dir: t.TempDir(), snapCount: snapCount, procs: make([]*exec.Cmd, 3),
		client: &http.Client{Timeout: 20 * time.Second}}
	for i := 0; i < 3; i++ {
		c.raftURLs = append(c.raftURLs, fmt.Sprintf("http://127.0.0.1:%d", freePort(t)))
		c.httpPorts = append(c.httpPorts, freePort(t))
	}
	t.Cleanup(func() {
		for i := range c.procs {
			c.kill(i)
		}
	})
	return c
}

func (c *cluster) dataDir(i int) string { return filepath.Join(c.dir, fmt.Sprintf("node%d", i+1)) }

func (c *cluster) url(i int, path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", c.httpPorts[i], path)
}

// start runs node i and waits until it serves HTTP.
func (c *cluster) start(i int) {
	c.t.Helper()
	logf, err := os.OpenFile(filepath.Join(c.dir, fmt.Sprintf("node%d.log", i+1)), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(raftkvBin, "--id", strconv.Itoa(i+1), "--cluster", strings.Join(c.raftURLs, ","),
		"--port", strconv.Itoa(c.httpPorts[i]), "--data-dir", c.dataDir(i),
		"--snapshot-count", strconv.Itoa(c.snapCount))
	cmd.Env = append(os.Environ(), "SEALWAL_UNLOCK_KEY="+testUnlockKey)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	logf.Close()
	c.procs[i] = cmd
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := c.client.Get(c.url(i, "/-probe"))
		if err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("node %d did not start:\n%s", i+1, c.log(i))
}

func (c *cluster) log(i int) string {
	b, _ := os.ReadFile(filepath.Join(c.dir, fmt.Sprintf("node%d.log", i+1)))
	return string(b)
}

func (c *cluster) startAll() {
	for i := 0; i < 3; i++ {
		c.start(i)
	}
}

// kill sends SIGKILL: no shutdown code runs.
func (c *cluster) kill(i int) {
	if p := c.procs[i]; p != nil {
		p.Process.Signal(syscall.SIGKILL)
		p.Wait()
		c.procs[i] = nil
	}
}

// stop sends SIGTERM and expects a clean exit.
func (c *cluster) stop(i int) {
	c.t.Helper()
	if p := c.procs[i]; p != nil {
		p.Process.Signal(syscall.SIGTERM)
		if err := p.Wait(); err != nil {
			c.t.Errorf("node %d: %v\n%s", i+1, err, c.log(i))
		}
		c.procs[i] = nil
	}
}

// put sends PUT ?wait=1 to node i: true once the write is committed.
func (c *cluster) put(i int, key, val string) bool {
	req, _ := http.NewRequest(http.MethodPut, c.url(i, "/"+key+"?wait=1"), strings.NewReader(val))
	resp, err := c.client.Do(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusNoContent
}

// putRetry tries node i, then the others, until the write is committed.
func (c *cluster) putRetry(i int, key, val string) {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for k := i; time.Now().Before(deadline); k++ {
		if c.procs[k%3] != nil && c.put(k%3, key, val) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("PUT %s was not committed in 60 s", key)
}

func (c *cluster) get(i int, key string) (string, bool, uint64) {
	resp, err := c.client.Get(c.url(i, "/"+key))
	if err != nil {
		return "", false, 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	lead, _ := strconv.ParseUint(resp.Header.Get("X-Raftkv-Leader"), 10, 64)
	return string(b), resp.StatusCode == http.StatusOK, lead
}

// waitAll waits until node i serves every key with its value.
func (c *cluster) waitAll(i int, want map[string]string) {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for key, val := range want {
		for {
			got, ok, _ := c.get(i, key)
			if ok && got == val {
				break
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("node %d: %s = %q (found %v), want %q\n%s", i+1, key, got, ok, val, c.log(i))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// putRange commits keys PREFIX<lo>..PREFIX<hi-1>, each with a fresh
// secret value, round robin over the nodes, and records them in want.
func (c *cluster) putRange(prefix string, lo, hi int, want map[string]string) {
	c.t.Helper()
	for k := lo; k < hi; k++ {
		key, val := fmt.Sprintf("%s%d", prefix, k), secret()
		c.putRetry(k%3, key, val)
		want[key] = val
	}
}

// waitEvery waits until every node serves every key in want.
func (c *cluster) waitEvery(want map[string]string) {
	c.t.Helper()
	for i := 0; i < 3; i++ {
		c.waitAll(i, want)
	}
}

// leader is the leader's index (0-based) once one is known.
func (c *cluster) leader() int {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for i := 0; i < 3; i++ {
			if c.procs[i] == nil {
				continue
			}
			if _, _, lead := c.get(i, "-probe"); lead >= 1 && lead <= 3 {
				return int(lead) - 1
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatal("no leader in 20 s")
	return -1
}

func secret() string {
	b := make([]byte, 12)
	rand.Read(b)
	return "plain-" + hex.EncodeToString(b)
}

func cli(t *testing.T) string {
	bin := os.Getenv("SEALWAL_CLI_BIN")
	if bin == "" {
		t.Skip("SEALWAL_CLI_BIN is not set (ctest sets it)")
	}
	return bin
}

func runCLI(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(cli(t), args...)
	cmd.Env = append(os.Environ(), "SEALWAL_UNLOCK_KEY="+testUnlockKey)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("sealwal %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

func TestCommitsFromAnyNodeAreServedByEveryNode(t *testing.T) {
	c := newCluster(t, 1000)
	// Node 2's store was made beforehand by the CLI: used as it is.
	runCLI(t, "store", "init", c.dataDir(1), "--autolock")
	c.startAll()
	want := map[string]string{}
	c.putRange("k", 0, 60, want)
	c.waitEvery(want)
}

func TestFollowerKilledMidLoadCatchesUp(t *testing.T) {
	// Small snapshots: the follower falls behind the leader's in-memory
	// log and catches up through a snapshot, then entries.
	c := newCluster(t, 20)
	c.startAll()
	lead := c.leader()
	follower := (lead + 1) % 3
	want := map[string]string{}
	var mu sync.Mutex
	for k := 0; k < 300; k++ {
		if k == 100 {
			c.kill(follower)
		}
		if k == 250 {
			c.start(follower)
		}
		key, val := fmt.Sprintf("f%d", k), secret()
		c.putRetry(lead, key, val)
		mu.Lock()
		want[key] = val
		mu.Unlock()
	}
	c.waitAll(follower, want)
	if !strings.Contains(c.log(follower), "installed the leader's snapshot") {
		t.Errorf("node %d caught up without a snapshot: the test missed that path\n%s", follower+1, c.log(follower))
	}
	// And once more from its own store alone first: restart it again.
	c.stop(follower)
	c.start(follower)
	c.waitAll(follower, want)
}

func TestAcknowledgedWritesSurviveKillingEveryNode(t *testing.T) {
	c := newCluster(t, 50)
	c.startAll()
	var mu sync.Mutex
	acked := map[string]string{}
	stopLoad := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for k := 0; ; k++ {
				select {
				case <-stopLoad:
					return
				default:
				}
				key, val := fmt.Sprintf("w%d-%d", w, k), secret()
				if c.put((w+k)%3, key, val) {
					mu.Lock()
					acked[key] = val
					mu.Unlock()
				}
			}
		}(w)
	}
	time.Sleep(3 * time.Second)
	for i := 0; i < 3; i++ {
		c.kill(i)
	}
	close(stopLoad)
	wg.Wait()
	mu.Lock()
	n := len(acked)
	mu.Unlock()
	if n < 20 {
		t.Fatalf("only %d writes were acknowledged before the kill", n)
	}
	c.startAll()
	c.waitEvery(acked)
	t.Logf("%d acknowledged writes served by every node after SIGKILL of all three", n)
}

// inspect parses `sealwal store inspect` into the current DEK and the keys
// retained files need.
func inspect(t *testing.T, dir string) (current string, pending string, fileKeys []string) {
	out := runCLI(t, "store", "inspect", dir)
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) >= 2 && f[0] == "raft-dek":
			current = f[1]
		case len(f) >= 2 && f[0] == "raft-dek-pending":
			pending = f[1]
		case len(f) >= 2 && (f[0] == "segment" || f[0] == "snapshot"):
			for j := 0; j+1 < len(f); j++ {
				if f[j] == "key" {
					fileKeys = append(fileKeys, f[j+1])
				}
			}
		}
	}
	return current, pending, fileKeys
}

func TestRotationOnARunningNodeAndNoPlaintextOnDisk(t *testing.T) {
	c := newCluster(t, 1000)
	c.startAll()
	want := map[string]string{}
	c.putRange("r", 0, 40, want)
	old, _, _ := inspect(t, c.dataDir(0))
	runCLI(t, "store", "rotate", c.dataDir(0))
	// Within a few snapshot intervals (here: the next poll) the old DEK is
	// gone from node 1's key file and no retained file needs it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		cur, pending, keys := inspect(t, c.dataDir(0))
		done := cur != old && pending == "none"
		for _, k := range keys {
			if k == old {
				done = false
			}
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rotation did not finish: raft-dek %s (old %s), pending %s, file keys %v\n%s",
				cur, old, pending, keys, c.log(0))
		}
		time.Sleep(200 * time.Millisecond)
	}
	keyFile, err := os.ReadFile(filepath.Join(c.dataDir(0), "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(keyFile, []byte("raft-dek-needs-rotation")) {
		t.Fatalf("the request is still in the key file")
	}
	// No write lost, and more after the rotation.
	c.putRange("r", 40, 60, want)
	c.waitEvery(want)
	for i := 0; i < 3; i++ {
		c.stop(i)
	}
	// Every byte every node wrote: no value in the clear.
	for i := 0; i < 3; i++ {
		filepath.Walk(c.dataDir(i), func(p string, info os.FileInfo, err error) error {
			if err != nil || info.IsDir() {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			for key, val := range want {
				if bytes.Contains(data, []byte(val)) {
					t.Errorf("%s holds the value of %s in plaintext", p, key)
				}
			}
			return nil
		})
	}
}
