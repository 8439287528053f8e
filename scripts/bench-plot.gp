# SPDX-License-Identifier: GPL-2.0
# The bench's plot: gnuplot -e "dat='plot.dat'; png='bench.png'; title='...'" bench-plot.gp
# plot.dat (scripts/bench-report.py) holds six blocks, one per panel: "system" value, five
# systems (link, disk, peer, peerds, xdpmirror).
set terminal pngcairo size 1500,800 font ",10"
set output png
set multiplot layout 2,3 title title
set style fill solid 0.8 border -1
set boxwidth 0.6
set grid ytics
set yrange [0:*]
set offsets 0, 0, graph 0.1, 0
set xrange [-0.6:4.6]
unset key
titles = "'sequential 1M QD16 write, MiB/s' '4K write+flush p50, us (link: round trip)' '4K QD32 random write, IOPS' 'CPU s per GiB written, daemons (lower is better)' 'initial full sync, MiB/s' 'resync after disconnect, MiB/s'"
do for [i=0:5] {
	set title word(titles, i + 1)
	plot dat index i using 0:2:($0 + 1):xtic(1) with boxes linecolor variable, \
	     '' index i using 0:2:(sprintf($2 < 10 ? "%.2f" : "%.0f", $2)) with labels offset 0,0.7 notitle
}
unset multiplot
