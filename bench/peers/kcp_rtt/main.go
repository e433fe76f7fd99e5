// zinx-kcp-rtt: the load of the KCP benchmark (scripts/bench-kcp.sh), and
// the peers that check the impaired link before it is trusted.
//
// Modes:
//
//	-mode client   C connections over -proto tcp or kcp to -addr, each
//	               keeping -depth Zinx TLV frames in flight (1: request,
//	               reply, next request); prints one JSON line: frames/s
//	               and the round-trip percentiles of the frames sent in
//	               the measured window.
//	-mode server   an echo server on -listen (-proto tcp, kcp or udp), a
//	               stand-in for the C server and the link's UDP check.
//	-mode probe    -count UDP datagrams to a -proto udp server at -addr;
//	               prints the share that came back and their round trips,
//	               which shows the link's loss and delay as configured.
//
// KCP sessions: kcp-go without encryption or FEC (plain KCP segments, as
// Zinx's), stream mode, nodelay 1/10/2/1, windows -sndwnd/-rcvwnd. TCP
// connections have TCP_NODELAY, Go's default.
//
// Frames are Zinx's TLV (src/codec/tlv.c): message ID and payload length,
// both unsigned 32-bit big-endian, then the payload. The ID is the frame's
// number on its connection and the payload starts with its send time, so
// each echo is checked (order, length, content) and timed without a table
// of frames in flight.
package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"sync"
	"time"

	kcp "github.com/xtaci/kcp-go"
)

type options struct {
	mode, proto, addr, listen string
	conns, depth, payload     int
	duration, warmup, drain   time.Duration
	sndwnd, rcvwnd            int
	ackNoDelay                bool
	count                     int
	samples                   string
}

func parseFlags() options {
	var o options
	flag.StringVar(&o.mode, "mode", "client", "client, server or probe")
	flag.StringVar(&o.proto, "proto", "tcp", "tcp, kcp (or udp: server, probe)")
	flag.StringVar(&o.addr, "addr", "10.77.0.2:9000", "server address (client, probe)")
	flag.StringVar(&o.listen, "listen", "0.0.0.0:9000", "address to serve on (server)")
	flag.IntVar(&o.conns, "conns", 1, "connections")
	flag.IntVar(&o.depth, "depth", 1, "frames in flight per connection")
	flag.IntVar(&o.payload, "payload", 64, "payload bytes per frame (at least 8)")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measured time")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured time first")
	flag.DurationVar(&o.drain, "drain", 15*time.Second, "longest wait for the last echoes")
	flag.IntVar(&o.sndwnd, "sndwnd", 32, "KCP send window (segments)")
	flag.IntVar(&o.rcvwnd, "rcvwnd", 32, "KCP receive window (segments)")
	flag.BoolVar(&o.ackNoDelay, "acknodelay", false, "KCP: acknowledge at once")
	flag.IntVar(&o.count, "count", 1000, "datagrams (probe)")
	flag.StringVar(&o.samples, "samples", "", "append every round trip (us, one a line) to this file")
	flag.Parse()
	if o.payload < 8 {
		o.payload = 8
	}
	if o.depth < 1 {
		o.depth = 1
	}
	return o
}

func tuneKCP(s *kcp.UDPSession, o options) {
	s.SetStreamMode(true)
	s.SetNoDelay(1, 10, 2, 1)
	s.SetWindowSize(o.sndwnd, o.rcvwnd)
	s.SetACKNoDelay(o.ackNoDelay)
	s.SetMtu(1400)
}

func dial(o options) (net.Conn, error) {
	switch o.proto {
	case "tcp":
		return net.Dial("tcp", o.addr)
	case "kcp":
		s, err := kcp.DialWithOptions(o.addr, nil, 0, 0)
		if err != nil {
			return nil, err
		}
		tuneKCP(s, o)
		return s, nil
	}
	return nil, fmt.Errorf("unknown -proto %q", o.proto)
}

// ------------------------------------------------------------ client

// A connection's frames: the round trips (ns) of the frames sent inside
// the measured window.
type connResult struct {
	rtts []int64
	err  error
}

type clock struct {
	start              time.Time
	measureFrom, until int64 // ns since start
}

func (c clock) now() int64 { return int64(time.Since(c.start)) }

func putFrame(buf []byte, seq uint32, sent int64) {
	binary.BigEndian.PutUint32(buf[0:], seq)
	binary.BigEndian.PutUint32(buf[4:], uint32(len(buf)-8))
	binary.BigEndian.PutUint64(buf[8:], uint64(sent))
	for i := 16; i < len(buf); i++ {
		buf[i] = byte(seq) + byte(i)
	}
}

// checkFrame returns the send time of frame seq, or an error when the
// echo is not that frame.
func checkFrame(buf []byte, seq uint32) (int64, error) {
	if id := binary.BigEndian.Uint32(buf[0:]); id != seq {
		return 0, fmt.Errorf("frame %d came back as %d (order)", seq, id)
	}
	if n := binary.BigEndian.Uint32(buf[4:]); int(n) != len(buf)-8 {
		return 0, fmt.Errorf("frame %d: length %d", seq, n)
	}
	for i := 16; i < len(buf); i++ {
		if buf[i] != byte(seq)+byte(i) {
			return 0, fmt.Errorf("frame %d: payload byte %d differs", seq, i-8)
		}
	}
	return int64(binary.BigEndian.Uint64(buf[8:])), nil
}

// runConn keeps depth frames in flight until the window ends, then
// waits for those still out (up to drain) and closes.
func runConn(c net.Conn, o options, clk clock) connResult {
	defer c.Close()
	var res connResult
	size := 8 + o.payload
	out := make([]byte, size)
	in := make([]byte, size)
	var sent, recvd uint32
	send := func() error {
		putFrame(out, sent, clk.now())
		sent++
		_, err := c.Write(out)
		return err
	}
	for i := 0; i < o.depth; i++ {
		if res.err = send(); res.err != nil {
			return res
		}
	}
	for recvd < sent {
		c.SetReadDeadline(time.Now().Add(o.drain))
		if _, err := io.ReadFull(c, in); err != nil {
			res.err = fmt.Errorf("after %d echoes: %w", recvd, err)
			return res
		}
		t, err := checkFrame(in, recvd)
		if err != nil {
			res.err = err
			return res
		}
		recvd++
		now := clk.now()
		if t >= clk.measureFrom && t < clk.until {
			res.rtts = append(res.rtts, now-t)
		}
		if now < clk.until {
			if res.err = send(); res.err != nil {
				return res
			}
		}
	}
	return res
}

type report struct {
	Proto      string  `json:"proto"`
	Conns      int     `json:"conns"`
	Depth      int     `json:"depth"`
	Payload    int     `json:"payload"`
	Frames     int     `json:"frames"`
	FramesPerS float64 `json:"frames_per_s"`
	P50        float64 `json:"p50_ms"`
	P99        float64 `json:"p99_ms"`
	P999       float64 `json:"p999_ms"`
	Max        float64 `json:"max_ms"`
	Errors     int     `json:"errors"`
}

// percentile of sorted samples (ns), in ms: the nearest-rank value.
func percentile(s []int64, p float64) float64 {
	if len(s) == 0 {
		return 0
	}
	i := int(p*float64(len(s))+0.999999) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(s) {
		i = len(s) - 1
	}
	return float64(s[i]) / 1e6
}

func runClient(o options) error {
	conns := make([]net.Conn, 0, o.conns)
	for i := 0; i < o.conns; i++ {
		c, err := dial(o)
		if err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		conns = append(conns, c)
	}
	clk := clock{start: time.Now(), measureFrom: int64(o.warmup)}
	clk.until = clk.measureFrom + int64(o.duration)
	results := make([]connResult, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func(i int, c net.Conn) {
			defer wg.Done()
			results[i] = runConn(c, o, clk)
		}(i, c)
	}
	wg.Wait()
	var all []int64
	r := report{Proto: o.proto, Conns: o.conns, Depth: o.depth, Payload: o.payload}
	for i, res := range results {
		all = append(all, res.rtts...)
		if res.err != nil {
			r.Errors++
			fmt.Fprintf(os.Stderr, "zinx-kcp-rtt: connection %d: %v\n", i, res.err)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	if err := appendSamples(o.samples, all); err != nil {
		return err
	}
	r.Frames = len(all)
	r.FramesPerS = float64(len(all)) / o.duration.Seconds()
	r.P50, r.P99, r.P999 = percentile(all, 0.50), percentile(all, 0.99), percentile(all, 0.999)
	r.Max = percentile(all, 1)
	b, _ := json.Marshal(r)
	fmt.Println(string(b))
	if r.Errors > 0 {
		return errors.New("some connections failed")
	}
	return nil
}

// appendSamples adds the round trips to path (none: no file), so that a
// script can pool the frames of several runs before taking percentiles.
func appendSamples(path string, rtts []int64) error {
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for _, v := range rtts {
		fmt.Fprintln(w, v/1000)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ------------------------------------------------------------ servers

func echo(c net.Conn) {
	defer c.Close()
	io.Copy(c, c)
}

func runServer(o options) error {
	switch o.proto {
	case "tcp":
		l, err := net.Listen("tcp", o.listen)
		if err != nil {
			return err
		}
		fmt.Printf("listening on %s\n", l.Addr())
		for {
			c, err := l.Accept()
			if err != nil {
				return err
			}
			go echo(c)
		}
	case "kcp":
		l, err := kcp.ListenWithOptions(o.listen, nil, 0, 0)
		if err != nil {
			return err
		}
		fmt.Printf("listening on %s\n", l.Addr())
		for {
			s, err := l.AcceptKCP()
			if err != nil {
				return err
			}
			tuneKCP(s, o)
			go echo(s)
		}
	case "udp":
		pc, err := net.ListenPacket("udp", o.listen)
		if err != nil {
			return err
		}
		fmt.Printf("listening on %s\n", pc.LocalAddr())
		buf := make([]byte, 65536)
		for {
			n, a, err := pc.ReadFrom(buf)
			if err != nil {
				return err
			}
			pc.WriteTo(buf[:n], a)
		}
	}
	return fmt.Errorf("unknown -proto %q", o.proto)
}

// ------------------------------------------------------------ probe

type probeReport struct {
	Sent     int     `json:"sent"`
	Received int     `json:"received"`
	Delivery float64 `json:"delivery"`
	Min      float64 `json:"min_ms"`
	P50      float64 `json:"p50_ms"`
	Max      float64 `json:"max_ms"`
	Reorder  int     `json:"reordered"`
}

// runProbe sends numbered, timed datagrams 1 ms apart and collects the
// echoes for a second after the last.
func runProbe(o options) error {
	c, err := net.Dial("udp", o.addr)
	if err != nil {
		return err
	}
	defer c.Close()
	start := time.Now()
	done := make(chan probeReport)
	go func() {
		var r probeReport
		var rtts []int64
		buf := make([]byte, 64)
		last := -1
		for {
			c.SetReadDeadline(time.Now().Add(time.Second + time.Duration(o.count)*time.Millisecond))
			n, err := c.Read(buf)
			if err != nil {
				break
			}
			if n != 16 {
				continue
			}
			seq := int(binary.BigEndian.Uint64(buf[0:]))
			rtts = append(rtts, int64(time.Since(start))-int64(binary.BigEndian.Uint64(buf[8:])))
			if seq < last {
				r.Reorder++
			}
			last = seq
		}
		sort.Slice(rtts, func(i, j int) bool { return rtts[i] < rtts[j] })
		r.Received = len(rtts)
		r.Min, r.P50, r.Max = percentile(rtts, 0), percentile(rtts, 0.5), percentile(rtts, 1)
		done <- r
	}()
	pkt := make([]byte, 16)
	for i := 0; i < o.count; i++ {
		binary.BigEndian.PutUint64(pkt[0:], uint64(i))
		binary.BigEndian.PutUint64(pkt[8:], uint64(time.Since(start)))
		if _, err := c.Write(pkt); err != nil {
			return err
		}
		time.Sleep(time.Millisecond)
	}
	r := <-done
	r.Sent = o.count
	r.Delivery = float64(r.Received) / float64(r.Sent)
	b, _ := json.Marshal(r)
	fmt.Println(string(b))
	return nil
}

func main() {
	o := parseFlags()
	var err error
	switch o.mode {
	case "client":
		err = runClient(o)
	case "server":
		err = runServer(o)
	case "probe":
		err = runProbe(o)
	default:
		err = fmt.Errorf("unknown -mode %q", o.mode)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "zinx-kcp-rtt: %v\n", err)
		os.Exit(1)
	}
}
