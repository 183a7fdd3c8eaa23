#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Turns the sweep of `scripts/bench --sweep` (DIR/sweep.csv, DIR/ssh.csv) into heat maps, one
# PNG per figure (DIR/sweep-*.png), a report (DIR/sweep.md) and `bench:` lines of the ratios.
#
#   scripts/bench-heatmap.sh DIR
#
# Each map has one column per loss rate and one row per link profile; a cell shows the figure
# (large) and the measurements it comes from (small), and its colour says whether ktun meets
# its target there: green met, red missed, blue no target at that point, grey not measured.
# Targets (same flags on both tunnels for `ktun`; ktun's best settings between ktun ends for
# `ktun-best`):
#   message p99 <= 0.8 x kcptun's and <= TCP BBR's; <= 1.3 x base RTT + 10 ms where loss <= 3 %;
#   message max <= kcptun's; bulk goodput >= 2 x kcptun's, and for ktun-best >= TCP BBR's at
#   >= 1 % loss; wire bytes per delivered byte <= 1.45 (ktun, fixed FEC) and for ktun-best
#   <= 1.10 at 0 % loss, <= 1.25 at 1-3 %; tunnel CPU <= 23 s/GB and peak RSS <= 4.3 MB (the
#   single-link benchmark's figures, docs/bench.md); OpenSSH scp times and echo p99 <= kcptun's.
# The header lines of the report come from the environment scripts/bench exports.
set -eu
[ $# -eq 1 ] || { echo "usage: scripts/bench-heatmap.sh DIR" >&2; exit 2; }
DIR=$1
CSV=$DIR/sweep.csv
SSHCSV=$DIR/ssh.csv
[ -s "$CSV" ] || { echo "bench-heatmap: $CSV missing or empty" >&2; exit 1; }
TMP=$(mktemp -d)
[ -n "${HEATMAP_KEEP:-}" ] || trap 'rm -rf "$TMP"' EXIT

# One gnuplot script per figure (TMP/NAME.gp), the missed targets (TMP/missed), the ratio lines
# (stdout).
awk -F, -v tmp="$TMP" -v dir="$DIR" '
function isnum(x) { return x != "" && x != "NA" && x ~ /^-?[0-9.]+$/ }
function get(p, l, s, c) { return ((p, l, s, c) in V) ? V[p, l, s, c] : "NA" }
NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
{
    p = $col["delay_ms"] ":" $col["jitter_ms"] ":" $col["rate_mbit"]
    l = $col["loss_pct"]; s = $col["system"]
    if (!(p in seenp)) { seenp[p] = 1; prof[++np] = p }
    if (!(l in seenl)) { seenl[l] = 1; loss[++nl] = l }
    if (!(s in seens)) { seens[s] = 1 }
    for (c in col) V[p, l, s, c] = $col[c]
}
function proflabel(p,   a) {
    split(p, a, ":")
    return a[1] " ms" (a[2] + 0 > 0 ? " +-" a[2] : "") ", " a[3] " Mbit/s"
}
# cell FIG PANEL X Y CLASS BIG SMALL: one cell of a panel.
function cell(f, k, x, y, cls, big, small,   colour) {
    colour = cls == "met" ? "0x91cf60" : cls == "missed" ? "0xf46d43" : \
             cls == "none" ? "0xabd9e9" : "0xd9d9d9"
    data[f, k] = data[f, k] sprintf("%d %d %d \"%s\" \"%s\"\n", x, y, colour, big, small)
    count[f, cls]++
}
function ratio(a, b) { return (isnum(a) && isnum(b) && b + 0 > 0) ? a / b : "NA" }
function fmt(v, d) { return isnum(v) ? sprintf("%." d "f", v) : "n/a" }
function miss(f, title, p, l, what) {
    missed[f] = missed[f] sprintf("- %s, %s %% loss: %s\n", proflabel(p), l, what)
}
function line(name, v, unit) {
    if (isnum(v)) printf "bench: %s %.3f %s\n", name, v, unit
    else printf "bench: %s NA %s\n", name, unit
}
function tag(p,   a) { split(p, a, ":"); return "d" a[1] "j" a[2] "r" a[3] }
# Evaluates figure F for system S (pattern PAT where it applies) at profile P, loss L; sets
# CLS, BIG, SMALL and prints the bench line.
function eval_cell(f, s, pat, p, l,   c, t, k, b, v, rtt, need, ok, target, d, a, tc, ts) {
    split(p, a, ":"); d = a[1]; rtt = 2 * d
    CLS = "na"; BIG = "n/a"; SMALL = ""
    if (f == "p99-vs-kcptun" || f == "max-vs-kcptun") {
        c = "msg" pat (f == "p99-vs-kcptun" ? "_p99_ms" : "_max_ms")
        t = get(p, l, s, c); k = get(p, l, "kcptun", c); b = get(p, l, "tcp-bbr", c)
        v = ratio(t, k)
        line("sweep." tag(p) ".loss" l "." s "." pat (f == "p99-vs-kcptun" ? "_p99" : "_max") \
             "_vs_kcptun", v, "x")
        if (!isnum(v)) return
        BIG = sprintf("%.2f", v)
        if (f == "p99-vs-kcptun") {
            SMALL = sprintf("%.0f/%.0f/%s ms", t, k, fmt(b, 0))
            ok = t <= 0.8 * k && (!isnum(b) || t <= b + 0)
            CLS = ok ? "met" : "missed"
            if (!ok) miss(f, "", p, l, sprintf("%s %s p99 %.1f ms, kcptun %.1f, BBR %s", s, \
                pat == "64" ? "64 B" : "1 KB", t, k, fmt(b, 1)))
        } else {
            SMALL = sprintf("%.0f/%.0f ms", t, k)
            CLS = t <= k + 0 ? "met" : "missed"
            if (CLS == "missed") miss(f, "", p, l, sprintf("%s %s max %.1f ms, kcptun %.1f", \
                s, pat == "64" ? "64 B" : "1 KB", t, k))
        }
    } else if (f == "p99-vs-rtt") {
        t = get(p, l, s, "msg" pat "_p99_ms")
        v = ratio(t, rtt)
        line("sweep." tag(p) ".loss" l "." s "." pat "_p99_vs_rtt", v, "x")
        if (!isnum(v)) return
        BIG = sprintf("%.2f", v); need = 1.3 * rtt + 10
        SMALL = sprintf("%.0f ms (%.0f)", t, need)
        if (l + 0 > 3) { CLS = "none"; return }
        CLS = t <= need ? "met" : "missed"
        if (CLS == "missed") miss(f, "", p, l, sprintf("%s %s p99 %.1f ms > 1.3 x %d + 10 = %.0f ms", \
            s, pat == "64" ? "64 B" : "1 KB", t, rtt, need))
    } else if (f == "goodput-vs-bbr" || f == "goodput-vs-kcptun") {
        t = get(p, l, s, "down_mbit")
        k = get(p, l, f == "goodput-vs-bbr" ? "tcp-bbr" : "kcptun", "down_mbit")
        v = ratio(t, k)
        line("sweep." tag(p) ".loss" l "." s ".goodput_vs_" (f == "goodput-vs-bbr" ? "bbr" : "kcptun"), v, "x")
        if (!isnum(v)) return
        BIG = sprintf("%.2f", v); SMALL = sprintf("%.1f/%.1f Mbit/s", t, k)
        if (get(p, l, s, "down_verify") != "ok") { CLS = "missed"; SMALL = SMALL " FAIL"
            miss(f, "", p, l, s " bulk transfer not verified"); return }
        if (f == "goodput-vs-bbr") {
            if (s != "ktun-best" || l + 0 < 1) { CLS = "none"; return }
            CLS = v >= 1 ? "met" : "missed"
            if (CLS == "missed") miss(f, "", p, l, sprintf("%s %.1f Mbit/s, TCP BBR %.1f", s, t, k))
        } else {
            CLS = v >= 2 ? "met" : "missed"
            if (CLS == "missed") miss(f, "", p, l, sprintf("%s %.1f Mbit/s, kcptun %.1f (%.2fx)", s, t, k, v))
        }
    } else if (f == "wire") {
        v = get(p, l, s, "wire_b_per_b")
        line("sweep." tag(p) ".loss" l "." s ".wire", v, "B/B")
        if (!isnum(v)) return
        k = get(p, l, "kcptun", "wire_b_per_b")
        BIG = sprintf("%.2f", v); SMALL = "kcptun " fmt(k, 2)
        target = s == "ktun" ? 1.45 : l + 0 == 0 ? 1.10 : l + 0 <= 3 ? 1.25 : 0
        if (!target) { CLS = "none"; return }
        CLS = v <= target ? "met" : "missed"
        if (CLS == "missed") miss(f, "", p, l, sprintf("%s %.3f B/B > %.2f", s, v, target))
    } else if (f == "cpu") {
        v = get(p, l, s, "cpu_s_per_gb")
        if (!isnum(v)) return
        BIG = sprintf("%.1f", v); SMALL = "kcptun " fmt(get(p, l, "kcptun", "cpu_s_per_gb"), 0)
        CLS = v <= 23 ? "met" : "missed"
        if (CLS == "missed") miss(f, "", p, l, sprintf("%s %.1f s/GB > 23", s, v))
    } else if (f == "rss") {
        tc = get(p, l, s, "rss_client_mb"); ts = get(p, l, s, "rss_server_mb")
        if (!isnum(tc) || !isnum(ts)) return
        v = tc > ts ? tc : ts
        BIG = sprintf("%.1f", v); SMALL = sprintf("%.1f/%.1f MB", tc, ts)
        CLS = v <= 4.3 ? "met" : "missed"
        if (CLS == "missed") miss(f, "", p, l, sprintf("%s %.1f MB > 4.3", s, v))
    }
}
function panel(f, k, s, pat, title,   i, j) {
    ptitle[f, k] = title
    for (i = 1; i <= np; i++)
        for (j = 1; j <= nl; j++) {
            eval_cell(f, s, pat, prof[i], loss[j])
            cell(f, k, j - 1, np - i, CLS, BIG, SMALL)
        }
    npanel[f] = k
}
function figure(f, title, cols,   k, out, i, j, rows, xt, yt) {
    out = tmp "/" f ".gp"
    rows = int((npanel[f] + cols - 1) / cols)
    for (k = 1; k <= npanel[f]; k++) printf "$d%d << EOD\n%sEOD\n", k, data[f, k] > out
    printf "set terminal pngcairo size %d,%d font \",10\"\n", 150 + 125 * nl * cols + 90 * cols, \
        90 + 60 * np * rows + 60 * rows >> out
    printf "set output \"%s/sweep-%s.png\"\n", dir, f >> out
    xt = ""; for (j = 1; j <= nl; j++) xt = xt (j > 1 ? ", " : "") sprintf("\"%s %%%%\" %d", loss[j], j - 1)
    yt = ""; for (i = 1; i <= np; i++) yt = yt (i > 1 ? ", " : "") sprintf("\"%s\" %d", proflabel(prof[i]), np - i)
    printf "set xtics (%s) scale 0\nset ytics (%s) scale 0\n", xt, yt >> out
    printf "set xrange [-0.5:%f]\nset yrange [-0.5:%f]\nunset key\nset border 0\n", nl - 0.5, np - 0.5 >> out
    printf "set xlabel \"random loss each way\"\n" >> out
    printf "set multiplot layout %d,%d title \"%s\\ngreen: target met, red: missed, blue: no target here, grey: not measured\"\n", \
        rows, cols, title >> out
    for (k = 1; k <= npanel[f]; k++) {
        printf "set title \"%s\"\n", ptitle[f, k] >> out
        printf "plot $d%d using 1:2:(0.48):(0.48):3 with boxxyerror fs solid 1.0 noborder lc rgb variable, \\\n", k >> out
        printf "  $d%d using 1:2:4 with labels offset 0,0.5 font \",12\", \\\n", k >> out
        printf "  $d%d using 1:2:5 with labels offset 0,-0.7 font \",8\"\n", k >> out
    }
    printf "unset multiplot\n" >> out
    close(out)
    figs[++nfig] = f; ftitle[f] = title
}
END {
    # losses in numeric order
    for (i = 1; i <= nl; i++) for (j = i + 1; j <= nl; j++)
        if (loss[j] + 0 < loss[i] + 0) { t = loss[i]; loss[i] = loss[j]; loss[j] = t }
    nk = 0
    if ("ktun" in seens) kt[++nk] = "ktun"
    if ("ktun-best" in seens) kt[++nk] = "ktun-best"
    kname["ktun"] = "ktun (same flags as kcptun)"; kname["ktun-best"] = "ktun-best (ktun at both ends)"
    pname["64"] = "64 B every 20 ms"; pname["1k"] = "1 KB every 5 ms"
    split("p99-vs-kcptun p99-vs-rtt max-vs-kcptun", msgf, " ")
    ftit["p99-vs-kcptun"] = "message p99, ktun / kcptun (target <= 0.8 and <= TCP BBR; small: ktun/kcptun/BBR ms)"
    ftit["p99-vs-rtt"] = "message p99 / base RTT (target p99 <= 1.3 x RTT + 10 ms at <= 3 % loss; small: p99 (limit) ms)"
    ftit["max-vs-kcptun"] = "message max, ktun / kcptun (target <= 1; small: ktun/kcptun ms)"
    for (m = 1; m <= 3; m++) {
        f = msgf[m]; k = 0
        for (a = 1; a <= nk; a++) for (q = 0; q < 2; q++) {
            pat = q ? "1k" : "64"
            panel(f, ++k, kt[a], pat, kname[kt[a]] ", " pname[pat])
        }
        if (k) figure(f, ftit[f], 2)
    }
    ftit["goodput-vs-bbr"] = "download goodput, ktun / TCP BBR (target >= 1 for ktun-best at >= 1 % loss; small: Mbit/s)"
    ftit["goodput-vs-kcptun"] = "download goodput, ktun / kcptun (target >= 2; small: Mbit/s)"
    ftit["wire"] = "wire bytes per delivered byte (target ktun <= 1.45; ktun-best <= 1.10 at 0 %, <= 1.25 at 1-3 %)"
    ftit["cpu"] = "tunnel CPU s/GB, client + server (target <= 23, the single-link benchmark)"
    ftit["rss"] = "peak RSS MB, larger of client and server (target <= 4.3, the single-link benchmark)"
    split("goodput-vs-bbr goodput-vs-kcptun wire cpu rss", sysf, " ")
    for (m = 1; m <= 5; m++) {
        f = sysf[m]; k = 0
        for (a = 1; a <= nk; a++) panel(f, ++k, kt[a], "", kname[kt[a]])
        if (k) figure(f, ftit[f], 2)
    }
    out = tmp "/missed"
    printf "" > out
    for (i = 1; i <= nfig; i++) {
        f = figs[i]
        printf "%s|%d|%d|%d|%d|%s\n", f, count[f, "met"], count[f, "missed"], count[f, "none"], \
            count[f, "na"], ftitle[f] >> (tmp "/counts")
        if (missed[f] != "") printf "### sweep-%s.png: %s\n\n%s\n", f, ftitle[f], missed[f] >> out
    }
}' "$CSV"

if command -v gnuplot >/dev/null; then
    for gp in "$TMP"/*.gp; do
        gnuplot "$gp" || echo "bench-heatmap: gnuplot failed on $gp" >&2
    done
else
    echo "bench-heatmap: gnuplot missing: no heat maps" >&2
fi

# ---- the report ----
{
    echo "# ktun sweep: TCP BBR, kcptun and ktun over a grid of links"
    echo
    echo "Generated by \`scripts/bench --sweep\`; do not edit by hand (re-run it instead)."
    echo
    [ -n "${BENCH_CMD:-}" ] && echo "- Command: \`${BENCH_CMD}\` (as root, after \`make tools\` and \`make\`)"
    [ -n "${BENCH_DATE:-}" ] &&
        echo "- Run: ${BENCH_DATE}, ${BENCH_ELAPSED:-?} s; machine: ${BENCH_MACHINE:-?}"
    [ -n "${BENCH_VERSIONS:-}" ] && echo "- Versions: ${BENCH_VERSIONS}"
    [ -n "${BENCH_FLAGS:-}" ] &&
        echo "- \`kcptun\` and \`ktun\`: \`${BENCH_FLAGS}\`; \`ktun-best\` (ktun at both ends): \`${BENCH_BEST_FLAGS:-?}\`"
    echo "- Raw data: [sweep.csv](sweep.csv), [ssh.csv](ssh.csv)"
    echo
    echo "| heat map | met | missed | no target | not measured |"
    echo "|---|---:|---:|---:|---:|"
    while IFS='|' read -r f met mis none na title; do
        echo "| [sweep-$f.png](sweep-$f.png): $title | $met | $mis | $none | $na |"
    done <"$TMP/counts"
    echo
    for f in $(cut -d'|' -f1 "$TMP/counts"); do echo "![$f](sweep-$f.png)"; echo; done
    if [ -s "$SSHCSV" ]; then
        echo "## OpenSSH through each system (${BENCH_SSH:-})"
        echo
        echo "| loss % | system | scp up s | scp down s | ssh cat echo p50 / p99 / max ms | lost |"
        echo "|---:|---|---:|---:|---:|---:|"
        awk -F, 'NR > 1 {
            up = $7 ($8 == "ok" ? "" : " (" $8 ")"); down = $9 ($10 == "ok" ? "" : " (" $10 ")")
            printf "| %s | %s | %s | %s | %s / %s / %s | %s |\n", $4, $5, up, down, $11, $12, $13, $14
        }' "$SSHCSV"
        echo
        awk -F, 'NR > 1 { v[$4, $5, "up"] = $7; v[$4, $5, "down"] = $9; v[$4, $5, "p99"] = $12
                          if (!($4 in seen)) { seen[$4] = 1; ls[++n] = $4 } }
            function chk(l, s, w, unit,   t, k) {
                t = v[l, s, w]; k = v[l, "kcptun", w]
                if (t == "" || k == "" || t == "NA" || k == "NA") return
                printf "- %s %s at %s %% loss: %s %s, kcptun %s: %s\n", s, w == "p99" ? "echo p99" : "scp " w,
                    l, t, unit, k, t + 0 <= k + 0 ? "met" : "**missed**"
            }
            END { for (i = 1; i <= n; i++) for (s = 0; s < 2; s++) {
                      sy = s ? "ktun-best" : "ktun"
                      chk(ls[i], sy, "up", "s"); chk(ls[i], sy, "down", "s"); chk(ls[i], sy, "p99", "ms")
                  } }' "$SSHCSV"
        echo
    fi
    echo "## Where ktun misses a target"
    echo
    if [ -s "$TMP/missed" ]; then cat "$TMP/missed"; else echo "Nowhere in this run."; echo; fi
    echo "## All measurements"
    echo
    echo "| delay ms | jitter ms | rate Mbit/s | loss % | system | down Mbit/s | wire B/B | CPU s/GB | RSS MB c/s | 64 B p50/p99/max ms | 1 KB p50/p99/max ms |"
    echo "|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|"
    awk -F, 'NR > 1 {
        down = $6 ($7 == "ok" ? "" : " (" $7 ")")
        printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s / %s | %s / %s / %s | %s / %s / %s |\n",
            $1, $2, $3, $4, $5, down, $8, $9, $10, $11, $12, $13, $14, $16, $17, $18 }' "$CSV" |
        sed 's/\bNA\b/-/g'
} >"$DIR/sweep.md"
echo "bench-heatmap: wrote $DIR/sweep.md and $(find "$DIR" -maxdepth 1 -name 'sweep-*.png' | wc -l) heat maps" >&2
