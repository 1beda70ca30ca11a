package main

// A minimal RFC 6455 client connection: the opening handshake, masked
// frames out, unmasked frames in, ping answered, close echoed. Only what the
// benchmarks need; no extensions, no subprotocols.

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
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
	nc        net.Conn
	br        *bufio.Reader
	wmu       sync.Mutex // heartbeats and senders write from other goroutines
	wbuf      []byte
	closed    atomic.Bool
	closeCode atomic.Int32
	rbuf      []byte         // reused for every frame read: handlers do not keep it
	seen      []uint64       // bitset of the sequence numbers received (duplicates)
	echo      chan time.Time // echo mode: receive time of the reply
}

// dial opens a TCP connection from source (nil: the kernel chooses) to addr.
func dial(source net.IP, addr string, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	if source != nil {
		d.LocalAddr = &net.TCPAddr{IP: source}
	}
	return d.Dial("tcp", addr)
}

// wsOpen dials addr and performs the opening handshake for path with the
// given Origin and Cookie header values (empty: not sent).
func wsOpen(id int, source net.IP, addr, path, origin, cookie string,
	timeout time.Duration) (*wsConn, error) {
	nc, err := dial(source, addr, timeout)
	if err != nil {
		return nil, err
	}
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
	b.WriteString("\r\n")
	if _, err := io.WriteString(nc, b.String()); err != nil {
		nc.Close()
		return nil, err
	}
	// Small read buffer: tens of thousands of idle windows must stay cheap.
	br := bufio.NewReaderSize(nc, 1024)
	req, _ := http.NewRequest("GET", path, nil)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		nc.Close()
		return nil, err
	}
	if resp.StatusCode != 101 {
		nc.Close()
		return nil, fmt.Errorf("upgrade answered %d", resp.StatusCode)
	}
	sum := sha1.Sum([]byte(key + wsGUID))
	if resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		nc.Close()
		return nil, errors.New("wrong Sec-WebSocket-Accept")
	}
	nc.SetDeadline(time.Time{})
	return &wsConn{id: id, nc: nc, br: br, echo: make(chan time.Time, 1)}, nil
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
	_, err := c.nc.Write(buf)
	return err
}

// readLoop reads frames until the connection ends, handing every complete
// text or binary message to onMessage with its receive time.
func (c *wsConn) readLoop(onMessage func(c *wsConn, msg []byte, t time.Time)) {
	defer c.closed.Store(true)
	var hdr [14]byte
	var frag []byte
	for {
		if _, err := io.ReadFull(c.br, hdr[:2]); err != nil {
			return
		}
		fin, opcode := hdr[0]&0x80 != 0, hdr[0]&0x0F
		masked := hdr[1]&0x80 != 0
		n := uint64(hdr[1] & 0x7F)
		switch n {
		case 126:
			if _, err := io.ReadFull(c.br, hdr[2:4]); err != nil {
				return
			}
			n = uint64(binary.BigEndian.Uint16(hdr[2:4]))
		case 127:
			if _, err := io.ReadFull(c.br, hdr[2:10]); err != nil {
				return
			}
			n = binary.BigEndian.Uint64(hdr[2:10])
		}
		var mask [4]byte
		if masked { // servers must not mask; accept it anyway
			if _, err := io.ReadFull(c.br, mask[:]); err != nil {
				return
			}
		}
		if uint64(cap(c.rbuf)) < n {
			c.rbuf = make([]byte, n)
		}
		payload := c.rbuf[:n]
		if _, err := io.ReadFull(c.br, payload); err != nil {
			return
		}
		t := time.Now()
		if masked {
			for i := range payload {
				payload[i] ^= mask[i&3]
			}
		}
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
			c.nc.Close()
			return
		case opText, opBin:
			if fin {
				onMessage(c, payload, t)
			} else {
				frag = append(frag[:0], payload...)
			}
		case opCont:
			frag = append(frag, payload...)
			if fin {
				onMessage(c, frag, t)
			}
		}
	}
}

// close sends a close frame (1000) and closes the socket.
func (c *wsConn) close() {
	if !c.closed.Load() {
		c.send(opClose, []byte{0x03, 0xE8})
	}
	c.nc.Close()
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

var randState atomic.Uint64

// fastRand is a splitmix64 step: masking keys need no cryptographic quality
// here, and crypto/rand per frame would cost more than the frame.
func fastRand() uint32 {
	z := randState.Add(0x9E3779B97F4A7C15)
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return uint32(z ^ (z >> 31))
}
