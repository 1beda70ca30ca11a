package main

import (
	"bytes"
	"compress/flate"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// compress is what a permessage-deflate sender does (RFC 7692 7.2.1):
// deflate, sync flush, drop the trailing 00 00 ff ff.
func compress(t *testing.T, msg []byte) []byte {
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.BestSpeed)
	w.Write(msg)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	out := b.Bytes()
	if !bytes.HasSuffix(out, []byte{0, 0, 0xff, 0xff}) {
		t.Fatalf("sync flush did not end with 00 00 ff ff: % x", out[len(out)-4:])
	}
	return out[:len(out)-4]
}

// frame is an unmasked server frame with the given first byte.
func frame(head byte, payload []byte) []byte {
	n := len(payload)
	out := []byte{head}
	switch {
	case n < 126:
		out = append(out, byte(n))
	case n < 65536:
		out = append(out, 126, byte(n>>8), byte(n))
	default:
		panic("test frames are small")
	}
	return append(out, payload...)
}

type got struct {
	msg  string
	wire int
}

// feed writes wire into a socket whose other end a wsConn reads, and
// returns the messages readable() handed over.
func feed(t *testing.T, deflate bool, chunks ...[]byte) []got {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fds[1])
	file := os.NewFile(uintptr(fds[0]), "test")
	defer file.Close()
	syscall.SetNonblock(fds[0], true)
	c := &wsConn{fd: fds[0], file: file, deflate: deflate, in: make([]byte, 0, 512)}
	var out []got
	on := func(_ *wsConn, msg []byte, wire int, _ time.Time) {
		out = append(out, got{string(msg), wire})
	}
	for _, chunk := range chunks { // one read per chunk: frames split across reads
		syscall.Write(fds[1], chunk)
		for i := 0; i < 100 && c.readable(on); i++ {
			if len(c.in) == 0 {
				break
			}
			var fdset syscall.FdSet
			fdset.Bits[fds[0]/64] |= 1 << (uint(fds[0]) % 64)
			tv := syscall.Timeval{Usec: 1000}
			if n, _ := syscall.Select(fds[0]+1, &fdset, nil, nil, &tv); n == 0 {
				break // an incomplete frame waits for the next chunk
			}
		}
	}
	return out
}

func TestInflateOneFrame(t *testing.T) {
	msg := `{"signal":"bench.tick","opts":{"seq":7,"ts":1.5,"pad":"` +
		strings.Repeat("<li>row</li>", 50) + `"}}`
	comp := compress(t, []byte(msg))
	f := frame(0x80|0x40|opText, comp)
	res := feed(t, true, f)
	if len(res) != 1 || res[0].msg != msg || res[0].wire != len(f) {
		t.Fatalf("got %+v, want the message once with wire %d", res, len(f))
	}
	if len(f) >= len(msg) {
		t.Fatalf("the compressed frame (%d) is not smaller than the message (%d)", len(f), len(msg))
	}
}

func TestInflateFragmentedAndSplitReads(t *testing.T) {
	msg := strings.Repeat("hello permessage-deflate ", 40)
	comp := compress(t, []byte(msg))
	a, b := comp[:len(comp)/2], comp[len(comp)/2:]
	f1 := frame(0x40|opText, a) // RSV1 on the first frame only
	ping := frame(0x80|opPing, []byte("p"))
	f2 := frame(0x80|opCont, b)
	all := append(append(append([]byte{}, f1...), ping...), f2...)
	// split in the middle of the second fragment: two reads
	cut := len(f1) + len(ping) + 3
	res := feed(t, true, all[:cut], all[cut:])
	if len(res) != 1 || res[0].msg != msg || res[0].wire != len(f1)+len(f2) {
		t.Fatalf("got %d messages (%+v), want one of wire %d", len(res), res, len(f1)+len(f2))
	}
	// then a plain message on the same connection is handed as it is
	plain := frame(0x80|opText, []byte("--heartbeat--"))
	res = feed(t, true, append(append([]byte{}, all...), plain...))
	if len(res) != 2 || res[1].msg != "--heartbeat--" || res[1].wire != len(plain) {
		t.Fatalf("got %+v", res)
	}
}

func TestInflateReusesReaderAcrossMessages(t *testing.T) {
	var chunks [][]byte
	want := []string{}
	for i := 0; i < 5; i++ {
		m := strings.Repeat(string(rune('a'+i)), 300+i)
		want = append(want, m)
		chunks = append(chunks, frame(0x80|0x40|opText, compress(t, []byte(m))))
	}
	res := feed(t, true, bytes.Join(chunks, nil))
	if len(res) != 5 {
		t.Fatalf("got %d messages", len(res))
	}
	for i := range res {
		if res[i].msg != want[i] {
			t.Fatalf("message %d inflated wrong", i)
		}
	}
}

func TestCorruptMessageCountedAndDropped(t *testing.T) {
	before := inflateErrors.Load()
	res := feed(t, true, frame(0x80|0x40|opText, []byte{0xff, 0xff, 0xff, 0xff}),
		frame(0x80|opText, []byte("after")))
	if len(res) != 1 || res[0].msg != "after" || inflateErrors.Load() != before+1 {
		t.Fatalf("got %+v, inflate errors %d", res, inflateErrors.Load()-before)
	}
}

func TestWithoutDeflateRSV1IsIgnored(t *testing.T) {
	// the path -deflate off takes: payloads are handed over as they are
	res := feed(t, false, frame(0x80|0x40|opText, []byte("raw")))
	if len(res) != 1 || res[0].msg != "raw" {
		t.Fatalf("got %+v", res)
	}
}

func TestDeflateAnswer(t *testing.T) {
	cases := []struct {
		values  []string
		offered bool
		ok      bool
		err     bool
	}{
		{nil, true, false, false},
		{nil, false, false, false},
		{[]string{"permessage-deflate; server_no_context_takeover; client_no_context_takeover"}, true, true, false},
		{[]string{"permessage-deflate;server_no_context_takeover;server_max_window_bits=10"}, true, true, false},
		{[]string{"permessage-deflate; client_no_context_takeover"}, true, false, true},
		{[]string{"permessage-deflate; server_no_context_takeover"}, false, false, true},
		{[]string{"permessage-deflate; server_no_context_takeover; client_max_window_bits=9"}, true, false, true},
		{[]string{"permessage-deflate; server_no_context_takeover; server_no_context_takeover"}, true, false, true},
		{[]string{"x-webkit-deflate-frame"}, true, false, true},
		{[]string{"permessage-deflate; server_no_context_takeover", "permessage-deflate; server_no_context_takeover"}, true, false, true},
	}
	for _, tc := range cases {
		ok, err := deflateAnswer(tc.values, tc.offered)
		if ok != tc.ok || (err != nil) != tc.err {
			t.Errorf("%q offered=%v: got %v, %v", tc.values, tc.offered, ok, err)
		}
	}
}
