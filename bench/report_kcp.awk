# Turns the raw results of scripts/bench-kcp.sh into the markdown report.
# Plain POSIX awk (Debian's default is mawk).
#
# Input 1, one line per loss, row and server (tab-separated): the round
# trips of every frame of every round together:
#   loss conns depth server frames p50_ms p99_ms p999_ms max_ms
# Input 2, one line per run:
#   loss conns depth server round frames_per_s p50_ms p99_ms p999_ms
#   max_ms status
# Variables: tcp, kcp (the two servers' names, as in the input).

function median(key,    n, i, j, v, t) {
    n = cnt[key]
    if (n == 0)
        return ""
    for (i = 1; i <= n; i++)
        v[i] = fps[key, i]
    for (i = 2; i <= n; i++)
        for (j = i; j > 1 && v[j - 1] > v[j]; j--) {
            t = v[j]; v[j] = v[j - 1]; v[j - 1] = t
        }
    return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}

function ratio(a, b) {
    return (a == "" || b == "" || b + 0 == 0) ? "-" : sprintf("%.2f", a / b)
}

FNR == NR {
    key = $1 SUBSEP $2 SUBSEP $3 SUBSEP $4
    for (f = 5; f <= 9; f++)
        pool[key, f] = $f
    next
}

{
    row = $1 SUBSEP $2 SUBSEP $3
    if (!(row in seen)) {
        seen[row] = 1
        rows[++nrows] = row
    }
    if ($11 != "ok") {
        bad[row, $4]++
        next
    }
    key = row SUBSEP $4
    fps[key, ++cnt[key]] = $6
    round_p99[key, $5] = $8
    if ($5 > maxround)
        maxround = $5
}

END {
    print "| loss | conns x depth | server | frames/s | frames | p50 | p99 | p99.9 | max |"
    print "|---|---|---|---:|---:|---:|---:|---:|---:|"
    for (i = 1; i <= nrows; i++) {
        split(rows[i], r, SUBSEP)
        for (s = 1; s <= 2; s++) {
            name = s == 1 ? tcp : kcp
            key = rows[i] SUBSEP name
            printf "| %s %% | %s x %s | %s | %.1f | %d | %.0f | %.0f | %.0f | %.0f |%s\n",
                r[1], r[2], r[3], name, median(key), pool[key, 5],
                pool[key, 6], pool[key, 7], pool[key, 8], pool[key, 9],
                bad[rows[i], name] ? " " bad[rows[i], name] " runs failed" : ""
        }
    }
    print ""
    print "| loss | conns x depth | KCP/TCP frames/s | KCP/TCP p50 | KCP/TCP p99 | p99 ratio per round |"
    print "|---|---|---:|---:|---:|---|"
    for (i = 1; i <= nrows; i++) {
        split(rows[i], r, SUBSEP)
        kt = rows[i] SUBSEP tcp
        kk = rows[i] SUBSEP kcp
        per = ""
        for (q = 1; q <= maxround; q++)
            per = per (q > 1 ? " " : "") \
                ratio(round_p99[kk, q], round_p99[kt, q])
        printf "| %s %% | %s x %s | %s | %s | %s | %s |\n", r[1], r[2], r[3],
            ratio(median(kk), median(kt)), ratio(pool[kk, 6], pool[kt, 6]),
            ratio(pool[kk, 7], pool[kt, 7]), per
    }
}
