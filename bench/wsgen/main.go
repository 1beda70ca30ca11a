// Command wsgen is the WebSocket load generator of dfws' benchmarks.
//
// One process holds up to ~19,000 connections (one epoll loop reads them
// all, a 512-byte buffer each) and spends less CPU per message than the
// servers it measures. Modes:
//
//	echo       plain WebSocket connections to -path; the "echo" command
//	           makes each send a text and wait for its echo, in a loop
//	broadcast  plain connections to an app that sends a text starting with
//	           "b:" to every open connection (bench/apps/ws_echo.py); the
//	           "broadcast" command sends "b:<seq>:<unix time>:..." from one
//	           connection and waits until every connection received it
//	windows    what a browser does on a df_websockets page: GET -page on a
//	           keep-alive connection (it sets the dfwskey/dfwsurl cookies),
//	           then the upgrade on -path with those cookies and -origin, a
//	           "--heartbeat--" every -heartbeat; signal frames
//	           {"signal":..., "opts":{"seq":N,"ts":T,...}, ...} are counted
//	           (another process triggers them; ts is its time.time())
//
// After connecting it prints one JSON line {"event":"ready",...}, then reads
// JSON commands from stdin, one per line, and answers each with one line:
//
//	{"cmd":"echo","duration":S,"size":B}     -> round_trips, errors, lat_us, wall
//	{"cmd":"broadcast","rounds":R,"warmup":W,"size":B,"timeout":S}
//	                                         -> round_s, lat_us, missing, dups
//	{"cmd":"wait","seqs":[...],"timeout":S}  -> complete, missing, last_recv
//	{"cmd":"stats","seqs":[...]}             -> lat_us, received, first_recv, last_recv,
//	                                            dups, unexpected, open, closed, close_codes,
//	                                            wire_bytes, message_bytes, wire_bytes_total,
//	                                            deflate_accepted, deflate_refused,
//	                                            inflate_errors
//	{"cmd":"cpu"}                            -> cpu (seconds of this process)
//	{"cmd":"quit"}                           -> bye, cpu; closes every connection
//
// wire_bytes and message_bytes sum, over the first receipt of each seq by
// each connection, the frame bytes read (headers included, before
// inflation) and the message's bytes (after inflation); wire_bytes_total
// counts every byte read since the handshakes (heartbeats, control frames).
// -deflate offers permessage-deflate (RFC 7692, no context takeover either
// way); deflate_accepted/deflate_refused count the connections whose
// server accepted it or answered without it (they go on uncompressed), and
// the "ready" line carries both too.
//
// Latencies are receive time minus the sender's timestamp, in microseconds,
// on the same machine and clock. -sources binds connections round-robin to
// several loopback addresses (127.0.0.2, ...): each source address has its
// own ~28,000 ephemeral ports, so 50,000 windows need two or more.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type config struct {
	mode, addr, path, page, origin string
	count, concurrency             int
	deflate                        bool
	sources                        []net.IP
	heartbeat, timeout             time.Duration
}

type gen struct {
	cfg     config
	conns   []*wsConn
	failed  int
	errors  []string
	rec     recorder
	echoRun atomic.Pointer[echoRun]
	poller  *poller
	nextSeq int // broadcast mode: sequence numbers it sends itself
	// -deflate: connections whose 101 accepted permessage-deflate, or not
	deflateAccepted, deflateRefused int
}

// seqStat is what the deliveries of one sequenced message left.
type seqStat struct {
	lat         []int32 // latencies in µs, one per first receipt
	first, last float64 // unix time of the first/last receipt
	wire, plain int64   // frame bytes read and message bytes, over those receipts
}

// recorder keeps every delivery of a sequenced message.
type recorder struct {
	mu         sync.Mutex
	seqs       map[int]*seqStat
	dups       int
	unexpected int
	live       atomic.Int64  // open connections: the deliveries each seq needs
	notify     chan struct{} // poked when a seq reached every open connection
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// get returns seq's record, made on first use; r.mu held.
func (r *recorder) get(seq int) *seqStat {
	s := r.seqs[seq]
	if s == nil {
		s = &seqStat{}
		r.seqs[seq] = s
	}
	return s
}

func (r *recorder) record(c *wsConn, seq int, ts float64, t time.Time, wire, plain int) {
	now := unixSeconds(t)
	fresh := c.markSeen(seq) // only the poller goroutine touches c.seen
	r.mu.Lock()
	complete := false
	if !fresh {
		r.dups++
	} else {
		s := r.get(seq)
		s.lat = append(s.lat, int32((now-ts)*1e6))
		if s.first == 0 {
			s.first = now
		}
		s.last = now
		s.wire += int64(wire)
		s.plain += int64(plain)
		complete = int64(len(s.lat)) >= r.live.Load()
	}
	r.mu.Unlock()
	if complete { // waking wait() once per seq, not per delivery, keeps it cheap
		r.poke()
	}
}

func (r *recorder) poke() {
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

func (r *recorder) bad() {
	r.mu.Lock()
	r.unexpected++
	r.mu.Unlock()
}

var seqKey, tsKey = []byte(`"seq"`), []byte(`"ts"`)

// numberAfter returns the JSON number following the quoted key and its
// colon in msg (a scan, not a parse: one pass per frame keeps the client cheap).
func numberAfter(msg, key []byte) ([]byte, bool) {
	i := bytes.Index(msg, key)
	if i < 0 {
		return nil, false
	}
	i += len(key)
	for i < len(msg) && (msg[i] == ' ' || msg[i] == ':') {
		i++
	}
	j := i
	for j < len(msg) && strings.IndexByte("0123456789.eE+-", msg[j]) >= 0 {
		j++
	}
	return msg[i:j], j > i
}

func (g *gen) onMessage(c *wsConn, msg []byte, wire int, t time.Time) {
	switch g.cfg.mode {
	case "echo":
		if r := g.echoRun.Load(); r != nil && len(msg) == len(r.payload) {
			r.reply(c, t)
		} else {
			g.rec.bad()
		}
	case "broadcast": // b:<seq>:<ts>:padding
		parts := bytes.SplitN(msg, []byte(":"), 4)
		if len(parts) < 3 || string(parts[0]) != "b" {
			g.rec.bad()
			return
		}
		seq, err1 := strconv.Atoi(string(parts[1]))
		ts, err2 := strconv.ParseFloat(string(parts[2]), 64)
		if err1 != nil || err2 != nil {
			g.rec.bad()
			return
		}
		g.rec.record(c, seq, ts, t, wire, len(msg))
	case "windows":
		if string(msg) == "--heartbeat--" {
			return
		}
		s, ok1 := numberAfter(msg, seqKey)
		f, ok2 := numberAfter(msg, tsKey)
		seq, err1 := strconv.Atoi(string(s))
		ts, err2 := strconv.ParseFloat(string(f), 64)
		if !ok1 || !ok2 || err1 != nil || err2 != nil {
			g.rec.bad()
			return
		}
		g.rec.record(c, seq, ts, t, wire, len(msg))
	}
}

// pageClient GETs the page over one keep-alive connection, as a browser
// loading several windows does.
type pageClient struct {
	source net.IP
	nc     net.Conn
	br     *bufio.Reader
}

// cookies GETs path and returns the Cookie header value made of every
// Set-Cookie of the answer (raw name=value pairs, as a browser sends them).
func (p *pageClient) cookies(addr, path string, timeout time.Duration) (string, error) {
	for {
		fresh := p.nc == nil
		if fresh {
			nc, err := dial(p.source, addr, timeout)
			if err != nil {
				return "", err
			}
			p.nc, p.br = nc, bufio.NewReader(nc)
		}
		cookie, err := p.get(addr, path, timeout)
		if err == nil || fresh {
			return cookie, err
		}
		// a reused keep-alive connection may have been closed by the server
		p.nc.Close()
		p.nc = nil
	}
}

func (p *pageClient) get(addr, path string, timeout time.Duration) (string, error) {
	p.nc.SetDeadline(time.Now().Add(timeout))
	if _, err := fmt.Fprintf(p.nc, "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/html\r\n\r\n",
		path, addr); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(p.br, nil)
	if err != nil {
		return "", err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.Close {
		p.nc.Close()
		p.nc = nil
	}
	var pairs []string
	found := false
	for _, v := range resp.Header.Values("Set-Cookie") {
		pair := strings.TrimSpace(strings.SplitN(v, ";", 2)[0])
		pairs = append(pairs, pair)
		found = found || strings.HasPrefix(pair, "dfwskey=")
	}
	if resp.StatusCode != 200 || !found {
		return "", fmt.Errorf("page GET answered %d without a dfwskey cookie", resp.StatusCode)
	}
	return strings.Join(pairs, "; "), nil
}

func (g *gen) source(i int) net.IP {
	if len(g.cfg.sources) == 0 {
		return nil
	}
	return g.cfg.sources[i%len(g.cfg.sources)]
}

// openAll connects cfg.count connections, cfg.concurrency at a time.
func (g *gen) openAll() {
	conns := make([]*wsConn, g.cfg.count)
	var next atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < g.cfg.concurrency; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			page := pageClient{source: g.source(w)}
			for {
				i := int(next.Add(1) - 1)
				if i >= g.cfg.count {
					break
				}
				c, err := g.openOne(i, &page)
				mu.Lock()
				if c != nil && g.cfg.deflate {
					if c.deflate {
						g.deflateAccepted++
					} else {
						g.deflateRefused++
					}
				}
				if err != nil {
					g.failed++
					if len(g.errors) < 5 {
						g.errors = append(g.errors, err.Error())
					}
				} else {
					conns[i] = c
				}
				mu.Unlock()
			}
			if page.nc != nil {
				page.nc.Close()
			}
		}(w)
	}
	wg.Wait()
	for _, c := range conns {
		if c != nil {
			g.conns = append(g.conns, c)
		}
	}
}

func (g *gen) openOne(i int, page *pageClient) (*wsConn, error) {
	cookie := ""
	if g.cfg.mode == "windows" {
		var err error
		if cookie, err = page.cookies(g.cfg.addr, g.cfg.page, g.cfg.timeout); err != nil {
			return nil, err
		}
	}
	c, err := wsOpen(i, g.source(i), g.cfg.addr, g.cfg.path, g.cfg.origin, cookie,
		g.cfg.deflate, g.cfg.timeout)
	if err != nil {
		return nil, err
	}
	g.rec.live.Add(1)
	if err := g.poller.add(c); err != nil {
		g.rec.live.Add(-1)
		c.file.Close()
		return nil, err
	}
	return c, nil
}

// heartbeats sends "--heartbeat--" on every window once per interval,
// spread evenly over the interval, until stop is closed.
func (g *gen) heartbeats(interval time.Duration, stop chan struct{}) {
	if len(g.conns) == 0 {
		return
	}
	step := interval / time.Duration(len(g.conns))
	msg := []byte("--heartbeat--")
	for {
		for _, c := range g.conns {
			select {
			case <-stop:
				return
			case <-time.After(step):
			}
			if !c.closed.Load() {
				c.send(opText, msg)
			}
		}
	}
}

// missing counts the deliveries of seqs still expected from open connections.
func (g *gen) missing(seqs []int) (int, float64) {
	live := int(g.rec.live.Load())
	g.rec.mu.Lock()
	defer g.rec.mu.Unlock()
	miss, last := 0, 0.0
	for _, seq := range seqs {
		if s := g.rec.seqs[seq]; s != nil {
			miss += max(0, live-len(s.lat))
			last = max(last, s.last)
		} else {
			miss += live
		}
	}
	return miss, last
}

// wait returns once every open connection received every seq, or at timeout.
func (g *gen) wait(seqs []int, timeout time.Duration) map[string]any {
	deadline := time.After(timeout)
	for {
		miss, last := g.missing(seqs)
		if miss == 0 {
			return map[string]any{"event": "waited", "complete": true, "missing": 0, "last_recv": last}
		}
		select {
		case <-g.rec.notify:
		case <-deadline:
			return map[string]any{"event": "waited", "complete": false, "missing": miss, "last_recv": last}
		}
	}
}

func (g *gen) stats(seqs []int) map[string]any {
	g.rec.mu.Lock()
	lat := []int32{}
	first, last := 0.0, 0.0
	var wire, plain int64
	for _, seq := range seqs {
		s := g.rec.seqs[seq]
		if s == nil {
			continue
		}
		lat = append(lat, s.lat...)
		if first == 0 || s.first < first {
			first = s.first
		}
		last = max(last, s.last)
		wire += s.wire
		plain += s.plain
	}
	dups, unexpected := g.rec.dups, g.rec.unexpected
	g.rec.mu.Unlock()
	codes := map[int32]bool{}
	closed := 0
	for _, c := range g.conns {
		if c.closed.Load() {
			closed++
			if code := c.closeCode.Load(); code != 0 {
				codes[code] = true
			}
		}
	}
	codeList := []int32{}
	for code := range codes {
		codeList = append(codeList, code)
	}
	return map[string]any{"event": "stats", "lat_us": lat, "received": len(lat),
		"first_recv": first, "last_recv": last, "dups": dups, "unexpected": unexpected,
		"open": len(g.conns) - closed, "closed": closed, "close_codes": codeList,
		"wire_bytes": wire, "message_bytes": plain, "wire_bytes_total": wireTotal.Load(),
		"deflate_accepted": g.deflateAccepted, "deflate_refused": g.deflateRefused,
		"inflate_errors": inflateErrors.Load()}
}

// echoRun is one "echo" command: each connection has one message in flight;
// the poller sends the next as soon as the echo of the previous one is read
// (no goroutine per connection to wake: the client stays cheaper than the
// server), until stop.
type echoRun struct {
	payload  []byte
	stop     int64        // unix nanoseconds
	inFlight atomic.Int64 // connections whose last echo has not come back
	done     chan struct{}
	mu       sync.Mutex
	lat      []int32 // round trips in µs
}

func (r *echoRun) start(c *wsConn) {
	c.sentAt.Store(time.Now().UnixNano())
	if c.send(opText, r.payload) != nil {
		r.finish()
	}
}

// reply runs in the poller goroutine for every echo read.
func (r *echoRun) reply(c *wsConn, t time.Time) {
	r.mu.Lock()
	r.lat = append(r.lat, int32((t.UnixNano()-c.sentAt.Load())/1000))
	r.mu.Unlock()
	if t.UnixNano() < r.stop {
		r.start(c)
	} else {
		r.finish()
	}
}

func (r *echoRun) finish() {
	if r.inFlight.Add(-1) == 0 {
		close(r.done)
	}
}

// echo runs the send-and-wait loop of every open connection for duration;
// a connection whose echo is still missing 10 s after that counts as an error.
func (g *gen) echo(duration time.Duration, size int) map[string]any {
	r := &echoRun{payload: bytes.Repeat([]byte("x"), size),
		stop: time.Now().Add(duration).UnixNano(), done: make(chan struct{})}
	open := []*wsConn{}
	for _, c := range g.conns {
		if !c.closed.Load() {
			open = append(open, c)
		}
	}
	if len(open) == 0 {
		return map[string]any{"event": "echo", "error": "no open connection"}
	}
	r.inFlight.Store(int64(len(open)))
	g.echoRun.Store(r)
	start := time.Now()
	for _, c := range open {
		r.start(c)
	}
	select {
	case <-r.done:
	case <-time.After(duration + 10*time.Second):
	}
	wall := time.Since(start).Seconds()
	g.echoRun.Store(nil)
	r.mu.Lock()
	defer r.mu.Unlock()
	return map[string]any{"event": "echo", "round_trips": len(r.lat), "errors": r.inFlight.Load(),
		"closed": len(g.conns) - int(g.rec.live.Load()), "lat_us": r.lat, "wall": wall}
}

// broadcast sends warmup+rounds triggers from the first open connection,
// each once the previous one reached every connection (or timed out).
func (g *gen) broadcast(rounds, warmup, size int, timeout time.Duration) map[string]any {
	pad := strings.Repeat("x", max(0, size-30))
	roundS := []float64{}
	seqs := []int{}
	missing := 0
	for i := 0; i < warmup+rounds; i++ {
		g.nextSeq++
		seq := g.nextSeq
		var sender *wsConn
		for _, c := range g.conns {
			if !c.closed.Load() {
				sender = c
				break
			}
		}
		if sender == nil {
			return map[string]any{"event": "broadcast", "error": "no open connection"}
		}
		t0 := unixSeconds(time.Now())
		sender.send(opText, []byte(fmt.Sprintf("b:%d:%.6f:%s", seq, t0, pad)))
		w := g.wait([]int{seq}, timeout)
		if i < warmup {
			continue
		}
		seqs = append(seqs, seq)
		missing += w["missing"].(int)
		roundS = append(roundS, w["last_recv"].(float64)-t0)
	}
	out := g.stats(seqs)
	out["event"] = "broadcast"
	out["round_s"] = roundS
	out["missing"] = missing
	return out
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

type command struct {
	Cmd      string  `json:"cmd"`
	Duration float64 `json:"duration"`
	Size     int     `json:"size"`
	Rounds   int     `json:"rounds"`
	Warmup   int     `json:"warmup"`
	Timeout  float64 `json:"timeout"`
	Seqs     []int   `json:"seqs"`
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func parseFlags() config {
	var cfg config
	var host, sources string
	var port int
	var heartbeat, timeout float64
	flag.StringVar(&cfg.mode, "mode", "echo", "echo, broadcast or windows")
	flag.StringVar(&host, "host", "127.0.0.1", "server address")
	flag.IntVar(&port, "port", 8000, "server port")
	flag.StringVar(&cfg.path, "path", "/", "WebSocket path")
	flag.StringVar(&cfg.page, "page", "/page/", "windows: page to GET first")
	flag.StringVar(&cfg.origin, "origin", "", "Origin header of the upgrade (empty: none)")
	flag.IntVar(&cfg.count, "count", 100, "connections (windows) to open")
	flag.IntVar(&cfg.concurrency, "concurrency", 16, "connections opened at a time")
	flag.StringVar(&sources, "sources", "", "comma-separated source addresses (127.0.0.2,...)")
	flag.Float64Var(&heartbeat, "heartbeat", 60, "windows: seconds between heartbeats (0: none)")
	flag.Float64Var(&timeout, "timeout", 30, "seconds one connection may take to open")
	flag.BoolVar(&cfg.deflate, "deflate", false,
		"offer permessage-deflate (no context takeover) and inflate what arrives compressed")
	flag.Parse()
	cfg.addr = net.JoinHostPort(host, strconv.Itoa(port))
	cfg.heartbeat, cfg.timeout = seconds(heartbeat), seconds(timeout)
	for _, s := range strings.Split(sources, ",") {
		if s = strings.TrimSpace(s); s != "" {
			ip := net.ParseIP(s)
			if ip == nil {
				fmt.Fprintf(os.Stderr, "wsgen: bad source address %q\n", s)
				os.Exit(2)
			}
			cfg.sources = append(cfg.sources, ip)
		}
	}
	if cfg.mode != "echo" && cfg.mode != "broadcast" && cfg.mode != "windows" {
		fmt.Fprintf(os.Stderr, "wsgen: unknown mode %q\n", cfg.mode)
		os.Exit(2)
	}
	return cfg
}

func main() {
	cfg := parseFlags()
	// One thread does the work (the epoll loop); more Ps only spin looking
	// for goroutines to run, which costs CPU the server should be measured on.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	g := &gen{cfg: cfg, rec: recorder{seqs: map[int]*seqStat{}, notify: make(chan struct{}, 1)}}
	out := json.NewEncoder(os.Stdout)
	var err error
	pause := 200 * time.Microsecond // fan-out modes: see poller.pause
	if cfg.mode == "echo" {
		pause = 0
	}
	if g.poller, err = newPoller(pause); err != nil {
		fmt.Fprintln(os.Stderr, "wsgen:", err)
		os.Exit(1)
	}
	go g.poller.run(g.onMessage, func(*wsConn) {
		g.rec.live.Add(-1)
		g.rec.poke() // fewer deliveries are now awaited
	})
	start := time.Now()
	// Go raises the soft open-files limit to the hard one at start-up; report it.
	var lim syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	g.errors = []string{}
	g.openAll()
	out.Encode(map[string]any{"event": "ready", "open": len(g.conns), "failed": g.failed,
		"errors": g.errors, "seconds": time.Since(start).Seconds(), "nofile": lim.Cur,
		"cpu": cpuSeconds(), "deflate_accepted": g.deflateAccepted,
		"deflate_refused": g.deflateRefused})
	stopBeats := make(chan struct{})
	if cfg.mode == "windows" && cfg.heartbeat > 0 {
		go g.heartbeats(cfg.heartbeat, stopBeats)
	}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var cmd command
		if err := json.Unmarshal(in.Bytes(), &cmd); err != nil {
			out.Encode(map[string]any{"event": "error", "error": err.Error()})
			continue
		}
		switch cmd.Cmd {
		case "echo":
			out.Encode(g.echo(seconds(cmd.Duration), cmd.Size))
		case "broadcast":
			out.Encode(g.broadcast(cmd.Rounds, cmd.Warmup, cmd.Size, seconds(cmd.Timeout)))
		case "wait":
			out.Encode(g.wait(cmd.Seqs, seconds(cmd.Timeout)))
		case "stats":
			out.Encode(g.stats(cmd.Seqs))
		case "cpu":
			out.Encode(map[string]any{"event": "cpu", "cpu": cpuSeconds()})
		case "quit":
			close(stopBeats)
			for _, c := range g.conns {
				c.close()
			}
			out.Encode(map[string]any{"event": "bye", "cpu": cpuSeconds()})
			return
		default:
			out.Encode(map[string]any{"event": "error", "error": "unknown command " + cmd.Cmd})
		}
	}
}
