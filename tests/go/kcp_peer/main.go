// kcp_peer: a real kcp-go peer for Zinx's interoperability tests.
//
// It speaks plain KCP (kcp-go with no crypt and no FEC, as Zinx itself
// runs kcp-go) carrying Zinx TLV frames: a message ID and a payload
// length, both unsigned 32-bit big-endian, then the payload
// (src/codec/tlv.c).
//
//	kcp_peer server [session flags]
//	    listens on -listen (default 127.0.0.1:0), prints its UDP port on a
//	    line of stdout, and echoes every frame back unchanged, frame by
//	    frame, on every session, until stdin reaches EOF or a signal.
//	kcp_peer client -addr HOST:PORT [-frames N] [-max BYTES] [-seed S]
//	                [-lockstep K] [-id ID] [-conv C] [session flags]
//	    sends N frames of sizes 0..max with content derived from the
//	    seed: the first K one at a time (each waits for its echo, and
//	    the round trips are measured), the rest pipelined (a writer and
//	    a reader at once). Every echo is checked for order, ID and
//	    content. Prints one summary line; exits 0 only when all matched.
//
// Session flags are Zinx's Kcp* keys: -nodelay -interval -resend -nc
// -sndwnd -rcvwnd -stream -acknodelay -mtu.
package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"os/signal"
	"sort"
	"sync/atomic"
	"syscall"
	"time"

	kcp "github.com/xtaci/kcp-go"
)

const headerLen = 8

type sessionFlags struct {
	nodelay, interval, resend, nc int
	sndwnd, rcvwnd, mtu           int
	stream, acknodelay            bool
}

func (f *sessionFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&f.nodelay, "nodelay", 1, "KcpNoDelay")
	fs.IntVar(&f.interval, "interval", 10, "KcpInterval (ms)")
	fs.IntVar(&f.resend, "resend", 2, "KcpResend")
	fs.IntVar(&f.nc, "nc", 1, "KcpNc")
	fs.IntVar(&f.sndwnd, "sndwnd", 32, "KcpSendWindow")
	fs.IntVar(&f.rcvwnd, "rcvwnd", 32, "KcpRecvWindow")
	fs.IntVar(&f.mtu, "mtu", 1400, "KcpMtu")
	fs.BoolVar(&f.stream, "stream", true, "KcpStreamMode")
	fs.BoolVar(&f.acknodelay, "acknodelay", false, "KcpACKNoDelay")
}

// apply gives s the settings Zinx gives its kcp-go sessions.
func (f *sessionFlags) apply(s *kcp.UDPSession) {
	s.SetStreamMode(f.stream)
	s.SetACKNoDelay(f.acknodelay)
	s.SetNoDelay(f.nodelay, f.interval, f.resend, f.nc)
	s.SetWindowSize(f.sndwnd, f.rcvwnd)
	s.SetMtu(f.mtu)
}

type frame struct {
	id   uint32
	data []byte
}

// encode is the frame's TLV bytes, header and payload in one buffer, so
// one Write carries one whole frame.
func (fr frame) encode() []byte {
	b := make([]byte, headerLen+len(fr.data))
	binary.BigEndian.PutUint32(b, fr.id)
	binary.BigEndian.PutUint32(b[4:], uint32(len(fr.data)))
	copy(b[headerLen:], fr.data)
	return b
}

// readFrame reads one TLV frame; a payload longer than max is an error
// rather than an allocation the peer chose.
func readFrame(r io.Reader, max int) (frame, error) {
	var h [headerLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return frame{}, err
	}
	n := binary.BigEndian.Uint32(h[4:])
	if n > uint32(max) {
		return frame{}, fmt.Errorf("frame of %d bytes over the limit %d", n, max)
	}
	fr := frame{id: binary.BigEndian.Uint32(h[:]), data: make([]byte, n)}
	_, err := io.ReadFull(r, fr.data)
	return fr, err
}

// ---- server -------------------------------------------------------------

// echo answers every frame of s with the same frame until s ends; an
// error other than the end is reported unless the server is closing.
func echo(s *kcp.UDPSession, max int, closing *atomic.Bool) {
	defer s.Close()
	frames := 0
	for {
		fr, err := readFrame(s, max)
		if err != nil {
			if !errors.Is(err, io.EOF) && !closing.Load() {
				fmt.Fprintf(os.Stderr, "kcp_peer server: conv %d from %s after %d frames: %v\n",
					s.GetConv(), s.RemoteAddr(), frames, err)
			}
			return
		}
		if _, err := s.Write(fr.encode()); err != nil {
			fmt.Fprintf(os.Stderr, "kcp_peer server: write: %v\n", err)
			return
		}
		frames++
	}
}

func runServer(args []string) int {
	fs := flag.NewFlagSet("server", flag.ExitOnError)
	var sf sessionFlags
	sf.register(fs)
	listen := fs.String("listen", "127.0.0.1:0", "UDP address to listen on")
	max := fs.Int("max", 1<<20, "largest payload accepted")
	fs.Parse(args)

	l, err := kcp.ListenWithOptions(*listen, nil, 0, 0)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kcp_peer server: %v\n", err)
		return 1
	}
	fmt.Printf("%d\n", l.Addr().(*net.UDPAddr).Port)
	os.Stdout.Sync()

	// The test that started the server ends it by closing its stdin (or
	// by a signal, or by dying: its stdin then closes too).
	var closing atomic.Bool
	stop := func() {
		closing.Store(true)
		l.Close()
	}
	go func() {
		io.Copy(io.Discard, os.Stdin)
		stop()
	}()
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		stop()
	}()
	for {
		s, err := l.AcceptKCP()
		if err != nil {
			return 0
		}
		sf.apply(s)
		go echo(s, *max, &closing)
	}
}

// ---- client -------------------------------------------------------------

// makeFrames is the run's frames, the same for the same seed: sizes
// spread over 0..max with both ends present, content pseudo-random.
func makeFrames(n, max int, seed int64, id uint32) []frame {
	rng := rand.New(rand.NewSource(seed))
	out := make([]frame, n)
	for i := range out {
		var size int
		switch {
		case i%50 == 0:
			size = 0
		case i%50 == 1:
			size = max
		case i%3 == 0:
			size = rng.Intn(64)
		default:
			size = rng.Intn(max + 1)
		}
		data := make([]byte, size)
		rng.Read(data)
		out[i] = frame{id: id, data: data}
	}
	return out
}

func check(i int, got, want frame) error {
	if got.id != want.id || len(got.data) != len(want.data) {
		return fmt.Errorf("frame %d: got id %d len %d, want id %d len %d",
			i, got.id, len(got.data), want.id, len(want.data))
	}
	for j := range got.data {
		if got.data[j] != want.data[j] {
			return fmt.Errorf("frame %d (len %d): byte %d differs", i, len(got.data), j)
		}
	}
	return nil
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(a, b int) bool { return d[a] < d[b] })
	k := int(float64(len(d)-1) * p)
	return d[k]
}

func runClient(args []string) int {
	fs := flag.NewFlagSet("client", flag.ExitOnError)
	var sf sessionFlags
	sf.register(fs)
	addr := fs.String("addr", "", "the server's UDP address, HOST:PORT")
	n := fs.Int("frames", 1000, "frames to send")
	max := fs.Int("max", 4096, "largest payload")
	seed := fs.Int64("seed", 1, "seed of the frames' sizes and content")
	lockstep := fs.Int("lockstep", 100, "frames sent one at a time before the pipelined rest")
	id := fs.Uint("id", 1, "message ID of every frame (the server's echo route)")
	conv := fs.Uint("conv", 0, "conversation ID (0: random, as kcp.DialWithOptions)")
	timeout := fs.Duration("timeout", 60*time.Second, "deadline of the whole run")
	fs.Parse(args)
	if *addr == "" {
		fmt.Fprintln(os.Stderr, "kcp_peer client: -addr is required")
		return 2
	}
	if *lockstep > *n {
		*lockstep = *n
	}

	var s *kcp.UDPSession
	var err error
	if *conv != 0 {
		var raddr *net.UDPAddr
		var conn *net.UDPConn
		if raddr, err = net.ResolveUDPAddr("udp", *addr); err == nil {
			if conn, err = net.ListenUDP("udp", nil); err == nil {
				s, err = kcp.NewConn3(uint32(*conv), raddr, nil, 0, 0, conn)
			}
		}
	} else {
		s, err = kcp.DialWithOptions(*addr, nil, 0, 0)
	}
	if err != nil {
		fmt.Printf("FAIL dial %s: %v\n", *addr, err)
		return 1
	}
	defer s.Close()
	sf.apply(s)
	start := time.Now()
	s.SetDeadline(start.Add(*timeout))

	frames := makeFrames(*n, *max, *seed, uint32(*id))
	r := bufio.NewReaderSize(s, 65536)
	var rtts []time.Duration
	bytes := 0
	fail := func(err error) int {
		fmt.Printf("FAIL conv=%d after %v: %v\n", s.GetConv(), time.Since(start), err)
		return 1
	}
	for i := 0; i < *lockstep; i++ {
		t0 := time.Now()
		if _, err := s.Write(frames[i].encode()); err != nil {
			return fail(fmt.Errorf("write frame %d: %w", i, err))
		}
		got, err := readFrame(r, *max)
		if err != nil {
			return fail(fmt.Errorf("read frame %d: %w", i, err))
		}
		rtts = append(rtts, time.Since(t0))
		if err := check(i, got, frames[i]); err != nil {
			return fail(err)
		}
		bytes += len(got.data)
	}

	werr := make(chan error, 1)
	go func() {
		for i := *lockstep; i < *n; i++ {
			if _, err := s.Write(frames[i].encode()); err != nil {
				werr <- fmt.Errorf("write frame %d: %w", i, err)
				return
			}
		}
		werr <- nil
	}()
	for i := *lockstep; i < *n; i++ {
		got, err := readFrame(r, *max)
		if err != nil {
			return fail(fmt.Errorf("read frame %d: %w", i, err))
		}
		if err := check(i, got, frames[i]); err != nil {
			return fail(err)
		}
		bytes += len(got.data)
	}
	if err := <-werr; err != nil {
		return fail(err)
	}
	fmt.Printf("OK conv=%d frames=%d bytes=%d lockstep=%d rtt_p50_ms=%.1f rtt_p99_ms=%.1f elapsed_ms=%d\n",
		s.GetConv(), *n, bytes, *lockstep,
		float64(percentile(rtts, 0.50).Microseconds())/1000,
		float64(percentile(rtts, 0.99).Microseconds())/1000,
		time.Since(start).Milliseconds())
	return 0
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: kcp_peer server|client [flags]")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "server":
		os.Exit(runServer(os.Args[2:]))
	case "client":
		os.Exit(runClient(os.Args[2:]))
	default:
		fmt.Fprintln(os.Stderr, "usage: kcp_peer server|client [flags]")
		os.Exit(2)
	}
}
