# Turns the raw results of scripts/bench.sh into the markdown report.
# Plain POSIX awk (Debian's default is mawk).
#
# Input 1, one line per run (tab-separated):
#   conns payload depth server round frames_per_s p99_us cpu_us_per_frame
#   ctxsw_per_frame minflt_per_frame client_cpu_pct status
# Input 2, one line per server (memory):
#   server opened idle_kib_per_conn echo_kib_per_conn rss_before_kib status
# Variables: servers (space-separated, in column order), hold (connections).

BEGIN {
    ns = split(servers, srv, " ")
    label["zinx-w0"] = "zinx w0"
    label["zinx-w10"] = "zinx w10"
    label["zinx-bind"] = "zinx Bind w1024"
    label["zinx-dyn"] = "zinx DynamicBind w10"
    label["zinx-uring"] = "zinx w0 io_uring"
    label["epoll"] = "epoll"
    label["libuv"] = "libuv"
    label["libevent"] = "libevent"
    label["go"] = "go"
    nrows = 0
}

FNR == NR {
    row = $1 SUBSEP $2 SUBSEP $3
    if (!(row in seen)) {
        seen[row] = 1
        rows[++nrows] = row
    }
    k = row SUBSEP $4
    if ($12 != "ok") {
        bad[k]++
        next
    }
    cnt[k]++
    fps[k, cnt[k]] = $6
    p99[k, cnt[k]] = $7
    cpu[k, cnt[k]] = $8
    ctx[k, cnt[k]] = $9
    flt[k, cnt[k]] = $10
    cli[k, cnt[k]] = $11
    next
}

{
    mem_opened[$1] = $2
    mem_idle[$1] = $3
    mem_echo[$1] = $4
    mem_rss0[$1] = $5
    mem_status[$1] = $6
}

# Median of a[k, 1..n].
function median(a, k, n,    i, j, t, v) {
    for (i = 1; i <= n; i++)
        v[i] = a[k, i] + 0
    for (i = 2; i <= n; i++) {
        t = v[i]
        for (j = i - 1; j >= 1 && v[j] > t; j--)
            v[j + 1] = v[j]
        v[j + 1] = t
    }
    if (n % 2)
        return v[(n + 1) / 2]
    return (v[n / 2] + v[n / 2 + 1]) / 2
}

function have(row, s) {
    return ((row SUBSEP s) in cnt)
}

function med(a, row, s) {
    return median(a, row SUBSEP s, cnt[row SUBSEP s])
}

function row_cells(row,    f) {
    split(row, f, SUBSEP)
    return sprintf("| %s | %s | %s |", f[1], size_name(f[2]), f[3])
}

function size_name(b) {
    if (b >= 1024 && b % 1024 == 0)
        return (b / 1024) " KiB"
    return b " B"
}

function ratio(row, a, b) {
    if (!have(row, a) || !have(row, b) || med(fps, row, b) == 0)
        return ""
    return med(fps, row, a) / med(fps, row, b)
}

function cell_fail(row, s) {
    return ((row SUBSEP s) in bad) ? "FAIL" : "–"
}

# CPU per frame for the throughput table: 3 significant digits, or "?"
# when zinx-bench could not read the server's /proc (every round "").
function cpu_cell(row, s,    k, i, n, v) {
    k = row SUBSEP s
    for (i = 1; i <= cnt[k]; i++)
        if (cpu[k, i] != "")
            n++
    if (n < cnt[k])
        return "?"
    v = med(cpu, row, s)
    return sprintf(v >= 10 ? "%.1f" : "%.2f", v)
}

function print_throughput(    i, j, row, line) {
    print "### Echo throughput"
    print ""
    print "Echoed frames per second (thousands), median of the rounds;" \
          " beside it the server's CPU time per frame in microseconds" \
          " (user + system, every thread, over the measured window;" \
          " median of the rounds, table below)."
    print ""
    line = "| conns | payload | depth |"
    for (j = 1; j <= ns; j++)
        line = line " " label[srv[j]] " |"
    print line
    line = "|---:|---:|---:|"
    for (j = 1; j <= ns; j++)
        line = line "---:|"
    print line
    for (i = 1; i <= nrows; i++) {
        row = rows[i]
        line = row_cells(row)
        for (j = 1; j <= ns; j++) {
            if (have(row, srv[j]))
                line = line sprintf(" %.1f · %s µs |",
                                    med(fps, row, srv[j]) / 1000,
                                    cpu_cell(row, srv[j]))
            else
                line = line " " cell_fail(row, srv[j]) " |"
        }
        print line
    }
    print ""
}

function print_ratios(    i, j, z, row, line, r, nz, zs, np, ps) {
    nz = 0
    np = 0
    for (j = 1; j <= ns; j++) {
        if (srv[j] ~ /^zinx/)
            zs[++nz] = srv[j]
        else
            ps[++np] = srv[j]
    }
    if (nz == 0 || np == 0)
        return
    print "### Ratios"
    print ""
    print "zinx-echo's median frames/s divided by the peer's (above 1:" \
          " zinx-echo is faster)."
    print ""
    line = "| conns | payload | depth |"
    for (z = 1; z <= nz; z++)
        for (j = 1; j <= np; j++)
            line = line " " label[zs[z]] " ÷ " ps[j] " |"
    print line
    line = "|---:|---:|---:|"
    for (z = 1; z <= nz * np; z++)
        line = line "---:|"
    print line
    for (i = 1; i <= nrows; i++) {
        row = rows[i]
        line = row_cells(row)
        for (z = 1; z <= nz; z++)
            for (j = 1; j <= np; j++) {
                r = ratio(row, zs[z], ps[j])
                line = line (r == "" ? " – |" : sprintf(" %.2f |", r))
            }
        print line
    }
    print ""
}

# A table of one per-run figure: median of a[], printed with fmt.
function print_figure(title, text, a, fmt,    i, j, row, line) {
    print "### " title
    print ""
    print text
    print ""
    line = "| conns | payload | depth |"
    for (j = 1; j <= ns; j++)
        line = line " " label[srv[j]] " |"
    print line
    line = "|---:|---:|---:|"
    for (j = 1; j <= ns; j++)
        line = line "---:|"
    print line
    for (i = 1; i <= nrows; i++) {
        row = rows[i]
        line = row_cells(row)
        for (j = 1; j <= ns; j++) {
            if (have(row, srv[j]))
                line = line sprintf(" " fmt " |", med(a, row, srv[j]))
            else
                line = line " " cell_fail(row, srv[j]) " |"
        }
        print line
    }
    print ""
}

function print_memory(    j, s) {
    print "### Memory per connection"
    print ""
    print "Server RSS growth divided by the connections held (" hold \
          " asked; Bind and DynamicBind at most 1000), idle and after" \
          " one 64 B echo on each."
    print ""
    print "| server | connections | idle, KiB each | after one echo," \
          " KiB each | RSS before, KiB |"
    print "|---|---:|---:|---:|---:|"
    for (j = 1; j <= ns; j++) {
        s = srv[j]
        if (!(s in mem_status))
            continue
        if (mem_status[s] != "ok") {
            print "| " label[s] " | FAIL (" mem_status[s] ") | | | |"
            continue
        }
        printf "| %s | %d | %.2f | %.2f | %d |\n", label[s], mem_opened[s],
               mem_idle[s], mem_echo[s], mem_rss0[s]
    }
    print ""
}

function verdict(ok) {
    return ok ? "met" : "**missed**"
}

function find_row(c, p, d) {
    return c SUBSEP p SUBSEP d
}

# zinx (z) against the epoll ceiling on one row, at least `want` times.
function target_ceiling(z, c, p, d, want,    row, r) {
    row = find_row(c, p, d)
    r = ratio(row, z, "epoll")
    if (r == "")
        return
    printf "- %s, %d conns, %s, depth %d: %.2f × epoll (target ≥ %.2f):" \
           " %s\n", label[z], c, size_name(p), d, r, want,
           verdict(r >= want)
}

# Lowest ratio of zinx (z) to peer (s) over every row.
function target_every_row(z, s, want,    i, r, lo, where, f) {
    lo = ""
    for (i = 1; i <= nrows; i++) {
        r = ratio(rows[i], z, s)
        if (r != "" && (lo == "" || r < lo)) {
            lo = r
            where = rows[i]
        }
    }
    if (lo == "")
        return
    split(where, f, SUBSEP)
    printf "- %s ≥ %.2f × %s in every row: lowest %.2f (%s conns, %s," \
           " depth %s): %s\n", label[z], want, s, lo, f[1],
           size_name(f[2]), f[3], verdict(lo >= want)
}

# 1,000 connections against 100, for every payload and depth measured.
function target_scaling(z, want,    i, f, hi, lo, r, worst, where, n) {
    worst = ""
    n = 0
    for (i = 1; i <= nrows; i++) {
        split(rows[i], f, SUBSEP)
        if (f[1] != 1000)
            continue
        lo = find_row(100, f[2], f[3])
        hi = rows[i]
        if (!have(lo, z) || !have(hi, z) || med(fps, lo, z) == 0)
            continue
        r = med(fps, hi, z) / med(fps, lo, z)
        n++
        if (worst == "" || r < worst) {
            worst = r
            where = size_name(f[2]) ", depth " f[3]
        }
    }
    if (n == 0)
        return
    printf "- %s, 1,000 conns within %d %% of 100 conns: lowest %.2f" \
           " (%s): %s\n", label[z], (1 - want) * 100 + 0.5, worst, where,
           verdict(worst >= want)
}

function target_memory(z) {
    if (!(z in mem_status) || mem_status[z] != "ok")
        return
    printf "- %s memory: %.2f KiB idle (target ≤ 1): %s; %.2f KiB after" \
           " one echo (target ≤ 2): %s\n", label[z], mem_idle[z],
           verdict(mem_idle[z] <= 1), mem_echo[z], verdict(mem_echo[z] <= 2)
}

function print_targets(    j, z, p) {
    print "### Targets of issue 3"
    print ""
    target_ceiling("zinx-w0", 100, 64, 1, 0.95)
    target_ceiling("zinx-w0", 100, 1024, 1, 0.95)
    target_ceiling("zinx-w0", 100, 64, 16, 0.95)
    target_ceiling("zinx-w0", 100, 1024, 16, 0.95)
    target_every_row("zinx-w10", "epoll", 0.75)
    target_scaling("zinx-w0", 0.9)
    target_scaling("zinx-w10", 0.9)
    for (j = 1; j <= 2; j++) {
        z = j == 1 ? "zinx-w0" : "zinx-w10"
        for (p = 1; p <= ns; p++)
            if (srv[p] == "libuv" || srv[p] == "libevent")
                target_every_row(z, srv[p], 1.5)
    }
    target_memory("zinx-w0")
    target_memory("zinx-w10")
    print ""
    print "### Targets of issue 9"
    print ""
    target_ceiling("zinx-w0", 100, 64, 1, 0.98)
    target_ceiling("zinx-w0", 100, 1024, 1, 0.98)
    target_ceiling("zinx-w0", 100, 64, 16, 0.98)
    target_ceiling("zinx-w0", 100, 1024, 16, 0.98)
    target_scaling("zinx-w0", 0.95)
    target_every_row("zinx-w10", "epoll", 0.85)
    target_ceiling("zinx-uring", 100, 64, 1, 1.05)
    target_ceiling("zinx-uring", 100, 1024, 1, 1.05)
    target_ceiling("zinx-uring", 1000, 64, 1, 1.05)
    target_ceiling("zinx-uring", 1000, 1024, 1, 1.05)
    print ""
}

END {
    print_throughput()
    print_ratios()
    print_figure("Latency p99", "Microseconds, median of the rounds'" \
                 " p99 (zinx-bench's histogram).", p99, "%.0f")
    print_figure("Server CPU per frame", "Microseconds of server CPU" \
                 " (user + system, every thread) per echoed frame, from" \
                 " /proc/PID/stat over the measured window.", cpu, "%.2f")
    print_figure("Server context switches per frame", "Voluntary +" \
                 " involuntary, every thread, from /proc/PID/task/*/status.",
                 ctx, "%.3f")
    print_figure("Server page faults per frame", "Minor faults, every" \
                 " thread, from /proc/PID/stat: memory given back to the" \
                 " kernel and touched again.", flt, "%.3f")
    print_figure("Client CPU", "Percent of one core used by zinx-bench" \
                 " (near 100: the load generator, not the server, is" \
                 " the limit).", cli, "%.0f")
    print_memory()
    print_targets()
}
