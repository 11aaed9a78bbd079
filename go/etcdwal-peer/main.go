// etcdwal-peer: sealwal's etcd interop driver. A small program around the
// real etcd wal/snap packages (Debian golang-etcd-server-dev, etcd 3.4.x,
// import paths go.etcd.io/etcd/...), so that etcd's own code writes and
// checks what sealwal's tests and benchmarks compare against.
//
// It is (a) the etcd side of scripts/bench*.sh and (b) the generator/checker
// of the interop fixtures and the reader the interop tests run on sealwal's
// files. Build: scripts/build_peer.sh [BUILD_DIR] (see README.md here).
//
// Subcommands:
//
//	bench-append --dir D --entries N --size S --batch B [--encrypt secretbox] [--segment-size BYTES] [--nosync]
//	bench-read   --dir D [--encrypt secretbox] [--mode read|write]
//	bench-snap   --dir D --size BYTES [--encrypt secretbox]
//	gen-fixtures --out D
//	check-dir    --dir D --manifest M        (M may be a fixture manifest or the index manifest)
//	dump         --dir D [--snap-index I --snap-term T] [--entries] [--records] [--key-hex K]
//	dump-jsonl   --dir D [--snap-index I --snap-term T] [--key-hex HEX] [--mode read|write]
//	gen-random   --out D --seed S [--entries N] [--segment-size BYTES] [--max-size BYTES]
//	version
package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	mrand "math/rand"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/etcd/etcdserver/api/snap"
	"go.etcd.io/etcd/raft/raftpb"
	"go.etcd.io/etcd/version"
	"go.etcd.io/etcd/wal"
	"go.etcd.io/etcd/wal/walpb"
	"go.uber.org/zap"
	"golang.org/x/crypto/nacl/secretbox"
	"google.golang.org/protobuf/encoding/protowire"
)

var lg = zap.NewNop()

func die(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "etcdwal-peer: "+format+"\n", a...)
	os.Exit(1)
}

func must(err error, what string) {
	if err != nil {
		die("%s: %v", what, err)
	}
}

func printJSON(v interface{}) {
	b, err := json.Marshal(v)
	must(err, "json")
	fmt.Println(string(b))
}

func writeJSONFile(path string, v interface{}) {
	b, err := json.MarshalIndent(v, "", "  ")
	must(err, "json")
	must(os.WriteFile(path, append(b, '\n'), 0644), "write "+path)
}

func usage() {
	fmt.Fprintf(os.Stderr, `etcdwal-peer (etcd %s wal/snap)
usage:
  etcdwal-peer bench-append --dir D --entries N --size S --batch B [--encrypt secretbox] [--segment-size BYTES] [--nosync]
  etcdwal-peer bench-read   --dir D [--encrypt secretbox] [--mode read|write]
  etcdwal-peer bench-snap   --dir D --size BYTES [--encrypt secretbox]
  etcdwal-peer gen-fixtures --out D
  etcdwal-peer check-dir    --dir D --manifest M [--wal-only|--snap-only] [--ignore-file-names]
  etcdwal-peer dump         --dir D [--snap-index I --snap-term T] [--entries] [--records] [--key-hex HEX]
  etcdwal-peer dump-jsonl   --dir D [--snap-index I --snap-term T] [--key-hex HEX] [--mode read|write]
  etcdwal-peer gen-random   --out D --seed S [--entries N] [--segment-size BYTES] [--max-size BYTES]
  etcdwal-peer version
`, version.Version)
	os.Exit(2)
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	cmd, args := os.Args[1], os.Args[2:]
	switch cmd {
	case "bench-append":
		cmdBenchAppend(args)
	case "bench-read":
		cmdBenchRead(args)
	case "bench-snap":
		cmdBenchSnap(args)
	case "gen-fixtures":
		cmdGenFixtures(args)
	case "check-dir":
		cmdCheckDir(args)
	case "dump":
		cmdDump(args)
	case "dump-jsonl":
		cmdDumpJSONL(args)
	case "gen-random":
		cmdGenRandom(args)
	case "version":
		printJSON(map[string]string{"etcd_version": version.Version, "go": runtime.Version(),
			"wal_pkg": "go.etcd.io/etcd/wal", "snap_pkg": "go.etcd.io/etcd/etcdserver/api/snap",
			"raftpb_pkg": "go.etcd.io/etcd/raft/raftpb"})
	default:
		usage()
	}
}

// ---------------------------------------------------------------------------
// swarmkit-style encryption: entry/snapshot Data := marshal(MaybeEncryptedRecord{
//   1: algorithm (varint, 1 = NACLSecretboxSalsa20Poly1305), 2: data (secretbox.Seal output), 3: nonce (24 bytes)})

const algSecretbox = 1

type crypter struct {
	key [32]byte
}

func newCrypter(key []byte) *crypter {
	if len(key) != 32 {
		die("secretbox key must be 32 bytes, got %d", len(key))
	}
	c := &crypter{}
	copy(c.key[:], key)
	return c
}

func benchKey() []byte {
	k := sha256.Sum256([]byte("etcdwal-peer bench key"))
	return k[:]
}

func fixtureKey() []byte {
	k := sha256.Sum256([]byte("etcdwal-peer fixture key"))
	return k[:]
}

// seal encrypts plain with the given nonce (nil => 24 random bytes from crypto/rand, as swarmkit does).
func (c *crypter) seal(plain []byte, nonce []byte) []byte {
	var n [24]byte
	if nonce == nil {
		if _, err := io.ReadFull(rand.Reader, n[:]); err != nil {
			die("rand: %v", err)
		}
	} else {
		copy(n[:], nonce)
	}
	ct := secretbox.Seal(nil, plain, &n, &c.key)
	b := make([]byte, 0, len(ct)+40)
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, algSecretbox)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendBytes(b, ct)
	b = protowire.AppendTag(b, 3, protowire.BytesType)
	b = protowire.AppendBytes(b, n[:])
	return b
}

func (c *crypter) open(rec []byte) ([]byte, error) {
	var alg uint64
	var data, nonce []byte
	b := rec
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, fmt.Errorf("decrypt: bad MaybeEncryptedRecord tag: %v", protowire.ParseError(n))
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.VarintType:
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return nil, fmt.Errorf("decrypt: bad algorithm varint")
			}
			alg, b = v, b[m:]
		case (num == 2 || num == 3) && typ == protowire.BytesType:
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return nil, fmt.Errorf("decrypt: bad bytes field %d", num)
			}
			if num == 2 {
				data = v
			} else {
				nonce = v
			}
			b = b[m:]
		default:
			m := protowire.ConsumeFieldValue(num, typ, b)
			if m < 0 {
				return nil, fmt.Errorf("decrypt: bad field %d", num)
			}
			b = b[m:]
		}
	}
	if alg != algSecretbox {
		return nil, fmt.Errorf("decrypt: not a NACL secretbox record (algorithm %d)", alg)
	}
	if len(nonce) != 24 {
		return nil, fmt.Errorf("decrypt: invalid nonce size %d", len(nonce))
	}
	var n [24]byte
	copy(n[:], nonce)
	out, ok := secretbox.Open(nil, data, &n, &c.key)
	if !ok {
		return nil, errors.New("decrypt: secretbox authentication failed")
	}
	return out, nil
}

func encryptFlag(fs *flag.FlagSet) *string {
	return fs.String("encrypt", "", "encryption: '' (none) or 'secretbox' (swarmkit-style MaybeEncryptedRecord)")
}

func crypterFor(mode string) *crypter {
	switch mode {
	case "", "none":
		return nil
	case "secretbox":
		return newCrypter(benchKey())
	default:
		die("unknown --encrypt %q (want secretbox)", mode)
	}
	return nil
}

// ---------------------------------------------------------------------------
// metrics: the wal package observes etcd_disk_wal_fsync_duration_seconds for every fdatasync/fsync.

func fsyncCount() uint64 {
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		return 0
	}
	for _, mf := range mfs {
		if mf.GetName() == "etcd_disk_wal_fsync_duration_seconds" {
			var n uint64
			for _, m := range mf.GetMetric() {
				n += m.GetHistogram().GetSampleCount()
			}
			return n
		}
	}
	return 0
}

func dirBytes(dir string, ext string) int64 {
	var n int64
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ext) {
			if fi, err := e.Info(); err == nil {
				n += fi.Size()
			}
		}
	}
	return n
}

// walRecordBytes sums the framed record bytes of all segments (excludes preallocated zero tail).
func walRecordBytes(dir string) int64 {
	var n int64
	for _, f := range listSuffix(dir, ".wal") {
		recs, err := scanFile(filepath.Join(dir, f))
		if err != nil {
			continue
		}
		for _, r := range recs {
			n += 8 + r.Len + r.Pad
		}
	}
	return n
}

func randBytes(n int, seed int64) []byte {
	b := make([]byte, n)
	r := mrand.New(mrand.NewSource(seed))
	r.Read(b)
	return b
}

func round(x float64, d int) float64 {
	p := 1.0
	for i := 0; i < d; i++ {
		p *= 10
	}
	if x < 0 {
		return -float64(int64(-x*p+0.5)) / p
	}
	return float64(int64(x*p+0.5)) / p
}

// ---------------------------------------------------------------------------
// bench-append

// percentile returns the p-th percentile of xs (sorted in place), 0 if empty.
func percentile(xs []float64, p int) float64 {
	if len(xs) == 0 {
		return 0
	}
	sort.Float64s(xs)
	return xs[(len(xs)-1)*p/100]
}

func cmdBenchAppend(args []string) {
	fs := flag.NewFlagSet("bench-append", flag.ExitOnError)
	dir := fs.String("dir", "", "WAL directory to create (must not contain .wal files)")
	n := fs.Int("entries", 10000, "number of entries")
	size := fs.Int("size", 1024, "entry data size in bytes")
	batch := fs.Int("batch", 1, "entries per Save() call")
	enc := encryptFlag(fs)
	seg := fs.Int64("segment-size", wal.SegmentSizeBytes, "wal.SegmentSizeBytes")
	nosync := fs.Bool("nosync", false, "WAL.SetUnsafeNoFsync() (not what etcd does)")
	fs.Parse(args)
	if *dir == "" || *n <= 0 || *size < 0 || *batch <= 0 {
		die("bench-append: need --dir, --entries>0, --size>=0, --batch>0")
	}
	c := crypterFor(*enc)
	wal.SegmentSizeBytes = *seg
	must(os.MkdirAll(filepath.Dir(filepath.Clean(*dir)), 0755), "mkdir")

	gs := time.Now()
	buf := randBytes(*n**size, 1)
	genS := time.Since(gs).Seconds()
	cr := time.Now()
	w, err := wal.Create(lg, *dir, []byte("etcdwal-peer bench"))
	must(err, "wal.Create")
	createS := time.Since(cr).Seconds()
	if *nosync {
		w.SetUnsafeNoFsync()
	}
	f0 := fsyncCount()
	saves := 0
	var stored int64
	lat := make([]float64, 0, (*n+*batch-1) / *batch) // each Save, in microseconds
	start := time.Now()
	for i := 0; i < *n; i += *batch {
		end := i + *batch
		if end > *n {
			end = *n
		}
		ents := make([]raftpb.Entry, 0, end-i)
		for j := i; j < end; j++ {
			d := buf[j**size : (j+1)**size]
			if c != nil {
				d = c.seal(d, nil)
			}
			stored += int64(len(d))
			ents = append(ents, raftpb.Entry{Term: 1, Index: uint64(j + 1), Type: raftpb.EntryNormal, Data: d})
		}
		hs := raftpb.HardState{Term: 1, Vote: 1, Commit: uint64(end)}
		ss := time.Now()
		must(w.Save(hs, ents), "wal.Save")
		lat = append(lat, float64(time.Since(ss).Nanoseconds())/1e3)
		saves++
	}
	el := time.Since(start).Seconds()
	f1 := fsyncCount()
	cs := time.Now()
	must(w.Close(), "wal.Close")
	closeS := time.Since(cs).Seconds()
	payload := float64(*n) * float64(*size)
	printJSON(map[string]interface{}{
		"op": "bench-append", "impl": "etcd-go " + version.Version, "dir": *dir,
		"entries": *n, "size": *size, "batch": *batch, "encrypt": encName(*enc), "nosync": *nosync,
		"segment_size_bytes": *seg, "saves": saves,
		"seconds":           round(el, 4),
		"entries_per_s":     round(float64(*n)/el, 1),
		"mb_per_s":          round(payload/1e6/el, 2),
		"mib_per_s":         round(payload/(1<<20)/el, 2),
		"saves_per_s":       round(float64(saves)/el, 1),
		"fsyncs":            f1 - f0,
		"stored_data_bytes": stored,
		"wal_file_bytes":    dirBytes(*dir, ".wal"),
		"wal_record_bytes":  walRecordBytes(*dir),
		"close_seconds":     round(closeS, 4),
		"create_seconds":    round(createS, 4),
		"datagen_seconds":   round(genS, 4),
		"save_p50_us":       round(percentile(lat, 50), 1),
		"save_p99_us":       round(percentile(lat, 99), 1),
		"note":              "MB=1e6 bytes of plaintext payload; fsyncs = etcd_disk_wal_fsync_duration_seconds observations during the Save loop; seconds = the Save loop only; datagen_seconds = random data made before Create",
	})
}

func encName(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// ---------------------------------------------------------------------------
// bench-read

func cmdBenchRead(args []string) {
	fs := flag.NewFlagSet("bench-read", flag.ExitOnError)
	dir := fs.String("dir", "", "WAL directory")
	enc := encryptFlag(fs)
	mode := fs.String("mode", "read", "read = wal.OpenForRead, write = wal.Open (as etcd/swarmkit do at startup)")
	fs.Parse(args)
	if *dir == "" {
		die("bench-read: need --dir")
	}
	c := crypterFor(*enc)
	wal.SegmentSizeBytes = 64 * 1024 // only affects the preallocated next-segment file in write mode
	start := time.Now()
	var w *wal.WAL
	var err error
	if *mode == "write" {
		w, err = wal.Open(lg, *dir, walpb.Snapshot{})
	} else {
		w, err = wal.OpenForRead(lg, *dir, walpb.Snapshot{})
	}
	must(err, "wal.Open")
	md, hs, ents, err := w.ReadAll()
	must(err, "wal.ReadAll")
	var payload, stored int64
	for i := range ents {
		stored += int64(len(ents[i].Data))
		if c != nil {
			p, err := c.open(ents[i].Data)
			must(err, fmt.Sprintf("entry %d", ents[i].Index))
			ents[i].Data = p
		}
		payload += int64(len(ents[i].Data))
	}
	el := time.Since(start).Seconds()
	w.Close()
	printJSON(map[string]interface{}{
		"op": "bench-read", "impl": "etcd-go " + version.Version, "dir": *dir, "mode": *mode,
		"encrypt": encName(*enc), "metadata_len": len(md),
		"hardstate": hsJSON(hs), "entries": len(ents),
		"payload_bytes": payload, "stored_data_bytes": stored, "wal_file_bytes": dirBytes(*dir, ".wal"),
		"seconds":       round(el, 4),
		"entries_per_s": round(float64(len(ents))/el, 1),
		"mb_per_s":      round(float64(payload)/1e6/el, 2),
		"mib_per_s":     round(float64(payload)/(1<<20)/el, 2),
		"note":          "open+ReadAll(+decrypt), page cache warm; MB=1e6 bytes of plaintext payload",
	})
}

// ---------------------------------------------------------------------------
// bench-snap

func cmdBenchSnap(args []string) {
	fs := flag.NewFlagSet("bench-snap", flag.ExitOnError)
	dir := fs.String("dir", "", "snap directory (created)")
	size := fs.Int("size", 64<<20, "snapshot data bytes")
	enc := encryptFlag(fs)
	fs.Parse(args)
	if *dir == "" {
		die("bench-snap: need --dir")
	}
	c := crypterFor(*enc)
	must(os.MkdirAll(*dir, 0755), "mkdir")
	data := randBytes(*size, 2)
	ss := snap.New(lg, *dir)
	s := raftpb.Snapshot{Data: data, Metadata: raftpb.SnapshotMetadata{Index: 1000, Term: 1,
		ConfState: raftpb.ConfState{Voters: []uint64{1, 2, 3}}}}
	t0 := time.Now()
	if c != nil {
		s.Data = c.seal(data, nil)
	}
	must(ss.SaveSnap(s), "SaveSnap")
	saveS := time.Since(t0).Seconds()
	var fileBytes int64
	if fi, err := os.Stat(filepath.Join(*dir, fmt.Sprintf("%016x-%016x.snap", 1, 1000))); err == nil {
		fileBytes = fi.Size()
	}
	t1 := time.Now()
	got, err := ss.Load()
	must(err, "Load")
	if c != nil {
		got.Data, err = c.open(got.Data)
		must(err, "decrypt")
	}
	loadS := time.Since(t1).Seconds()
	if !bytes.Equal(got.Data, data) {
		die("bench-snap: loaded data differs")
	}
	printJSON(map[string]interface{}{
		"op": "bench-snap", "impl": "etcd-go " + version.Version, "dir": *dir, "size": *size,
		"encrypt": encName(*enc), "file_bytes": fileBytes,
		"save_seconds": round(saveS, 4), "save_mb_per_s": round(float64(*size)/1e6/saveS, 2),
		"load_seconds": round(loadS, 4), "load_mb_per_s": round(float64(*size)/1e6/loadS, 2),
		"note": "save = (encrypt+)SaveSnap incl. fsync; load = Load (+decrypt), page cache warm; MB=1e6 bytes",
	})
}

// ---------------------------------------------------------------------------
// deterministic data: splitmix64

type splitmix struct{ s uint64 }

func (r *splitmix) next() uint64 {
	r.s += 0x9E3779B97F4A7C15
	z := r.s
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

func (r *splitmix) intn(n int) int { return int(r.next() % uint64(n)) }

const dataGenSpec = "entry data for (index, term, len) with seed S: state = S ^ (index*0x9E3779B97F4A7C15) ^ (term*0xC2B2AE3D27D4EB4F) (uint64 wrap); " +
	"repeat { state += 0x9E3779B97F4A7C15; z = state; z = (z^(z>>30))*0xBF58476D1CE4E5B9; z = (z^(z>>27))*0x94D049BB133111EB; z ^= z>>31; emit 8 bytes of z little-endian }; truncate to len. " +
	"len 0 => Data field absent (nil). Entries given with a hex string use that data instead."

func genData(seed, index, term uint64, n int) []byte {
	if n == 0 {
		return nil
	}
	r := splitmix{s: seed ^ (index * 0x9E3779B97F4A7C15) ^ (term * 0xC2B2AE3D27D4EB4F)}
	out := make([]byte, (n+7)/8*8)
	for i := 0; i < len(out); i += 8 {
		binary.LittleEndian.PutUint64(out[i:], r.next())
	}
	return out[:n]
}

// ---------------------------------------------------------------------------
// manifest types

type HS struct {
	Term   uint64 `json:"term"`
	Vote   uint64 `json:"vote"`
	Commit uint64 `json:"commit"`
}

func hsJSON(h raftpb.HardState) HS { return HS{h.Term, h.Vote, h.Commit} }

type SnapRef struct {
	Index uint64 `json:"index"`
	Term  uint64 `json:"term"`
}

// EntRef is serialized as [index, term, type, len] or [index, term, type, len, "hexdata"].
type EntRef struct {
	Index, Term uint64
	Type        int
	Len         int
	Hex         string
}

func (e EntRef) MarshalJSON() ([]byte, error) {
	if e.Hex != "" {
		return json.Marshal([]interface{}{e.Index, e.Term, e.Type, e.Len, e.Hex})
	}
	return json.Marshal([]interface{}{e.Index, e.Term, e.Type, e.Len})
}

func (e *EntRef) UnmarshalJSON(b []byte) error {
	var a []interface{}
	if err := json.Unmarshal(b, &a); err != nil {
		return err
	}
	if len(a) < 4 {
		return errors.New("entry ref needs [index,term,type,len]")
	}
	e.Index, e.Term, e.Type, e.Len = uint64(a[0].(float64)), uint64(a[1].(float64)), int(a[2].(float64)), int(a[3].(float64))
	if len(a) > 4 {
		e.Hex, _ = a[4].(string)
	}
	return nil
}

// Op is one step of the writer plan that produced a fixture, so another
// implementation can replay it (and compare bytes).
type Op struct {
	Op          string   `json:"op"` // create | save | save_snapshot | snap_save | close
	Metadata    string   `json:"metadata,omitempty"`
	SegmentSize int64    `json:"segment_size_bytes,omitempty"`
	HardState   *HS      `json:"hardstate,omitempty"` // save: nil => empty HardState (no state record written)
	Entries     []EntRef `json:"entries,omitempty"`
	Index       uint64   `json:"index,omitempty"`
	Term        uint64   `json:"term,omitempty"`
	Voters      []uint64 `json:"voters,omitempty"`   // snap_save
	DataLen     int      `json:"data_len,omitempty"` // snap_save: data = gen(seed, index, term, data_len)
}

type DecryptSpec struct {
	Algorithm string `json:"algorithm"` // secretbox
	KeyHex    string `json:"key_hex"`
}

type WalResult struct {
	Metadata    string `json:"metadata"`
	MetadataHex string `json:"metadata_hex"`
	HardState   HS     `json:"hardstate"`
	EntryCount  int    `json:"entry_count"`
	FirstIndex  uint64 `json:"first_index"`
	LastIndex   uint64 `json:"last_index"`
	LastTerm    uint64 `json:"last_term"`
	DataBytes   int64  `json:"entries_data_bytes"`
	DataSHA256  string `json:"entries_data_sha256"`
	FullSHA256  string `json:"entries_full_sha256"`
}

type WalCheck struct {
	Name        string       `json:"name"`
	Mode        string       `json:"mode"` // read (OpenForRead+ReadAll) | write (Open+ReadAll, on a copy) | repair (copy, wal.Repair, Open+ReadAll) | verify (wal.Verify) | valid_snapshots (wal.ValidSnapshotEntries)
	OpenAt      SnapRef      `json:"open_at"`
	Decrypt     *DecryptSpec `json:"decrypt,omitempty"`
	ExpectError string       `json:"expect_error"`         // "" = success, else an error class (see error_classes)
	ErrorText   string       `json:"error_text,omitempty"` // informational: etcd's error string
	Repaired    *bool        `json:"repaired,omitempty"`   // repair mode: wal.Repair's return value
	Result      *WalResult   `json:"result,omitempty"`     // what ReadAll returned (also for snapshot_not_found, which returns data)
	Snapshots   []SnapRef    `json:"snapshots,omitempty"`  // valid_snapshots mode
}

type SnapInfo struct {
	File        string   `json:"file,omitempty"`
	ExpectError string   `json:"expect_error"`
	ErrorText   string   `json:"error_text,omitempty"`
	Index       uint64   `json:"index,omitempty"`
	Term        uint64   `json:"term,omitempty"`
	Voters      []uint64 `json:"voters,omitempty"`
	DataLen     int      `json:"data_len,omitempty"`
	DataSHA256  string   `json:"data_sha256,omitempty"`
}

type SnapLoad struct {
	SnapInfo
	BrokenAfter []string `json:"broken_after,omitempty"` // files renamed to *.broken by Load()
}

type SnapSpec struct {
	Files   []string     `json:"files,omitempty"` // *.snap files expected, sorted
	Decrypt *DecryptSpec `json:"decrypt,omitempty"`
	PerFile []SnapInfo   `json:"per_file,omitempty"` // snap.Read on each file
	Load    *SnapLoad    `json:"load,omitempty"`     // Snapshotter.Load() on a copy of the dir
}

type Corruption struct {
	Kind         string `json:"kind"` // truncate | zero | xor
	File         string `json:"file"`
	Offset       int64  `json:"offset"`
	Length       int64  `json:"length,omitempty"`
	XorMask      int    `json:"xor_mask,omitempty"`
	OriginalSize int64  `json:"original_size,omitempty"`
	Description  string `json:"description"`
}

type Manifest struct {
	Format       string       `json:"format"`
	Name         string       `json:"name"`
	Description  string       `json:"description,omitempty"`
	Generator    string       `json:"generator,omitempty"`
	MustFail     bool         `json:"must_fail"`
	FailureMode  string       `json:"failure_mode,omitempty"`
	DigestSpec   string       `json:"digest_spec,omitempty"`
	DataGen      string       `json:"data_gen,omitempty"`
	DataSeed     uint64       `json:"data_seed,omitempty"`
	Encryption   string       `json:"encryption,omitempty"`
	WalDir       string       `json:"wal_dir,omitempty"`
	WalFiles     []string     `json:"wal_files,omitempty"`
	WalChecks    []WalCheck   `json:"wal_checks,omitempty"`
	SnapDir      string       `json:"snap_dir,omitempty"`
	Snap         *SnapSpec    `json:"snap,omitempty"`
	Corruptions  []Corruption `json:"corruptions,omitempty"`
	Ops          []Op         `json:"ops,omitempty"`
	ErrorClasses []string     `json:"error_classes,omitempty"`
}

type IndexEntry struct {
	Name        string `json:"name"`
	Dir         string `json:"dir"`
	Manifest    string `json:"manifest"`
	MustFail    bool   `json:"must_fail"`
	FailureMode string `json:"failure_mode,omitempty"`
	Description string `json:"description"`
}

type Index struct {
	Format    string       `json:"format"`
	Generator string       `json:"generator"`
	Fixtures  []IndexEntry `json:"fixtures"`
}

const (
	manifestFormat = "etcdwal-peer-fixture/v1"
	indexFormat    = "etcdwal-peer-fixture-index/v1"
	digestSpec     = "entries_data_sha256 = sha256(concat of entry.Data in ReadAll order); " +
		"entries_full_sha256 = sha256(concat over entries of u64le(index) u64le(term) u64le(type) u64le(len(data)) data); " +
		"data is the plaintext when the check has 'decrypt', else the bytes stored in the WAL"
)

var errorClasses = []string{"crc_mismatch", "unexpected_eof", "snapshot_not_found", "snapshot_mismatch",
	"file_not_found", "metadata_conflict", "slice_out_of_range", "max_entry_size_exceeded",
	"decrypt_failed", "no_snapshot", "empty_snapshot", "panic", "other"}

func generator() string {
	return fmt.Sprintf("etcdwal-peer (etcd %s, Debian golang-etcd-server-dev, %s)", version.Version, runtime.Version())
}

// ---------------------------------------------------------------------------
// error classification

type panicErr struct{ v interface{} }

func (p panicErr) Error() string { return fmt.Sprintf("panic: %v", p.v) }

type decryptErr struct{ err error }

func (d decryptErr) Error() string { return d.err.Error() }

func classify(err error) string {
	if err == nil {
		return ""
	}
	var pe panicErr
	var de decryptErr
	switch {
	case errors.As(err, &pe):
		return "panic"
	case errors.As(err, &de):
		return "decrypt_failed"
	case errors.Is(err, wal.ErrCRCMismatch), errors.Is(err, walpb.ErrCRCMismatch):
		return "crc_mismatch"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected_eof"
	case errors.Is(err, wal.ErrSnapshotNotFound):
		return "snapshot_not_found"
	case errors.Is(err, wal.ErrSnapshotMismatch):
		return "snapshot_mismatch"
	case errors.Is(err, wal.ErrFileNotFound):
		return "file_not_found"
	case errors.Is(err, wal.ErrMetadataConflict):
		return "metadata_conflict"
	case errors.Is(err, wal.ErrSliceOutOfRange):
		return "slice_out_of_range"
	case errors.Is(err, wal.ErrMaxWALEntrySizeLimitExceeded):
		return "max_entry_size_exceeded"
	case errors.Is(err, snap.ErrCRCMismatch):
		return "crc_mismatch"
	case errors.Is(err, snap.ErrNoSnapshot):
		return "no_snapshot"
	case errors.Is(err, snap.ErrEmptySnapshot):
		return "empty_snapshot"
	}
	return "other"
}

func safely(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = panicErr{r}
		}
	}()
	return f()
}

// ---------------------------------------------------------------------------
// running WAL checks (the same code computes expectations for gen-fixtures and verifies in check-dir)

func digestEntries(ents []raftpb.Entry) (int64, string, string) {
	hd, hf := sha256.New(), sha256.New()
	var n int64
	var hdr [32]byte
	for _, e := range ents {
		hd.Write(e.Data)
		binary.LittleEndian.PutUint64(hdr[0:], e.Index)
		binary.LittleEndian.PutUint64(hdr[8:], e.Term)
		binary.LittleEndian.PutUint64(hdr[16:], uint64(e.Type))
		binary.LittleEndian.PutUint64(hdr[24:], uint64(len(e.Data)))
		hf.Write(hdr[:])
		hf.Write(e.Data)
		n += int64(len(e.Data))
	}
	return n, hex.EncodeToString(hd.Sum(nil)), hex.EncodeToString(hf.Sum(nil))
}

func printable(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return ""
}

func makeResult(md []byte, hs raftpb.HardState, ents []raftpb.Entry) *WalResult {
	r := &WalResult{Metadata: printable(md), MetadataHex: hex.EncodeToString(md), HardState: hsJSON(hs), EntryCount: len(ents)}
	if len(ents) > 0 {
		r.FirstIndex = ents[0].Index
		r.LastIndex = ents[len(ents)-1].Index
		r.LastTerm = ents[len(ents)-1].Term
	}
	r.DataBytes, r.DataSHA256, r.FullSHA256 = digestEntries(ents)
	return r
}

func copyDir(src string) (string, error) {
	tmp, err := os.MkdirTemp("", "etcdwal-peer-")
	if err != nil {
		return "", err
	}
	dst := filepath.Join(tmp, "d")
	if err := os.Mkdir(dst, 0700); err != nil {
		return "", err
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		return "", err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0600); err != nil {
			return "", err
		}
	}
	return dst, nil
}

func decryptEntries(c *crypter, ents []raftpb.Entry) error {
	for i := range ents {
		p, err := c.open(ents[i].Data)
		if err != nil {
			return decryptErr{fmt.Errorf("entry %d: %v", ents[i].Index, err)}
		}
		ents[i].Data = p
	}
	return nil
}

func crypterFromSpec(d *DecryptSpec) (*crypter, error) {
	if d == nil {
		return nil, nil
	}
	if d.Algorithm != "secretbox" {
		return nil, fmt.Errorf("unsupported decrypt algorithm %q", d.Algorithm)
	}
	k, err := hex.DecodeString(d.KeyHex)
	if err != nil || len(k) != 32 {
		return nil, fmt.Errorf("bad key_hex")
	}
	return newCrypter(k), nil
}

// runWalCheck executes check c (Mode/OpenAt/Decrypt) against walDir and returns the observed outcome.
func runWalCheck(walDir string, c WalCheck) WalCheck {
	out := WalCheck{Name: c.Name, Mode: c.Mode, OpenAt: c.OpenAt, Decrypt: c.Decrypt}
	cr, cerr := crypterFromSpec(c.Decrypt)
	if cerr != nil {
		out.ExpectError, out.ErrorText = "other", cerr.Error()
		return out
	}
	ws := walpb.Snapshot{Index: c.OpenAt.Index, Term: c.OpenAt.Term}
	saveSeg := wal.SegmentSizeBytes
	wal.SegmentSizeBytes = 64 * 1024 // write-mode Open preallocates the next segment; keep that small
	defer func() { wal.SegmentSizeBytes = saveSeg }()

	var err error
	switch c.Mode {
	case "verify":
		err = safely(func() error { return wal.Verify(lg, walDir, ws) })
	case "valid_snapshots":
		var snaps []walpb.Snapshot
		err = safely(func() error {
			var e error
			snaps, e = wal.ValidSnapshotEntries(lg, walDir)
			return e
		})
		for _, s := range snaps {
			out.Snapshots = append(out.Snapshots, SnapRef{s.Index, s.Term})
		}
	case "read", "write", "repair":
		dir := walDir
		if c.Mode != "read" {
			d, e := copyDir(walDir)
			if e != nil {
				out.ExpectError, out.ErrorText = "other", e.Error()
				return out
			}
			defer os.RemoveAll(filepath.Dir(d))
			dir = d
		}
		if c.Mode == "repair" {
			var ok bool
			err = safely(func() error { ok = wal.Repair(lg, dir); return nil })
			out.Repaired = &ok
		}
		if err == nil {
			err = safely(func() error {
				var w *wal.WAL
				var e error
				if c.Mode == "read" {
					w, e = wal.OpenForRead(lg, dir, ws)
				} else {
					w, e = wal.Open(lg, dir, ws)
				}
				if e != nil {
					return e
				}
				defer w.Close()
				md, hs, ents, e := w.ReadAll()
				if (e == nil || errors.Is(e, wal.ErrSnapshotNotFound)) && (md != nil || len(ents) > 0) {
					if cr != nil {
						if de := decryptEntries(cr, ents); de != nil {
							return de
						}
					}
					out.Result = makeResult(md, hs, ents)
				}
				return e
			})
		}
	default:
		err = fmt.Errorf("unknown check mode %q", c.Mode)
	}
	if err != nil {
		out.ExpectError, out.ErrorText = classify(err), err.Error()
	}
	return out
}

func snapInfoOf(s *raftpb.Snapshot, cr *crypter) (SnapInfo, error) {
	data := s.Data
	if cr != nil {
		p, err := cr.open(data)
		if err != nil {
			return SnapInfo{}, decryptErr{err}
		}
		data = p
	}
	h := sha256.Sum256(data)
	return SnapInfo{Index: s.Metadata.Index, Term: s.Metadata.Term, Voters: s.Metadata.ConfState.Voters,
		DataLen: len(data), DataSHA256: hex.EncodeToString(h[:])}, nil
}

func listSuffix(dir, suffix string) []string {
	var out []string
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), suffix) {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}

func runSnapSpec(snapDir string, spec *SnapSpec) *SnapSpec {
	out := &SnapSpec{Files: listSuffix(snapDir, ".snap"), Decrypt: spec.Decrypt}
	cr, cerr := crypterFromSpec(spec.Decrypt)
	for _, f := range out.Files {
		var si SnapInfo
		err := cerr
		if err == nil {
			err = safely(func() error {
				s, e := snap.Read(lg, filepath.Join(snapDir, f))
				if e != nil {
					return e
				}
				si, e = snapInfoOf(s, cr)
				return e
			})
		}
		si.File = f
		if err != nil {
			si = SnapInfo{File: f, ExpectError: classify(err), ErrorText: err.Error()}
		}
		out.PerFile = append(out.PerFile, si)
	}
	ld := &SnapLoad{}
	err := cerr
	if err == nil {
		err = safely(func() error {
			d, e := copyDir(snapDir)
			if e != nil {
				return e
			}
			defer os.RemoveAll(filepath.Dir(d))
			before := listSuffix(d, ".snap")
			s, e := snap.New(lg, d).Load()
			ld.BrokenAfter = listSuffix(d, ".broken")
			if e != nil {
				return e
			}
			si, e := snapInfoOf(s, cr)
			if e != nil {
				return e
			}
			ld.SnapInfo = si
			want := fmt.Sprintf("%016x-%016x.snap", s.Metadata.Term, s.Metadata.Index)
			for _, b := range before {
				if b == want {
					ld.File = b
				}
			}
			return nil
		})
	}
	if err != nil {
		ld.SnapInfo = SnapInfo{ExpectError: classify(err), ErrorText: err.Error()}
	}
	out.Load = ld
	return out
}

// ---------------------------------------------------------------------------
// comparing expectations

type cmpr struct {
	prefix string
	errs   []string
}

func (c *cmpr) f(field string, want, got interface{}) {
	wb, _ := json.Marshal(want)
	gb, _ := json.Marshal(got)
	if !bytes.Equal(wb, gb) {
		c.errs = append(c.errs, fmt.Sprintf("%s: %s: want %s, got %s", c.prefix, field, wb, gb))
	}
}

func compareWalCheck(c *cmpr, want, got WalCheck) {
	c.f("expect_error", want.ExpectError, got.ExpectError)
	if want.Repaired != nil {
		c.f("repaired", *want.Repaired, got.Repaired)
	}
	if want.Mode == "valid_snapshots" && want.ExpectError == "" {
		c.f("snapshots", want.Snapshots, got.Snapshots)
	}
	if want.Result != nil {
		if got.Result == nil {
			c.errs = append(c.errs, fmt.Sprintf("%s: expected ReadAll data, got none (error %q)", c.prefix, got.ErrorText))
			return
		}
		w, g := want.Result, got.Result
		c.f("metadata_hex", w.MetadataHex, g.MetadataHex)
		c.f("hardstate", w.HardState, g.HardState)
		c.f("entry_count", w.EntryCount, g.EntryCount)
		c.f("first_index", w.FirstIndex, g.FirstIndex)
		c.f("last_index", w.LastIndex, g.LastIndex)
		if w.LastTerm != 0 {
			c.f("last_term", w.LastTerm, g.LastTerm)
		}
		if w.DataBytes != 0 {
			c.f("entries_data_bytes", w.DataBytes, g.DataBytes)
		}
		if w.DataSHA256 != "" {
			c.f("entries_data_sha256", w.DataSHA256, g.DataSHA256)
		}
		if w.FullSHA256 != "" {
			c.f("entries_full_sha256", w.FullSHA256, g.FullSHA256)
		}
	}
}

func compareSnapInfo(c *cmpr, want, got SnapInfo) {
	c.f("expect_error", want.ExpectError, got.ExpectError)
	if want.ExpectError != "" {
		return
	}
	c.f("index", want.Index, got.Index)
	c.f("term", want.Term, got.Term)
	if want.Voters != nil {
		c.f("voters", want.Voters, got.Voters)
	}
	c.f("data_len", want.DataLen, got.DataLen)
	if want.DataSHA256 != "" {
		c.f("data_sha256", want.DataSHA256, got.DataSHA256)
	}
}

// checkManifest verifies dir against m; returns human-readable problems (empty = pass) and per-check lines.
type checkOpts struct {
	walOnly, snapOnly, ignoreFiles bool
}

func checkManifest(dir string, m *Manifest, o checkOpts) (problems []string, lines []string) {
	if (m.WalDir != "" || len(m.WalChecks) > 0) && !o.snapOnly {
		walDir := filepath.Join(dir, m.WalDir)
		if !isDirWith(walDir, ".wal") && isDirWith(dir, ".wal") {
			walDir = dir // a bare WAL directory was given
		}
		if m.WalFiles != nil && !o.ignoreFiles {
			c := &cmpr{prefix: "wal_files"}
			c.f("names", m.WalFiles, listSuffix(walDir, ".wal"))
			problems = append(problems, c.errs...)
		}
		for i, wc := range m.WalChecks {
			got := runWalCheck(walDir, wc)
			c := &cmpr{prefix: fmt.Sprintf("wal_checks[%d] %s (%s @%d/%d)", i, wc.Name, wc.Mode, wc.OpenAt.Index, wc.OpenAt.Term)}
			compareWalCheck(c, wc, got)
			status := "ok"
			if len(c.errs) > 0 {
				status = "FAIL"
			}
			desc := "success"
			if got.ExpectError != "" {
				desc = "error " + got.ExpectError + " (" + got.ErrorText + ")"
			}
			if got.Result != nil {
				desc += fmt.Sprintf(", %d entries [%d..%d]", got.Result.EntryCount, got.Result.FirstIndex, got.Result.LastIndex)
			}
			lines = append(lines, fmt.Sprintf("  %-4s %s: %s", status, c.prefix, desc))
			problems = append(problems, c.errs...)
		}
	}
	if m.Snap != nil && !o.walOnly {
		snapDir := filepath.Join(dir, m.SnapDir)
		if !isDirWith(snapDir, ".snap") && isDirWith(dir, ".snap") {
			snapDir = dir // a bare snap directory was given
		}
		got := runSnapSpec(snapDir, m.Snap)
		c := &cmpr{prefix: "snap"}
		if m.Snap.Files != nil && !o.ignoreFiles {
			c.f("files", m.Snap.Files, got.Files)
		}
		for _, wf := range m.Snap.PerFile {
			found := false
			for _, gf := range got.PerFile {
				if gf.File == wf.File {
					found = true
					cc := &cmpr{prefix: "snap.per_file " + wf.File}
					compareSnapInfo(cc, wf, gf)
					c.errs = append(c.errs, cc.errs...)
				}
			}
			if !found {
				c.errs = append(c.errs, "snap.per_file: missing file "+wf.File)
			}
		}
		if m.Snap.Load != nil {
			cc := &cmpr{prefix: "snap.load"}
			compareSnapInfo(cc, m.Snap.Load.SnapInfo, got.Load.SnapInfo)
			if m.Snap.Load.File != "" {
				cc.f("file", m.Snap.Load.File, got.Load.File)
			}
			if m.Snap.Load.BrokenAfter != nil {
				cc.f("broken_after", m.Snap.Load.BrokenAfter, got.Load.BrokenAfter)
			}
			c.errs = append(c.errs, cc.errs...)
		}
		status := "ok"
		if len(c.errs) > 0 {
			status = "FAIL"
		}
		ld := got.Load
		desc := fmt.Sprintf("%d files; Load -> ", len(got.Files))
		if ld.ExpectError != "" {
			desc += "error " + ld.ExpectError
		} else {
			desc += fmt.Sprintf("%s (index %d term %d, %d bytes)", ld.File, ld.Index, ld.Term, ld.DataLen)
		}
		lines = append(lines, fmt.Sprintf("  %-4s snap: %s", status, desc))
		problems = append(problems, c.errs...)
	}
	return problems, lines
}

func cmdCheckDir(args []string) {
	fs := flag.NewFlagSet("check-dir", flag.ExitOnError)
	dir := fs.String("dir", "", "directory to check (fixture dir, or the fixtures root when --manifest is an index)")
	mpath := fs.String("manifest", "", "manifest JSON (fixture manifest or index manifest)")
	var o checkOpts
	fs.BoolVar(&o.walOnly, "wal-only", false, "check only the WAL part")
	fs.BoolVar(&o.snapOnly, "snap-only", false, "check only the snap part")
	fs.BoolVar(&o.ignoreFiles, "ignore-file-names", false, "do not compare wal_files / snap.files name lists (e.g. other segment size)")
	fs.Parse(args)
	if *dir == "" || *mpath == "" {
		die("check-dir: need --dir and --manifest")
	}
	raw, err := os.ReadFile(*mpath)
	must(err, "read manifest")
	var probe struct {
		Format string `json:"format"`
	}
	must(json.Unmarshal(raw, &probe), "parse manifest")
	type job struct {
		dir string
		m   *Manifest
	}
	var jobs []job
	switch probe.Format {
	case indexFormat:
		var idx Index
		must(json.Unmarshal(raw, &idx), "parse index")
		for _, f := range idx.Fixtures {
			mb, err := os.ReadFile(filepath.Join(filepath.Dir(*mpath), f.Manifest))
			must(err, "read "+f.Manifest)
			var m Manifest
			must(json.Unmarshal(mb, &m), "parse "+f.Manifest)
			jobs = append(jobs, job{filepath.Join(*dir, f.Dir), &m})
		}
	default:
		var m Manifest
		must(json.Unmarshal(raw, &m), "parse manifest")
		jobs = append(jobs, job{*dir, &m})
	}
	var all []string
	for _, j := range jobs {
		fmt.Printf("fixture %s (%s):\n", j.m.Name, j.dir)
		probs, lines := checkManifest(j.dir, j.m, o)
		for _, l := range lines {
			fmt.Println(l)
		}
		for _, p := range probs {
			all = append(all, j.m.Name+": "+p)
		}
	}
	if len(all) > 0 {
		fmt.Fprintf(os.Stderr, "check-dir: %d mismatch(es):\n", len(all))
		for _, p := range all {
			fmt.Fprintln(os.Stderr, "  MISMATCH "+p)
		}
		os.Exit(1)
	}
	fmt.Printf("check-dir: PASS (%d fixture(s))\n", len(jobs))
}

// ---------------------------------------------------------------------------
// raw record scan (the peer's own parser, for locating corruption offsets and for dump --records)

type rawRec struct {
	Offset   int64  `json:"offset"`
	Len      int64  `json:"len"`
	Pad      int64  `json:"pad"`
	Type     int64  `json:"type"`
	CRC      uint32 `json:"crc"`
	DataLen  int    `json:"data_len"`
	EntIndex uint64 `json:"entry_index,omitempty"`
	EntTerm  uint64 `json:"entry_term,omitempty"`
	EntData  int    `json:"entry_data_len,omitempty"`
	Err      string `json:"error,omitempty"`
}

func scanFile(path string) ([]rawRec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []rawRec
	off := int64(0)
	for off+8 <= int64(len(b)) {
		l := int64(binary.LittleEndian.Uint64(b[off:]))
		if l == 0 {
			break
		}
		recBytes := int64(uint64(l) & ^(uint64(0xff) << 56))
		var pad int64
		if l < 0 {
			pad = int64((uint64(l) >> 56) & 0x7)
		}
		r := rawRec{Offset: off, Len: recBytes, Pad: pad}
		if off+8+recBytes+pad > int64(len(b)) {
			r.Err = "truncated"
			out = append(out, r)
			break
		}
		var rec walpb.Record
		if err := rec.Unmarshal(b[off+8 : off+8+recBytes]); err != nil {
			r.Err = err.Error()
		} else {
			r.Type, r.CRC, r.DataLen = rec.Type, rec.Crc, len(rec.Data)
			if rec.Type == 2 {
				var e raftpb.Entry
				if err := e.Unmarshal(rec.Data); err == nil {
					r.EntIndex, r.EntTerm, r.EntData = e.Index, e.Term, len(e.Data)
				}
			}
		}
		out = append(out, r)
		off += 8 + recBytes + pad
	}
	return out, nil
}

// ---------------------------------------------------------------------------
// gen-fixtures

type planBuilder struct {
	seed uint64
	ops  []Op
}

func (p *planBuilder) add(o Op) { p.ops = append(p.ops, o) }

func entryData(seed uint64, e EntRef) []byte {
	if e.Hex != "" {
		b, err := hex.DecodeString(e.Hex)
		must(err, "hex")
		return b
	}
	return genData(seed, e.Index, e.Term, e.Len)
}

// execPlan runs ops with the real etcd wal/snap packages. walDir/snapDir are absolute.
func execPlan(walDir, snapDir string, seed uint64, ops []Op, cr *crypter, nonceSeed uint64) {
	var w *wal.WAL
	var err error
	for i, o := range ops {
		switch o.Op {
		case "create":
			wal.SegmentSizeBytes = o.SegmentSize
			w, err = wal.Create(lg, walDir, []byte(o.Metadata))
			must(err, "wal.Create")
		case "save":
			var hs raftpb.HardState
			if o.HardState != nil {
				hs = raftpb.HardState{Term: o.HardState.Term, Vote: o.HardState.Vote, Commit: o.HardState.Commit}
			}
			ents := make([]raftpb.Entry, len(o.Entries))
			for j, e := range o.Entries {
				d := entryData(seed, e)
				if cr != nil {
					d = cr.seal(d, genData(nonceSeed, e.Index, e.Term, 24))
				}
				ents[j] = raftpb.Entry{Index: e.Index, Term: e.Term, Type: raftpb.EntryType(e.Type), Data: d}
			}
			must(w.Save(hs, ents), fmt.Sprintf("op %d wal.Save", i))
		case "save_snapshot":
			must(w.SaveSnapshot(walpb.Snapshot{Index: o.Index, Term: o.Term}), "wal.SaveSnapshot")
		case "snap_save":
			must(os.MkdirAll(snapDir, 0755), "mkdir snap")
			d := genData(seed^0x5eed, o.Index, o.Term, o.DataLen)
			if cr != nil {
				d = cr.seal(d, genData(nonceSeed^0x5eed, o.Index, o.Term, 24))
			}
			s := raftpb.Snapshot{Data: d, Metadata: raftpb.SnapshotMetadata{Index: o.Index, Term: o.Term,
				ConfState: raftpb.ConfState{Voters: o.Voters}}}
			must(snap.New(lg, snapDir).SaveSnap(s), "SaveSnap")
		case "close":
			must(w.Close(), "wal.Close")
			w = nil
		default:
			die("bad op %q", o.Op)
		}
	}
	if w != nil {
		must(w.Close(), "wal.Close")
	}
}

func confChangeHex(id, node uint64) string {
	cc := raftpb.ConfChange{ID: id, Type: raftpb.ConfChangeAddNode, NodeID: node, Context: []byte(fmt.Sprintf("node-%d", node))}
	b, err := cc.Marshal()
	must(err, "cc marshal")
	return hex.EncodeToString(b)
}

// basicPlan: ~1000 entries, 3 terms, an overwrite (281..300 rewritten in term 2), conf changes,
// WAL snapshot records at 500 (term 2) and 900 (term 3), snap files at both.
func basicPlan(seed uint64) []Op {
	r := &splitmix{s: 0xBA51C}
	p := &planBuilder{seed: seed}
	p.add(Op{Op: "create", Metadata: "fixture-meta", SegmentSize: 512 * 1024})
	p.add(Op{Op: "save", HardState: &HS{1, 1, 0}})
	commit := uint64(0)
	var voters = []uint64{1, 2, 3}
	appendRange := func(from, to, term, vote uint64, special map[uint64]EntRef) {
		idx := from
		for idx <= to {
			b := uint64(1 + r.intn(16))
			if idx+b-1 > to {
				b = to - idx + 1
			}
			var ents []EntRef
			for k := uint64(0); k < b; k++ {
				i := idx + k
				if e, ok := special[i]; ok {
					ents = append(ents, e)
					continue
				}
				sz := r.intn(5001)
				if r.intn(20) == 0 {
					sz = 0
				}
				ents = append(ents, EntRef{Index: i, Term: term, Type: 0, Len: sz})
			}
			idx += b
			last := idx - 1
			if last > 6 && last-6 > commit {
				commit = last - 6
			}
			p.add(Op{Op: "save", HardState: &HS{term, vote, commit}, Entries: ents})
		}
	}
	cc := func(i, term, node uint64) EntRef {
		h := confChangeHex(i, node)
		return EntRef{Index: i, Term: term, Type: int(raftpb.EntryConfChange), Len: len(h) / 2, Hex: h}
	}
	// term 1: bootstrap conf changes + data 1..300
	appendRange(1, 300, 1, 1, map[uint64]EntRef{1: cc(1, 1, 1), 2: cc(2, 1, 2), 3: cc(3, 1, 3), 4: {Index: 4, Term: 1, Len: 0}})
	// leader change: term 2, node 2 elected; entries 281.. are overwritten (281..300 of term 1 are discarded)
	commit = 280
	p.add(Op{Op: "save", HardState: &HS{2, 2, commit}})
	appendRange(281, 500, 2, 2, map[uint64]EntRef{281: {Index: 281, Term: 2, Len: 0}})
	commit = 500
	p.add(Op{Op: "save", HardState: &HS{2, 2, commit}})
	p.add(Op{Op: "snap_save", Index: 500, Term: 2, Voters: voters, DataLen: 10000})
	p.add(Op{Op: "save_snapshot", Index: 500, Term: 2})
	// term 3, node 3 elected; conf change adding node 4 at 700
	p.add(Op{Op: "save", HardState: &HS{3, 3, commit}})
	appendRange(501, 900, 3, 3, map[uint64]EntRef{501: {Index: 501, Term: 3, Len: 0}, 700: cc(700, 3, 4)})
	commit = 900
	p.add(Op{Op: "save", HardState: &HS{3, 3, commit}})
	p.add(Op{Op: "snap_save", Index: 900, Term: 3, Voters: []uint64{1, 2, 3, 4}, DataLen: 20000})
	p.add(Op{Op: "save_snapshot", Index: 900, Term: 3})
	appendRange(901, 1000, 3, 3, nil)
	p.add(Op{Op: "save", HardState: &HS{3, 3, 990}})
	p.add(Op{Op: "close"})
	return p.ops
}

// smallPlan: 200 entries (0..2000 bytes) in small batches, 64 KiB segments, final Save carries
// only entry 201 (3000 bytes) with an empty HardState, so the last record in the WAL is an entry.
func smallPlan(metadata string, n uint64, seg int64) []Op {
	r := &splitmix{s: 0x5A11}
	p := &planBuilder{}
	p.add(Op{Op: "create", Metadata: metadata, SegmentSize: seg})
	p.add(Op{Op: "save", HardState: &HS{1, 1, 0}})
	idx := uint64(1)
	for idx <= n {
		b := uint64(1 + r.intn(8))
		if idx+b-1 > n {
			b = n - idx + 1
		}
		var ents []EntRef
		for k := uint64(0); k < b; k++ {
			ents = append(ents, EntRef{Index: idx + k, Term: 1, Len: r.intn(2001)})
		}
		idx += b
		commit := uint64(0)
		if idx-1 > 3 {
			commit = idx - 1 - 3
		}
		p.add(Op{Op: "save", HardState: &HS{1, 1, commit}, Entries: ents})
	}
	p.add(Op{Op: "save", Entries: []EntRef{{Index: n + 1, Term: 1, Len: 3000}}})
	p.add(Op{Op: "close"})
	return p.ops
}

// modelEntries computes what ReadAll from snapshot index `from` should return, independently of etcd.
func modelEntries(seed uint64, ops []Op, from uint64) (ents []raftpb.Entry, hs raftpb.HardState) {
	for _, o := range ops {
		if o.Op != "save" {
			continue
		}
		for _, e := range o.Entries {
			if e.Index <= from {
				continue
			}
			up := int(e.Index - from - 1)
			if up > len(ents) {
				die("model: gap at %d", e.Index)
			}
			ents = append(ents[:up], raftpb.Entry{Index: e.Index, Term: e.Term, Type: raftpb.EntryType(e.Type), Data: entryData(seed, e)})
		}
		if o.HardState != nil {
			hs = raftpb.HardState{Term: o.HardState.Term, Vote: o.HardState.Vote, Commit: o.HardState.Commit}
		}
	}
	return
}

func walChecksFor(walDir string, specs []WalCheck) []WalCheck {
	var out []WalCheck
	for _, s := range specs {
		out = append(out, runWalCheck(walDir, s))
	}
	return out
}

func rc(name, mode string, idx, term uint64) WalCheck {
	return WalCheck{Name: name, Mode: mode, OpenAt: SnapRef{idx, term}}
}

func lastSegment(walDir string) string {
	names := listSuffix(walDir, ".wal")
	return filepath.Join(walDir, names[len(names)-1])
}

func cmdGenFixtures(args []string) {
	fs := flag.NewFlagSet("gen-fixtures", flag.ExitOnError)
	out := fs.String("out", "", "output directory (must not exist or be empty)")
	fs.Parse(args)
	if *out == "" {
		die("gen-fixtures: need --out")
	}
	if ents, err := os.ReadDir(*out); err == nil && len(ents) > 0 {
		die("gen-fixtures: %s is not empty", *out)
	}
	must(os.MkdirAll(*out, 0755), "mkdir")
	root, _ := filepath.Abs(*out)
	const seed = 0xE7CDA1
	var index Index
	index.Format, index.Generator = indexFormat, generator()

	finish := func(m *Manifest, dirName string) {
		m.Format, m.Generator, m.DigestSpec, m.ErrorClasses = manifestFormat, generator(), digestSpec, errorClasses
		if m.Ops != nil {
			m.DataGen = dataGenSpec
		}
		// must_fail: a strict open fails, i.e. wal.Open(write mode)+ReadAll at index 0, or snap.Read of some snap file
		m.MustFail = false
		for _, c := range m.WalChecks {
			if c.Mode == "write" && c.OpenAt.Index == 0 && c.ExpectError != "" {
				m.MustFail = true
				m.FailureMode = "wal open (write mode) + ReadAll: " + c.ExpectError
			}
		}
		if m.Snap != nil {
			for _, f := range m.Snap.PerFile {
				if f.ExpectError != "" {
					m.MustFail = true
					m.FailureMode = "snap.Read(" + f.File + "): " + f.ExpectError + "; Snapshotter.Load falls back to " + m.Snap.Load.File
				}
			}
		}
		writeJSONFile(filepath.Join(root, dirName, "manifest.json"), m)
		probs, _ := checkManifest(filepath.Join(root, dirName), m, checkOpts{})
		if len(probs) > 0 {
			die("self-check of %s failed: %v", dirName, probs)
		}
		index.Fixtures = append(index.Fixtures, IndexEntry{Name: m.Name, Dir: dirName, Manifest: dirName + "/manifest.json",
			MustFail: m.MustFail, FailureMode: m.FailureMode, Description: m.Description})
	}

	// (a)+(b) basic: WAL + snap dir with 2 snapshot files
	{
		name := "basic"
		ops := basicPlan(seed)
		walDir, snapDir := filepath.Join(root, name, "wal"), filepath.Join(root, name, "snap")
		must(os.MkdirAll(filepath.Join(root, name), 0755), "mkdir")
		execPlan(walDir, snapDir, seed, ops, nil, 0)
		m := &Manifest{Name: name, WalDir: "wal", SnapDir: "snap", DataSeed: seed, Ops: ops,
			Description: "valid WAL: metadata 'fixture-meta', 1000 entries (0..5000 B, 3 terms, entries 281..300 of term 1 overwritten by term 2, conf changes at 1,2,3,700), " +
				"WAL snapshot records at 500/term2 and 900/term3, 512 KiB segments (several files); snap dir with 2 snapshot files (500/2 and 900/3)"}
		m.WalFiles = listSuffix(walDir, ".wal")
		if len(m.WalFiles) < 2 {
			die("basic: expected >=2 segments, got %v", m.WalFiles)
		}
		m.WalChecks = walChecksFor(walDir, []WalCheck{
			rc("read-all", "read", 0, 0), rc("read-from-snap-500", "read", 500, 2), rc("read-from-snap-900", "read", 900, 3),
			rc("open-write-all", "write", 0, 0), rc("open-write-from-snap-500", "write", 500, 2),
			rc("snap-term-mismatch", "read", 500, 3), rc("snap-not-in-wal", "read", 700, 3),
			rc("verify-500", "verify", 500, 2), rc("verify-term-mismatch", "verify", 500, 1),
			rc("valid-snapshots", "valid_snapshots", 0, 0),
		})
		// cross-check etcd's answers with an independent model of the plan
		for _, c := range m.WalChecks {
			if (c.Mode == "read" || c.Mode == "write") && c.ExpectError == "" {
				ents, hs := modelEntries(seed, ops, c.OpenAt.Index)
				want := makeResult([]byte("fixture-meta"), hs, ents)
				if !jsonEq(want, c.Result) {
					die("basic: etcd result for %s differs from model: etcd %+v model %+v", c.Name, c.Result, want)
				}
			}
		}
		m.Snap = runSnapSpec(snapDir, &SnapSpec{})
		finish(m, name)
	}
	// (c) torn tail by truncation, (c2) torn tail by zeroed sectors, (d) crc mismatch by flipped byte
	smallOps := smallPlan("fixture-meta", 200, 64*1024)
	smallChecks := []WalCheck{rc("read-all", "read", 0, 0), rc("open-write-all", "write", 0, 0),
		rc("repair-then-open-write", "repair", 0, 0), rc("verify-0", "verify", 0, 0), rc("valid-snapshots", "valid_snapshots", 0, 0)}
	{
		name := "torn-truncated"
		walDir := filepath.Join(root, name, "wal")
		must(os.MkdirAll(filepath.Join(root, name), 0755), "mkdir")
		execPlan(walDir, "", seed, smallOps, nil, 0)
		last := lastSegment(walDir)
		recs, err := scanFile(last)
		must(err, "scan")
		lr := recs[len(recs)-1]
		if lr.Type != 2 || lr.EntIndex != 201 {
			die("torn: last record is not entry 201: %+v", lr)
		}
		fi, _ := os.Stat(last)
		cut := lr.Offset + 8 + lr.Len/2
		must(os.Truncate(last, cut), "truncate")
		m := &Manifest{Name: name, WalDir: "wal", DataSeed: seed, Ops: smallOps,
			Description: "torn tail: last segment truncated in the middle of its last record (entry 201). Read mode returns entries 1..200; write-mode open fails with unexpected EOF; wal.Repair truncates the partial record",
			Corruptions: []Corruption{{Kind: "truncate", File: filepath.Base(last), Offset: cut, OriginalSize: fi.Size(),
				Description: fmt.Sprintf("file truncated to %d bytes: mid-way through the record at offset %d (len %d)", cut, lr.Offset, lr.Len)}}}
		m.WalFiles = listSuffix(walDir, ".wal")
		m.WalChecks = walChecksFor(walDir, smallChecks)
		finish(m, name)
	}
	{
		name := "torn-zeroed"
		walDir := filepath.Join(root, name, "wal")
		must(os.MkdirAll(filepath.Join(root, name), 0755), "mkdir")
		execPlan(walDir, "", seed, smallOps, nil, 0)
		last := lastSegment(walDir)
		recs, err := scanFile(last)
		must(err, "scan")
		lr := recs[len(recs)-1]
		dataStart, dataEnd := lr.Offset+8, lr.Offset+8+lr.Len
		z := (dataStart + 511) / 512 * 512
		if z >= dataEnd {
			die("torn-zeroed: record does not cross a sector")
		}
		f, err := os.OpenFile(last, os.O_WRONLY, 0)
		must(err, "open")
		_, err = f.WriteAt(make([]byte, dataEnd-z), z)
		must(err, "zero")
		f.Close()
		m := &Manifest{Name: name, WalDir: "wal", DataSeed: seed, Ops: smallOps,
			Description: "torn write: in the last record (entry 201) the bytes from the first 512-byte sector boundary to the record end are zeroed (file size unchanged). etcd's isTornEntry turns the crc failure into unexpected EOF",
			Corruptions: []Corruption{{Kind: "zero", File: filepath.Base(last), Offset: z, Length: dataEnd - z,
				Description: fmt.Sprintf("zeroed [%d,%d) inside the record at offset %d (len %d)", z, dataEnd, lr.Offset, lr.Len)}}}
		m.WalFiles = listSuffix(walDir, ".wal")
		m.WalChecks = walChecksFor(walDir, smallChecks)
		finish(m, name)
	}
	{
		name := "crc-flip"
		walDir := filepath.Join(root, name, "wal")
		must(os.MkdirAll(filepath.Join(root, name), 0755), "mkdir")
		execPlan(walDir, "", seed, smallOps, nil, 0)
		// the entry record closest to index 100 with >= 64 data bytes
		var file string
		var target rawRec
		best := uint64(1 << 62)
		for _, n := range listSuffix(walDir, ".wal") {
			recs, err := scanFile(filepath.Join(walDir, n))
			must(err, "scan")
			for _, r := range recs {
				if r.Type == 2 && r.EntData >= 64 {
					d := r.EntIndex - 100
					if r.EntIndex < 100 {
						d = 100 - r.EntIndex
					}
					if d < best {
						best, file, target = d, n, r
					}
				}
			}
		}
		// the record's protobuf ends with the entry's Data; flip the middle byte of Data
		off := target.Offset + 8 + target.Len - 1 - int64(target.EntData/2)
		p := filepath.Join(walDir, file)
		b, err := os.ReadFile(p)
		must(err, "read")
		mask := 0x01
		if b[off]^0x01 == 0 {
			mask = 0x02
		}
		b[off] ^= byte(mask)
		must(os.WriteFile(p, b, 0600), "write")
		m := &Manifest{Name: name, WalDir: "wal", DataSeed: seed, Ops: smallOps,
			Description: fmt.Sprintf("one byte flipped in the data of entry %d (segment %s, not the last segment): every open/read fails with crc mismatch", target.EntIndex, file),
			Corruptions: []Corruption{{Kind: "xor", File: file, Offset: off, XorMask: mask,
				Description: fmt.Sprintf("byte at offset %d XOR 0x%02x, inside entry %d's Data (record at offset %d, len %d)", off, mask, target.EntIndex, target.Offset, target.Len)}}}
		m.WalFiles = listSuffix(walDir, ".wal")
		m.WalChecks = walChecksFor(walDir, smallChecks)
		finish(m, name)
	}
	// (e) snap dir whose newest snapshot is corrupt: Load falls back to the older one
	{
		name := "snap-newest-corrupt"
		snapDir := filepath.Join(root, name, "snap")
		must(os.MkdirAll(snapDir, 0755), "mkdir")
		ops := []Op{{Op: "snap_save", Index: 500, Term: 2, Voters: []uint64{1, 2, 3}, DataLen: 10000},
			{Op: "snap_save", Index: 900, Term: 3, Voters: []uint64{1, 2, 3, 4}, DataLen: 20000}}
		execPlan("", snapDir, seed, ops, nil, 0)
		nf := fmt.Sprintf("%016x-%016x.snap", 3, 900)
		p := filepath.Join(snapDir, nf)
		b, err := os.ReadFile(p)
		must(err, "read")
		off := int64(len(b) / 2)
		b[off] ^= 0x01
		must(os.WriteFile(p, b, 0644), "write")
		m := &Manifest{Name: name, SnapDir: "snap", DataSeed: seed, Ops: ops,
			Description: "snap dir with 2 snapshot files; the newest (900/3) has a flipped byte (snap crc mismatch). Snapshotter.Load() skips it, renames it to .broken, and returns 500/2",
			Corruptions: []Corruption{{Kind: "xor", File: nf, Offset: off, XorMask: 1, Description: "middle byte of the snap file flipped"}}}
		m.Snap = runSnapSpec(snapDir, &SnapSpec{})
		finish(m, name)
	}
	// (f) swarmkit-style secretbox-encrypted WAL + snapshot, deterministic nonces
	{
		name := "secretbox"
		key := fixtureKey()
		cr := newCrypter(key)
		const nonceSeed = 0x4E0CE
		ops := smallPlan("fixture-meta-secretbox", 100, 64*1024)
		ops = append(ops[:len(ops)-1], Op{Op: "snap_save", Index: 50, Term: 1, Voters: []uint64{1}, DataLen: 5000}, Op{Op: "close"})
		walDir, snapDir := filepath.Join(root, name, "wal"), filepath.Join(root, name, "snap")
		must(os.MkdirAll(filepath.Join(root, name), 0755), "mkdir")
		execPlan(walDir, snapDir, seed, ops, cr, nonceSeed)
		ds := &DecryptSpec{Algorithm: "secretbox", KeyHex: hex.EncodeToString(key)}
		dec := rc("read-all-decrypted", "read", 0, 0)
		dec.Decrypt = ds
		decw := rc("open-write-all-decrypted", "write", 0, 0)
		decw.Decrypt = ds
		bad := rc("read-all-wrong-key", "read", 0, 0)
		bk := make([]byte, 32)
		bad.Decrypt = &DecryptSpec{Algorithm: "secretbox", KeyHex: hex.EncodeToString(bk)}
		m := &Manifest{Name: name, WalDir: "wal", SnapDir: "snap", DataSeed: seed, Ops: ops,
			Encryption: fmt.Sprintf("swarmkit-style: every entry's Data (and the snapshot's Data) is replaced by protobuf MaybeEncryptedRecord{1: algorithm=1 (NACLSecretboxSalsa20Poly1305), 2: secretbox.Seal(plaintext, nonce, key), 3: nonce}; "+
				"key = %s; entry nonce = gen(seed=0x%x, index, term, 24), snapshot nonce = gen(seed=0x%x, index, term, 24) using data_gen; snapshot plaintext uses seed data_seed^0x5eed", hex.EncodeToString(key), nonceSeed, nonceSeed^0x5eed),
			Description: "100 encrypted entries (+ entry 101 of 3000 B) and one encrypted snapshot (50/1); checks with the right key (plaintext digests), with no key (stored ciphertext digests) and with a wrong key (decrypt_failed)"}
		m.WalFiles = listSuffix(walDir, ".wal")
		m.WalChecks = walChecksFor(walDir, []WalCheck{dec, decw, rc("read-all-raw", "read", 0, 0), bad})
		// cross-check plaintext against the model
		ents, hs := modelEntries(seed, ops, 0)
		if !jsonEq(makeResult([]byte("fixture-meta-secretbox"), hs, ents), m.WalChecks[0].Result) {
			die("secretbox: decrypted result differs from model")
		}
		m.Snap = runSnapSpec(snapDir, &SnapSpec{Decrypt: ds})
		finish(m, name)
	}
	// snap fixtures use generated data: snapshot data = gen(data_seed ^ 0x5eed, index, term, data_len)
	writeJSONFile(filepath.Join(root, "manifest.json"), index)
	for _, f := range index.Fixtures {
		fmt.Printf("%-22s must_fail=%-5v %s\n", f.Name, f.MustFail, f.FailureMode)
	}
	fmt.Printf("wrote %d fixtures + manifest.json to %s\n", len(index.Fixtures), root)
}

func jsonEq(a, b interface{}) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// ---------------------------------------------------------------------------
// dump

func isDirWith(dir, suffix string) bool { return len(listSuffix(dir, suffix)) > 0 }

func cmdDump(args []string) {
	fs := flag.NewFlagSet("dump", flag.ExitOnError)
	dir := fs.String("dir", "", "WAL dir, snap dir, or a dir containing wal/ and/or snap/ (or member/wal, member/snap)")
	si := fs.Uint64("snap-index", 0, "open the WAL at this snapshot index")
	st := fs.Uint64("snap-term", 0, "... and term")
	listEnts := fs.Bool("entries", false, "list every entry (index term type len)")
	records := fs.Bool("records", false, "raw frame scan of every segment (peer's own parser)")
	keyHex := fs.String("key-hex", "", "decrypt entries/snapshots (swarmkit secretbox) with this 32-byte hex key")
	fs.Parse(args)
	if *dir == "" {
		die("dump: need --dir")
	}
	var cr *crypter
	if *keyHex != "" {
		k, err := hex.DecodeString(*keyHex)
		must(err, "key-hex")
		cr = newCrypter(k)
	}
	var walDir, snapDir string
	switch {
	case isDirWith(*dir, ".wal"):
		walDir = *dir
	case isDirWith(*dir, ".snap"):
		snapDir = *dir
	default:
		for _, pre := range []string{"", "member"} {
			if d := filepath.Join(*dir, pre, "wal"); isDirWith(d, ".wal") {
				walDir = d
			}
			if d := filepath.Join(*dir, pre, "snap"); isDirWith(d, ".snap") {
				snapDir = d
			}
		}
	}
	if walDir == "" && snapDir == "" {
		die("dump: no .wal or .snap files found under %s", *dir)
	}
	out := map[string]interface{}{"etcd_version": version.Version}
	if walDir != "" {
		wd := map[string]interface{}{"dir": walDir}
		var files []map[string]interface{}
		for _, n := range listSuffix(walDir, ".wal") {
			fi, _ := os.Stat(filepath.Join(walDir, n))
			f := map[string]interface{}{"name": n, "size": fi.Size()}
			if *records {
				recs, err := scanFile(filepath.Join(walDir, n))
				f["records"] = recs
				if err != nil {
					f["scan_error"] = err.Error()
				}
			}
			files = append(files, f)
		}
		wd["files"] = files
		var md []byte
		var hs raftpb.HardState
		var ents []raftpb.Entry
		err := safely(func() error {
			w, e := wal.OpenForRead(lg, walDir, walpb.Snapshot{Index: *si, Term: *st})
			if e != nil {
				return e
			}
			defer w.Close()
			md, hs, ents, e = w.ReadAll()
			if cr != nil && (e == nil || errors.Is(e, wal.ErrSnapshotNotFound)) {
				if de := decryptEntries(cr, ents); de != nil {
					return de
				}
			}
			return e
		})
		wd["open_at"] = SnapRef{*si, *st}
		if err != nil {
			wd["read_error"] = err.Error()
			wd["read_error_class"] = classify(err)
		}
		if md != nil || len(ents) > 0 {
			res := makeResult(md, hs, ents)
			wd["metadata"], wd["metadata_hex"], wd["hardstate"] = res.Metadata, res.MetadataHex, res.HardState
			wd["entry_count"], wd["first_index"], wd["last_index"] = res.EntryCount, res.FirstIndex, res.LastIndex
			wd["entries_data_bytes"], wd["entries_data_sha256"], wd["entries_full_sha256"] = res.DataBytes, res.DataSHA256, res.FullSHA256
			type tr struct {
				Term  uint64 `json:"term"`
				First uint64 `json:"first"`
				Last  uint64 `json:"last"`
				Count int    `json:"count"`
			}
			var terms []tr
			types := map[string]int{}
			for _, e := range ents {
				types[e.Type.String()]++
				if len(terms) == 0 || terms[len(terms)-1].Term != e.Term {
					terms = append(terms, tr{e.Term, e.Index, e.Index, 0})
				}
				terms[len(terms)-1].Last = e.Index
				terms[len(terms)-1].Count++
			}
			wd["term_runs"], wd["type_counts"] = terms, types
			if *listEnts {
				var l [][]interface{}
				for _, e := range ents {
					h := sha256.Sum256(e.Data)
					l = append(l, []interface{}{e.Index, e.Term, e.Type.String(), len(e.Data), hex.EncodeToString(h[:8])})
				}
				wd["entries"] = l
			}
		}
		vs := runWalCheck(walDir, rc("", "valid_snapshots", 0, 0))
		wd["valid_snapshot_entries"] = vs.Snapshots
		if vs.ExpectError != "" {
			wd["valid_snapshot_entries_error"] = vs.ErrorText
		}
		out["wal"] = wd
	}
	if snapDir != "" {
		var ds *DecryptSpec
		if *keyHex != "" {
			ds = &DecryptSpec{Algorithm: "secretbox", KeyHex: *keyHex}
		}
		s := runSnapSpec(snapDir, &SnapSpec{Decrypt: ds})
		out["snap"] = map[string]interface{}{"dir": snapDir, "files": s.Files, "per_file": s.PerFile, "load": s.Load}
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	fmt.Println(string(b))
}

// ---------------------------------------------------------------------------
// dump-jsonl: exactly what etcd's ReadAll returned, one compact JSON line per item (for diffing
// against another implementation's output). Line shapes (keys in this order):
//
//	{"record":"metadata","data_b64":"..."}
//	{"record":"snapshot","index":I,"term":T}            (the position the WAL was opened at)
//	{"record":"hardstate","term":N,"vote":N,"commit":N}
//	{"record":"entry","index":N,"term":N,"type":N,"data_b64":"..."}   (one per entry, ReadAll order)
//	{"record":"error","class":"...","text":"..."}       (last line, exit 1)
//
// The metadata/snapshot/hardstate/entry lines are printed only when ReadAll returned something
// (metadata != nil, a non-empty HardState or entries): on most errors etcd returns nothing, on
// ErrSnapshotNotFound it returns everything. With --key-hex, entries are decrypted in order and the
// first failure stops the entry lines and becomes the error line (class decrypt_failed).

func usageErr(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "etcdwal-peer: "+format+"\n", a...)
	os.Exit(2)
}

// jsonStr encodes s as a JSON string without HTML escaping (no trailing newline).
func jsonStr(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}

func cmdDumpJSONL(args []string) {
	fs := flag.NewFlagSet("dump-jsonl", flag.ExitOnError)
	dir := fs.String("dir", "", "WAL directory (the directory holding the *.wal files)")
	si := fs.Uint64("snap-index", 0, "open the WAL at walpb.Snapshot{Index: I, ...}")
	st := fs.Uint64("snap-term", 0, "... Term: T}")
	keyHex := fs.String("key-hex", "", "32-byte secretbox key (hex): entry Data is a swarmkit MaybeEncryptedRecord; print the plaintext")
	mode := fs.String("mode", "read", "read = wal.OpenForRead on D; write = wal.Open on a temp copy of D (D is never modified)")
	fs.Parse(args)
	if fs.NArg() > 0 {
		usageErr("dump-jsonl: unexpected arguments %q", fs.Args())
	}
	if *dir == "" {
		usageErr("dump-jsonl: need --dir")
	}
	if *mode != "read" && *mode != "write" {
		usageErr("dump-jsonl: --mode must be read or write, got %q", *mode)
	}
	var cr *crypter
	if *keyHex != "" {
		k, err := hex.DecodeString(*keyHex)
		if err != nil || len(k) != 32 {
			usageErr("dump-jsonl: --key-hex must be 64 hex digits (32 bytes)")
		}
		cr = newCrypter(k)
	}

	var md []byte
	var hs raftpb.HardState
	var ents []raftpb.Entry
	walDir, tmpRoot := *dir, ""
	err := safely(func() error {
		if *mode == "write" {
			d, e := copyDir(*dir)
			if d != "" {
				tmpRoot = filepath.Dir(d)
			}
			if e != nil {
				return e
			}
			walDir = d
		}
		ws := walpb.Snapshot{Index: *si, Term: *st}
		var w *wal.WAL
		var e error
		if *mode == "write" {
			wal.SegmentSizeBytes = 64 * 1024 // write-mode Open preallocates the next segment (in the temp copy); keep it small
			w, e = wal.Open(lg, walDir, ws)
		} else {
			w, e = wal.OpenForRead(lg, walDir, ws)
		}
		if e != nil {
			return e
		}
		defer w.Close()
		md, hs, ents, e = w.ReadAll()
		return e
	})
	if tmpRoot != "" {
		os.RemoveAll(tmpRoot)
	}

	returned := md != nil || hs.Term != 0 || hs.Vote != 0 || hs.Commit != 0 || len(ents) > 0
	n := len(ents)
	if cr != nil && returned {
		for i := range ents {
			p, de := cr.open(ents[i].Data)
			if de != nil {
				err = decryptErr{fmt.Errorf("entry %d: %v", ents[i].Index, de)}
				n = i
				break
			}
			ents[i].Data = p
		}
	}

	bw := bufio.NewWriterSize(os.Stdout, 1<<20)
	enc := base64.StdEncoding
	if returned {
		fmt.Fprintf(bw, `{"record":"metadata","data_b64":"%s"}`+"\n", enc.EncodeToString(md))
		fmt.Fprintf(bw, `{"record":"snapshot","index":%d,"term":%d}`+"\n", *si, *st)
		fmt.Fprintf(bw, `{"record":"hardstate","term":%d,"vote":%d,"commit":%d}`+"\n", hs.Term, hs.Vote, hs.Commit)
		for _, e := range ents[:n] {
			fmt.Fprintf(bw, `{"record":"entry","index":%d,"term":%d,"type":%d,"data_b64":"%s"}`+"\n",
				e.Index, e.Term, int32(e.Type), enc.EncodeToString(e.Data))
		}
	}
	if err != nil {
		fmt.Fprintf(bw, `{"record":"error","class":%s,"text":%s}`+"\n", jsonStr(classify(err)), jsonStr(err.Error()))
	}
	if ferr := bw.Flush(); ferr != nil {
		fmt.Fprintf(os.Stderr, "etcdwal-peer: dump-jsonl: write stdout: %v\n", ferr)
		os.Exit(1)
	}
	if err != nil {
		os.Exit(1)
	}
}

// ---------------------------------------------------------------------------
// gen-random: a seeded random WAL + snap dir written with etcd's own code, shaped like a raft node's
// history (batches, term changes, leader empty entries, overwrites of the uncommitted tail,
// conf changes, large entries, snapshots, several segments). No model: compare with dump-jsonl.

type genRandomSummary struct {
	Op               string    `json:"op"`
	Seed             int64     `json:"seed"`
	EntriesWritten   int       `json:"entries_written"`
	LastIndex        uint64    `json:"last_index"`
	LastTerm         uint64    `json:"last_term"`
	Commit           uint64    `json:"commit"`
	HardState        HS        `json:"hardstate"`
	Segments         int       `json:"segments"`
	SnapshotRecords  []SnapRef `json:"snapshot_records"`
	SnapFiles        []string  `json:"snap_files"`
	MetadataLen      int       `json:"metadata_len"`
	Saves            int       `json:"saves"`
	Overwrites       int       `json:"overwrites"`
	OverwrittenCount int       `json:"overwritten_entries"`
	TermChanges      int       `json:"term_changes"`
	ConfChanges      int       `json:"conf_change_entries"`
	LargeEntries     int       `json:"large_entries"`
	EmptyEntries     int       `json:"empty_entries"`
	SegmentSize      int64     `json:"segment_size_bytes"`
	MaxSize          int       `json:"max_size"`
	WalDir           string    `json:"wal_dir"`
	SnapDir          string    `json:"snap_dir"`
	WalFiles         []string  `json:"wal_files"`
}

func cmdGenRandom(args []string) {
	fs := flag.NewFlagSet("gen-random", flag.ExitOnError)
	out := fs.String("out", "", "output directory (must not exist or be empty); gets wal/ and snap/")
	seed := fs.Int64("seed", 0, "math/rand seed (required)")
	n := fs.Int("entries", 3000, "total entries passed to Save (overwritten ones included)")
	seg := fs.Int64("segment-size", 262144, "wal.SegmentSizeBytes")
	maxSize := fs.Int("max-size", 262144, "max data size of the ~2% large entries")
	fs.Parse(args)
	seedSet := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "seed" {
			seedSet = true
		}
	})
	if fs.NArg() > 0 {
		usageErr("gen-random: unexpected arguments %q", fs.Args())
	}
	if *out == "" || !seedSet || *n <= 0 || *seg <= 0 || *maxSize < 0 {
		usageErr("gen-random: need --out, --seed, --entries>0, --segment-size>0, --max-size>=0")
	}
	if ents, err := os.ReadDir(*out); err == nil && len(ents) > 0 {
		die("gen-random: %s is not empty", *out)
	}
	must(os.MkdirAll(*out, 0755), "mkdir")
	root, _ := filepath.Abs(*out)
	walDir, snapDir := filepath.Join(root, "wal"), filepath.Join(root, "snap")
	must(os.MkdirAll(snapDir, 0755), "mkdir snap")

	r := mrand.New(mrand.NewSource(*seed))
	randBuf := func(k int) []byte {
		b := make([]byte, k)
		r.Read(b)
		return b
	}
	sum := genRandomSummary{Op: "gen-random", Seed: *seed, SegmentSize: *seg, MaxSize: *maxSize,
		WalDir: walDir, SnapDir: snapDir, SnapshotRecords: []SnapRef{}, SnapFiles: []string{}}

	wal.SegmentSizeBytes = *seg
	md := randBuf(r.Intn(201))
	sum.MetadataLen = len(md)
	w, err := wal.Create(lg, walDir, md)
	must(err, "wal.Create")
	ss := snap.New(lg, snapDir)

	term, vote := uint64(1), uint64(r.Intn(6))
	var commit, last, lastSnap uint64
	termAt := []uint64{0} // termAt[i] = term of the current entry at index i
	leaderEmpty := true   // the first entry of a new term is the leader's empty entry (Data nil)
	snapEvery := *n / 5
	if snapEvery < 1 {
		snapEvery = 1
	}
	nextSnap := snapEvery
	written := 0
	for written < *n {
		b := 1 + r.Intn(64)
		if b > *n-written {
			b = *n - written
		}
		start := last + 1
		switch {
		case last > commit && r.Intn(100) < 3:
			// new leader with a higher term overwrites part of the uncommitted tail
			start = commit + 1 + uint64(r.Int63n(int64(last-commit)))
			term += 1 + uint64(r.Intn(2))
			vote = uint64(r.Intn(6))
			leaderEmpty = true
			sum.Overwrites++
			sum.OverwrittenCount += int(last - start + 1)
			sum.TermChanges++
		case r.Intn(100) < 2:
			term++
			vote = uint64(r.Intn(6))
			leaderEmpty = true
			sum.TermChanges++
		}
		ents := make([]raftpb.Entry, b)
		for k := range ents {
			e := raftpb.Entry{Index: start + uint64(k), Term: term, Type: raftpb.EntryNormal}
			if leaderEmpty {
				leaderEmpty = false
				sum.EmptyEntries++
			} else {
				size := r.Intn(4097)
				if r.Intn(100) < 2 {
					size = r.Intn(*maxSize + 1)
					sum.LargeEntries++
				}
				if r.Intn(100) < 1 {
					e.Type = raftpb.EntryConfChange
					sum.ConfChanges++
				}
				if size > 0 {
					e.Data = randBuf(size)
				} else {
					sum.EmptyEntries++
					if r.Intn(2) == 0 {
						e.Data = []byte{} // Data field present with length 0 (nil => field absent)
					}
				}
			}
			ents[k] = e
		}
		termAt = termAt[:start]
		for range ents {
			termAt = append(termAt, term)
		}
		last = start + uint64(b) - 1
		written += b
		if last > commit {
			commit += uint64(r.Int63n(int64(last-commit) + 1))
		}
		hs := raftpb.HardState{Term: term, Vote: vote, Commit: commit}
		must(w.Save(hs, ents), fmt.Sprintf("wal.Save #%d", sum.Saves))
		sum.Saves++
		sum.HardState = hsJSON(hs)

		if written >= nextSnap {
			nextSnap += snapEvery
			if commit > lastSnap {
				// as etcdserver's storage.SaveSnap + Release: snap file first, then the WAL record
				s := raftpb.Snapshot{Data: randBuf(r.Intn(10001)),
					Metadata: raftpb.SnapshotMetadata{Index: commit, Term: termAt[commit]}}
				for v := 1 + r.Intn(5); v > 0; v-- {
					s.Metadata.ConfState.Voters = append([]uint64{uint64(v)}, s.Metadata.ConfState.Voters...)
				}
				must(ss.SaveSnap(s), "SaveSnap")
				must(w.SaveSnapshot(walpb.Snapshot{Index: commit, Term: termAt[commit]}), "wal.SaveSnapshot")
				must(w.ReleaseLockTo(commit), "wal.ReleaseLockTo")
				sum.SnapshotRecords = append(sum.SnapshotRecords, SnapRef{commit, termAt[commit]})
				lastSnap = commit
			}
		}
	}
	must(w.Close(), "wal.Close")

	sum.EntriesWritten, sum.LastIndex, sum.LastTerm, sum.Commit = written, last, termAt[last], commit
	sum.WalFiles = listSuffix(walDir, ".wal")
	sum.Segments = len(sum.WalFiles)
	sum.SnapFiles = append(sum.SnapFiles, listSuffix(snapDir, ".snap")...)
	printJSON(sum)
}
