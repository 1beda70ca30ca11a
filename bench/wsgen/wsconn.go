package main

// A minimal RFC 6455 client connection: the opening handshake (through Go's
// net package), then the socket is handed to one epoll loop per process
// (poller below): masked frames out, unmasked frames in, ping answered,
// close echoed. Only what the benchmarks need. The one extension is
// permessage-deflate (RFC 7692) when -deflate asks for it: offered with both
// no_context_takeover parameters, incoming compressed messages inflated by
// one shared flate reader, outgoing messages left uncompressed (7.2.1 lets
// a sender compress none).
//
// Why not a goroutine per connection: each message then costs a goroutine
// wake-up and a second read that ends in EAGAIN; with tens of thousands of
// windows that made the generator cost as much CPU per delivery as the
// server it measures. One level-triggered epoll loop reads each ready socket
// once.

import (
	"bufio"
	"bytes"
	"compress/flate"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

const (
	opCont  = 0x0
	opText  = 0x1
	opBin   = 0x2
	opClose = 0x8
	opPing  = 0x9
	opPong  = 0xA
)

type wsConn struct {
	id        int
	fd        int
	file      *os.File   // owns fd: closing it closes the socket
	wmu       sync.Mutex // heartbeats and senders write from other goroutines
	wbuf      []byte
	closed    atomic.Bool
	closeCode atomic.Int32
	deflate   bool // permessage-deflate was negotiated
	// touched only by the poller goroutine:
	in       []byte   // bytes read and not yet parsed into frames
	frag     []byte   // a fragmented message being assembled
	fragWire int      // frame bytes (headers included) of that message so far
	fragComp bool     // its first frame had RSV1: it is compressed
	seen     []uint64 // bitset of the sequence numbers received (duplicates)
	// echo mode: when the message in flight was sent (unix nanoseconds)
	sentAt atomic.Int64
}

// dial opens a TCP connection from source (nil: the kernel chooses) to addr.
func dial(source net.IP, addr string, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	if source != nil {
		d.LocalAddr = &net.TCPAddr{IP: source}
	}
	return d.Dial("tcp", addr)
}

// The offer -deflate sends. Without context takeover neither side keeps
// zlib state between messages: one inflater serves every connection here,
// and dfws adds both parameters to any offer anyway.
const deflateOffer = "permessage-deflate; client_no_context_takeover; server_no_context_takeover"

// wsOpen dials addr and performs the opening handshake for path with the
// given Origin and Cookie header values (empty: not sent), offering
// permessage-deflate when deflate is set (c.deflate tells whether the
// server accepted). The returned connection's socket is non-blocking,
// ready for poller.add.
func wsOpen(id int, source net.IP, addr, path, origin, cookie string, deflate bool,
	timeout time.Duration) (*wsConn, error) {
	nc, err := dial(source, addr, timeout)
	if err != nil {
		return nil, err
	}
	defer nc.Close() // the socket lives on in a duplicate descriptor
	nc.SetDeadline(time.Now().Add(timeout))
	var raw [16]byte
	rand.Read(raw[:])
	key := base64.StdEncoding.EncodeToString(raw[:])
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"+
		"Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n",
		path, addr, key)
	if origin != "" {
		fmt.Fprintf(&b, "Origin: %s\r\n", origin)
	}
	if cookie != "" {
		fmt.Fprintf(&b, "Cookie: %s\r\n", cookie)
	}
	if deflate {
		fmt.Fprintf(&b, "Sec-WebSocket-Extensions: %s\r\n", deflateOffer)
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(nc, b.String()); err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(nc, 1024)
	req, _ := http.NewRequest("GET", path, nil)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 101 {
		return nil, fmt.Errorf("upgrade answered %d", resp.StatusCode)
	}
	sum := sha1.Sum([]byte(key + wsGUID))
	if resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		return nil, errors.New("wrong Sec-WebSocket-Accept")
	}
	accepted, err := deflateAnswer(resp.Header.Values("Sec-WebSocket-Extensions"), deflate)
	if err != nil {
		return nil, err
	}
	// Frames that arrived with the 101 answer are already in br.
	early, _ := br.Peek(br.Buffered())
	file, err := nc.(*net.TCPConn).File()
	if err != nil {
		return nil, err
	}
	fd := int(file.Fd())
	if err := syscall.SetNonblock(fd, true); err != nil { // Fd() made it blocking
		file.Close()
		return nil, err
	}
	c := &wsConn{id: id, fd: fd, file: file, deflate: accepted}
	c.in = append(make([]byte, 0, 512), early...)
	return c, nil
}

// deflateAnswer checks the server's Sec-WebSocket-Extensions answer
// (RFC 7692 5 and 7.1): true when it accepted permessage-deflate, an error
// when it answered with what was not offered (a client must then fail the
// connection). client_max_window_bits was not offered, so it is an error;
// server_max_window_bits only limits what the server uses, which the
// inflater (32 KiB window) reads whatever its value.
func deflateAnswer(values []string, offered bool) (bool, error) {
	accepted := false
	for _, v := range values {
		for _, ext := range strings.Split(v, ",") {
			params := strings.Split(ext, ";")
			name := strings.TrimSpace(params[0])
			if name == "" {
				continue
			}
			if !offered || name != "permessage-deflate" || accepted {
				return false, fmt.Errorf("extension answered but not offered: %q", v)
			}
			seen := map[string]bool{}
			for _, p := range params[1:] {
				key, val, _ := strings.Cut(strings.TrimSpace(p), "=")
				key, val = strings.TrimSpace(key), strings.Trim(strings.TrimSpace(val), `"`)
				switch {
				case seen[key]:
					return false, fmt.Errorf("permessage-deflate parameter %s repeated", key)
				case key == "server_no_context_takeover" || key == "client_no_context_takeover":
					if val != "" {
						return false, fmt.Errorf("permessage-deflate %s with a value", key)
					}
				case key == "server_max_window_bits":
					if n, err := strconv.Atoi(val); err != nil || n < 8 || n > 15 {
						return false, fmt.Errorf("permessage-deflate server_max_window_bits=%q", val)
					}
				default:
					return false, fmt.Errorf("permessage-deflate answered with %q", p)
				}
				seen[key] = true
			}
			if !seen["server_no_context_takeover"] {
				// offered, so an answer without it would keep the server's
				// context between messages, which a fresh inflater cannot read
				return false, errors.New("permessage-deflate accepted without server_no_context_takeover")
			}
			accepted = true
		}
	}
	return accepted, nil
}

// send writes one masked frame; safe from any goroutine.
func (c *wsConn) send(opcode byte, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	n := len(payload)
	buf := c.wbuf[:0]
	buf = append(buf, 0x80|opcode)
	switch {
	case n < 126:
		buf = append(buf, 0x80|byte(n))
	case n < 65536:
		buf = append(buf, 0x80|126, byte(n>>8), byte(n))
	default:
		buf = append(buf, 0x80|127)
		buf = binary.BigEndian.AppendUint64(buf, uint64(n))
	}
	var mask [4]byte
	binary.LittleEndian.PutUint32(mask[:], fastRand())
	buf = append(buf, mask[:]...)
	start := len(buf)
	buf = append(buf, payload...)
	for i := range payload {
		buf[start+i] ^= mask[i&3]
	}
	c.wbuf = buf
	for len(buf) > 0 {
		if c.closed.Load() {
			return errors.New("connection closed")
		}
		n, err := syscall.Write(c.fd, buf)
		if err == syscall.EAGAIN || err == syscall.EINTR {
			time.Sleep(time.Millisecond) // small frames: the send buffer is rarely full
			continue
		}
		if err != nil {
			return err
		}
		buf = buf[n:]
	}
	return nil
}

// Counters read by the stats command; written by the poller goroutine.
var (
	wireTotal     atomic.Int64 // every byte read from the sockets after the handshakes
	inflateErrors atomic.Int64 // compressed messages that did not inflate
)

// onMessageFunc gets each complete text or binary message: msg (inflated,
// valid until it returns) and the frame bytes it took on the wire, headers
// included.
type onMessageFunc func(c *wsConn, msg []byte, wire int, t time.Time)

// readable reads what the socket has and hands every complete text or
// binary message to onMessage. False when the connection is over.
func (c *wsConn) readable(onMessage onMessageFunc) bool {
	if cap(c.in)-len(c.in) < 256 {
		c.in = append(make([]byte, 0, 2*cap(c.in)), c.in...)
	}
	n, err := syscall.Read(c.fd, c.in[len(c.in):cap(c.in)])
	if err == syscall.EAGAIN || err == syscall.EINTR {
		return true
	}
	if n <= 0 {
		return false
	}
	wireTotal.Add(int64(n))
	c.in = c.in[:len(c.in)+n]
	t := time.Now()
	data := c.in
	for {
		payload, head, size := parseFrame(data)
		if size == 0 {
			break
		}
		data = data[size:]
		opcode, fin := head&0x0F, head&0x80 != 0
		switch opcode {
		case opPing:
			c.send(opPong, payload)
		case opClose:
			code := int32(1005)
			if len(payload) >= 2 {
				code = int32(binary.BigEndian.Uint16(payload))
			}
			c.closeCode.Store(code)
			c.send(opClose, payload[:min(2, len(payload))])
			return false
		case opText, opBin:
			// RSV1 marks a compressed message, on its first frame only (7.2.3.1)
			comp := c.deflate && head&0x40 != 0
			if fin && !comp {
				onMessage(c, payload, size, t)
			} else if fin {
				c.deliverInflated(payload, size, t, onMessage)
			} else {
				c.frag = append(c.frag[:0], payload...)
				c.fragWire, c.fragComp = size, comp
			}
		case opCont:
			c.frag = append(c.frag, payload...)
			c.fragWire += size
			if fin && !c.fragComp {
				onMessage(c, c.frag, c.fragWire, t)
			} else if fin {
				c.deliverInflated(c.frag, c.fragWire, t, onMessage)
			}
		}
	}
	c.in = c.in[:copy(c.in, data)] // keep an incomplete frame for the next read
	return true
}

// inflater inflates one message at a time for every connection: with no
// context takeover either way no state outlives a message, so one reader
// and two buffers serve the whole process. Used only by the poller goroutine.
type inflater struct {
	comp []byte        // the message's payload and the tail below
	src  bytes.Reader  // reads comp
	fr   io.ReadCloser // flate reader, Reset (flate.Resetter) per message
	out  []byte        // the inflated message
}

var infl inflater

// A message's payload is deflate data ending in a sync flush whose last 4
// bytes (00 00 ff ff) the sender removed (RFC 7692 7.2.1); put them back,
// then add an empty final stored block (01 00 00 ff ff) so that the reader
// ends with io.EOF instead of waiting for more blocks. A message that
// already ended with a final block stops the reader there (7.2.2).
var deflateTail = []byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

func (z *inflater) inflate(payload []byte) ([]byte, error) {
	z.comp = append(append(z.comp[:0], payload...), deflateTail...)
	z.src.Reset(z.comp)
	if z.fr == nil {
		z.fr = flate.NewReader(&z.src)
	} else if err := z.fr.(flate.Resetter).Reset(&z.src, nil); err != nil {
		return nil, err
	}
	out := z.out[:0]
	for {
		if len(out) == cap(out) {
			out = append(out, 0)[:len(out)] // grow
		}
		n, err := z.fr.Read(out[len(out):cap(out)])
		out = out[:len(out)+n]
		if err == io.EOF {
			z.out = out
			return out, nil
		}
		if err != nil {
			z.out = out
			return nil, err
		}
	}
}

// deliverInflated hands a compressed message to onMessage once inflated;
// one that does not inflate is counted (inflate_errors) and dropped.
func (c *wsConn) deliverInflated(payload []byte, wire int, t time.Time, onMessage onMessageFunc) {
	msg, err := infl.inflate(payload)
	if err != nil {
		inflateErrors.Add(1)
		return
	}
	onMessage(c, msg, wire, t)
}

// parseFrame decodes the frame at the start of data: its (unmasked)
// payload, its first byte (FIN, RSV1-3, opcode) and its total size; size 0
// when data holds only part of it. The payload is unmasked in place.
func parseFrame(data []byte) (payload []byte, head byte, size int) {
	if len(data) < 2 {
		return nil, 0, 0
	}
	head = data[0]
	masked := data[1]&0x80 != 0 // servers must not mask; accept it anyway
	n, i := uint64(data[1]&0x7F), 2
	switch n {
	case 126:
		if len(data) < 4 {
			return nil, 0, 0
		}
		n, i = uint64(binary.BigEndian.Uint16(data[2:4])), 4
	case 127:
		if len(data) < 10 {
			return nil, 0, 0
		}
		n, i = binary.BigEndian.Uint64(data[2:10]), 10
	}
	var mask []byte
	if masked {
		if len(data) < i+4 {
			return nil, 0, 0
		}
		mask, i = data[i:i+4], i+4
	}
	if uint64(len(data)-i) < n {
		return nil, 0, 0
	}
	payload = data[i : i+int(n)]
	for k := range mask {
		for j := k; j < len(payload); j += 4 {
			payload[j] ^= mask[k]
		}
	}
	return payload, head, i + int(n)
}

// close sends a close frame (1000); the process exit closes the socket.
func (c *wsConn) close() {
	if !c.closed.Load() {
		c.send(opClose, []byte{0x03, 0xE8})
	}
}

// markSeen records seq for this connection; false if it was seen before.
func (c *wsConn) markSeen(seq int) bool {
	word, bit := seq/64, uint64(1)<<(seq%64)
	for len(c.seen) <= word {
		c.seen = append(c.seen, 0)
	}
	if c.seen[word]&bit != 0 {
		return false
	}
	c.seen[word] |= bit
	return true
}

// poller is the one epoll loop reading every connection of the process.
type poller struct {
	epfd  int
	mu    sync.Mutex
	conns map[int32]*wsConn // by file descriptor
	// After a batch that did not fill the event array, wait this long before
	// the next epoll_wait: a broadcast reaches thousands of sockets one
	// write at a time, and reading them in batches instead of waking once
	// per socket divides the generator's CPU per delivery. It adds at most
	// this much to a measured latency (0: no pause, for echo round trips).
	pause time.Duration
}

func newPoller(pause time.Duration) (*poller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	return &poller{epfd: epfd, conns: map[int32]*wsConn{}, pause: pause}, nil
}

func (p *poller) add(c *wsConn) error {
	p.mu.Lock()
	p.conns[int32(c.fd)] = c
	p.mu.Unlock()
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(c.fd)}
	return syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, c.fd, &ev)
}

// run reads ready connections forever; onClose is called once for each
// connection that ended (after it is marked closed and its socket closed).
func (p *poller) run(onMessage onMessageFunc, onClose func(*wsConn)) {
	events := make([]syscall.EpollEvent, 512)
	for {
		n, err := syscall.EpollWait(p.epfd, events, -1)
		if err != nil {
			continue // EINTR
		}
		for _, ev := range events[:n] {
			p.mu.Lock()
			c := p.conns[ev.Fd]
			p.mu.Unlock()
			if c == nil || c.readable(onMessage) {
				continue
			}
			c.closed.Store(true)
			p.mu.Lock()
			delete(p.conns, ev.Fd)
			p.mu.Unlock()
			syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, c.fd, nil)
			c.file.Close()
			onClose(c)
		}
		if p.pause > 0 && n < len(events) {
			ts := syscall.NsecToTimespec(p.pause.Nanoseconds())
			syscall.Nanosleep(&ts, nil)
		}
	}
}

var randState atomic.Uint64

// fastRand is a splitmix64 step: masking keys need no cryptographic quality
// here, and crypto/rand per frame would cost more than the frame.
func fastRand() uint32 {
	z := randState.Add(0x9E3779B97F4A7C15)
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return uint32(z ^ (z >> 31))
}
