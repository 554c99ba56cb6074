#!/usr/bin/env python3
"""The speed bench's scenario (benches/speed.rs) in ciw, for the comparison
in docs/simulate.md: M/M/10+M, 540 arrivals an hour, exponential handle with
mean 60 s, exponential patience with mean 120 s (9 Erlang on 10 agents),
10 simulated days, one replication on one core.

    pip install ciw
    python3 crates/loket-sim/benches/ciw_mmc.py [RUNS]

Prints one JSON line per run (customers that arrived, wall seconds,
customers per second, and the share that reneged: a check against Erlang
A's 6.7% from `loket erlang a --rate 540 --handle-s 60 --patience-s 120
--agents 10`), then the best and the median. Not run in CI.
"""

import json
import statistics
import sys
import time

import ciw

DAYS = 10
RATE_PER_S = 540 / 3600
HANDLE_S = 60.0
PATIENCE_S = 120.0


def run(seed):
    network = ciw.create_network(
        arrival_distributions=[ciw.dists.Exponential(rate=RATE_PER_S)],
        service_distributions=[ciw.dists.Exponential(rate=1 / HANDLE_S)],
        number_of_servers=[10],
        reneging_time_distributions=[ciw.dists.Exponential(rate=1 / PATIENCE_S)],
    )
    ciw.seed(seed)
    simulation = ciw.Simulation(network)
    started = time.perf_counter()
    simulation.simulate_until_max_time(DAYS * 86400)
    secs = time.perf_counter() - started
    customers = simulation.nodes[0].number_of_individuals
    records = simulation.get_all_records()
    reneged = sum(1 for r in records if r.record_type == "renege")
    return {
        "simulator": "ciw " + ciw.__version__,
        "scenario": "M/M/10+M, 10 days",
        "seed": seed,
        "customers": customers,
        "secs": round(secs, 3),
        "customers_per_sec": round(customers / secs),
        "reneged": round(reneged / customers, 4),
    }


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    rates = []
    for seed in range(runs):
        line = run(seed)
        rates.append(line["customers_per_sec"])
        print(json.dumps(line), flush=True)
    print(json.dumps({"runs": runs, "best": max(rates), "median": statistics.median(rates)}))


if __name__ == "__main__":
    main()
