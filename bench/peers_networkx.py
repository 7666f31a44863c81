"""PageRank of an edge list with networkx, as shoal's pagerank job defines it.

Usage: python3 peers_networkx.py GRAPH OUTPUT ITERATIONS DAMPING

Written by `shoal bench peers` beside its inputs and run under Debian's
/usr/bin/python3 (python3-networkx, python3-scipy).

The graph is read by networkx into a MultiDiGraph ("src dst" lines, '#'
comments), so a repeated edge counts as many times as shoal's job counts
it; networkx builds its sparse adjacency matrix (parallel edges summed).
The iteration is networkx's own pagerank_scipy step, written out because
nx.pagerank stops at a tolerance and shoal's job runs a fixed number of
iterations: ranks start at 1/N; each step gives every page
(1-d)/N + d * (sum of rank/outdegree over its in-links + dangling/N),
where dangling is the rank held by pages without out-links: shoal's
definition (jobs.RefPageRank). The ranks are written as "page<TAB>rank"
with Python's shortest round-trip repr of the float.
"""
import sys

import networkx as nx
import numpy as np
import scipy.sparse


def main():
    graph, output, iterations, alpha = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    G = nx.read_edgelist(graph, create_using=nx.MultiDiGraph, nodetype=str, comments="#", data=False)
    nodes = list(G)
    N = len(nodes)
    if N == 0:
        sys.exit("peers_networkx: %s has no edges" % graph)
    A = nx.to_scipy_sparse_array(G, nodelist=nodes, weight=None, dtype=float)
    S = A.sum(axis=1)
    S[S != 0] = 1.0 / S[S != 0]
    Q = scipy.sparse.csr_array(scipy.sparse.spdiags(S.T, 0, *A.shape))
    A = Q @ A
    x = np.repeat(1.0 / N, N)
    p = np.repeat(1.0 / N, N)
    is_dangling = np.where(S == 0)[0]
    for _ in range(iterations):
        x = alpha * (x @ A + sum(x[is_dangling]) * p) + (1 - alpha) * p
    tmp = output + ".tmp"
    with open(tmp, "w") as f:
        for n, r in zip(nodes, x):
            f.write("%s\t%r\n" % (n, float(r)))
    import os
    os.rename(tmp, output)


if __name__ == "__main__":
    main()
