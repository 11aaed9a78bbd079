// kvload drives a raftkv cluster with concurrent clients, each sending
// PUT /KEY?wait=1 (answered once the write is committed) one after another,
// and prints one JSON line: committed writes per second and the commit
// latency's p50/p99 as the clients saw it.
//
//	kvload --endpoints http://127.0.0.1:12380,... [--clients 16]
//	       [--duration 10s] [--warmup 1s] [--value-size 128]
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

type result struct {
	Clients    int     `json:"clients"`
	ValueSize  int     `json:"value_size"`
	Seconds    float64 `json:"seconds"`
	Writes     int     `json:"writes"`
	Failed     int     `json:"failed"`
	WritesPerS float64 `json:"writes_per_s"`
	P50Ms      float64 `json:"p50_ms"`
	P99Ms      float64 `json:"p99_ms"`
	MaxMs      float64 `json:"max_ms"`
}

func main() {
	endpoints := flag.String("endpoints", "", "comma-separated raftkv HTTP URLs (clients spread over them)")
	clients := flag.Int("clients", 16, "concurrent clients")
	duration := flag.Duration("duration", 10*time.Second, "measured time")
	warmup := flag.Duration("warmup", time.Second, "time before measuring")
	valueSize := flag.Int("value-size", 128, "bytes per value")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: kvload --endpoints URL,... [--clients N] [--duration D] [--warmup D] [--value-size B]")
		flag.PrintDefaults()
	}
	flag.Parse()
	eps := strings.Split(*endpoints, ",")
	if *endpoints == "" || *clients < 1 {
		flag.Usage()
		os.Exit(2)
	}
	value := bytes.Repeat([]byte("v"), *valueSize)
	tr := &http.Transport{MaxIdleConnsPerHost: *clients}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}

	var mu sync.Mutex
	var lat []time.Duration
	failed := 0
	start := time.Now().Add(*warmup)
	end := start.Add(*duration)
	var wg sync.WaitGroup
	for c := 0; c < *clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			ep := eps[c%len(eps)]
			var mine []time.Duration
			bad := 0
			for i := 0; ; i++ {
				t0 := time.Now()
				if t0.After(end) {
					break
				}
				req, _ := http.NewRequest(http.MethodPut, fmt.Sprintf("%s/c%d-%d?wait=1", ep, c, i%1000), bytes.NewReader(value))
				resp, err := client.Do(req)
				ok := err == nil && resp.StatusCode == http.StatusNoContent
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if t0.Before(start) {
					continue
				}
				if ok {
					mine = append(mine, time.Since(t0))
				} else {
					bad++
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			failed += bad
			mu.Unlock()
		}(c)
	}
	wg.Wait()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000
	}
	r := result{Clients: *clients, ValueSize: *valueSize, Seconds: duration.Seconds(), Writes: len(lat),
		Failed: failed, WritesPerS: float64(len(lat)) / duration.Seconds(), P50Ms: pct(0.50), P99Ms: pct(0.99), MaxMs: pct(1)}
	json.NewEncoder(os.Stdout).Encode(r)
	if len(lat) == 0 {
		fmt.Fprintln(os.Stderr, "kvload: no write was committed")
		os.Exit(1)
	}
}
