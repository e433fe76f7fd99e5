// peer-go: the frame echo written on Go's standard library the way Zinx
// runs on it: one goroutine per connection, blocking reads and writes on
// net.Conn (the runtime's netpoller underneath). Each goroutine reads
// into a buffer of its own that starts at 4 KiB and grows, up to 64 KiB
// or one frame, only when a read fills it; every complete frame found
// goes back in one Write and only the tail of an incomplete frame is
// moved to the front. No allocation per message.
//
//	peer-go [PORT]            prints "listening on 127.0.0.1:PORT"
//
// Built by bench/CMakeLists.txt when the go tool is installed.
package main

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"strconv"
)

const (
	host       = "127.0.0.1"
	headerLen  = 8
	startSize  = 4 * 1024
	readMax    = 64 * 1024
	maxPayload = 16 << 20
)

// complete returns the length of the complete frames at the start of b,
// the size of the first incomplete frame (0 when unknown), and false when
// a header declares more than maxPayload.
func complete(b []byte) (int, int, bool) {
	off := 0
	for len(b)-off >= headerLen {
		n := int(binary.BigEndian.Uint32(b[off+4 : off+8]))
		if n > maxPayload {
			return off, 0, false
		}
		if len(b)-off-headerLen < n {
			return off, headerLen + n, true
		}
		off += headerLen + n
	}
	return off, 0, true
}

func serve(c net.Conn) {
	defer c.Close()
	buf := make([]byte, startSize)
	have := 0
	for {
		n, err := c.Read(buf[have:])
		filled := have+n == len(buf)
		have += n
		done, next, ok := complete(buf[:have])
		if !ok {
			return
		}
		if done > 0 {
			if _, werr := c.Write(buf[:done]); werr != nil {
				return
			}
			have = copy(buf, buf[done:have])
		}
		if err != nil {
			return
		}
		if next > len(buf) || (filled && len(buf) < readMax) {
			size := 2 * len(buf)
			if size < next {
				size = next
			}
			bigger := make([]byte, size)
			copy(bigger, buf[:have])
			buf = bigger
		}
	}
}

func main() {
	port := 0
	if len(os.Args) > 2 {
		fmt.Fprintln(os.Stderr, "usage: peer-go [PORT]")
		os.Exit(2)
	}
	if len(os.Args) == 2 {
		p, err := strconv.Atoi(os.Args[1])
		if err != nil || p < 0 || p > 65535 {
			fmt.Fprintln(os.Stderr, "usage: peer-go [PORT]")
			os.Exit(2)
		}
		port = p
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "peer-go: listen:", err)
		os.Exit(1)
	}
	fmt.Printf("listening on %s:%d\n", host, l.Addr().(*net.TCPAddr).Port)
	for {
		c, err := l.Accept()
		if err != nil {
			continue
		}
		go serve(c)
	}
}
