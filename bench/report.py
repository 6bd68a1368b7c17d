#!/usr/bin/env python3
"""Turn one bench/run.sh run into bench/results/<timestamp>.json and the printed table.

Reads the oha outputs and CPU tick files the run left in its state directory (one per
case and round: <case>.r<N>.json, <case>.r<N>.cpu), the idle memory and handshake
figures it measured, takes the median of each figure over the rounds, and prints cmg's
figures as ratios to direct and to nginx's (one mTLS hop, two chained hops) from the
same run. Measures nothing itself. Exits 1 if any answer was not 200.
"""

import json
import os
import platform
import statistics
import sys

ROLES = ("gateway", "connector", "mp", "nginx1", "nginx2")
# Which CPU groups are the proxy in each kind of case.
PROXY = {"direct": (), "nginx1": ("nginx1",), "nginx2": ("nginx2",),
         "gateway": ("gateway", "connector")}


def ratio(a, b):
    return round(a / b, 3) if a is not None and b else None


def one_round(work, name, clk):
    """The figures of one round of one case: its oha output and CPU tick file."""
    d = json.load(open(os.path.join(work, name + ".json")))
    s, p = d["summary"], d["latencyPercentiles"]
    codes = {str(k): v for k, v in d.get("statusCodeDistribution", {}).items()}
    ticks = [int(x) for x in open(os.path.join(work, name + ".cpu")).read().split()]
    answered = sum(codes.values()) or 1
    cpu = {role: round((ticks[i + len(ROLES)] - ticks[i]) * 1e6 / clk / answered, 1)
           for i, role in enumerate(ROLES)}
    kind = name.split("_")[0]
    return {
        "requests_per_sec": round(s["requestsPerSec"], 1),
        "p50_ms": round(p["p50"] * 1000, 3),
        "p99_ms": round(p["p99"] * 1000, 3),
        "success_rate": s["successRate"],
        "status_codes": codes,
        # oha -z cancels the requests in flight at the deadline: not failures.
        "errors": {k: v for k, v in d.get("errorDistribution", {}).items()
                   if k != "aborted due to deadline"},
        "cpu_us_per_request": cpu,
        # CPU of the proxy processes of this case (gateway + connection point for cmg).
        "proxy_cpu_us_per_request": round(sum(cpu[r] for r in PROXY[kind]), 1),
    }


def median_of(rounds):
    """One case over its rounds: the median of each figure (taken figure by figure),
    status codes and errors summed, and every round kept as measured."""
    med = lambda key: round(statistics.median(r[key] for r in rounds), 3)
    codes, errors = {}, {}
    for r in rounds:
        for k, v in r["status_codes"].items():
            codes[k] = codes.get(k, 0) + v
        for k, v in r["errors"].items():
            errors[k] = errors.get(k, 0) + v
    proxy = [r["proxy_cpu_us_per_request"] for r in rounds]
    return {
        "requests_per_sec": med("requests_per_sec"),
        "p50_ms": med("p50_ms"),
        "p99_ms": med("p99_ms"),
        "success_rate": min(r["success_rate"] for r in rounds),
        "status_codes": codes,
        "errors": errors,
        "cpu_us_per_request": {role: round(statistics.median(
            r["cpu_us_per_request"][role] for r in rounds), 1) for role in ROLES},
        "proxy_cpu_us_per_request": round(statistics.median(proxy), 1),
        "proxy_cpu_us_per_request_range": [min(proxy), max(proxy)],
        "rounds": rounds,
    }


def main():
    (work, out, clk, memory, handshakes, losses, duration, runs, conns, gwt, cpt, mpt, ngw,
     oha, commit, nginx, *cases) = sys.argv[1:]
    clk, runs = int(clk), int(runs)
    memory, handshakes = json.loads(memory), json.loads(handshakes)
    results = {name: median_of([one_round(work, f"{name}.r{i}", clk)
                                for i in range(1, runs + 1)]) for name in cases}
    ratios = {}
    for size in ("1024", "65536"):
        if f"direct_h1_{size}" not in results:
            continue
        direct = results[f"direct_h1_{size}"]["requests_per_sec"]
        for name in (f"nginx1_h1_{size}", f"nginx2_h1_{size}", f"gateway_h1_{size}",
                     f"gateway_h2_{size}"):
            if name in results:
                ratios[name] = round(results[name]["requests_per_sec"] / direct, 3)
    vs_nginx = {}
    for size in ("1024", "65536"):
        if f"gateway_h1_{size}" not in results:
            continue
        gw = results[f"gateway_h1_{size}"]
        for ref in ("nginx1", "nginx2"):
            n = results[f"{ref}_h1_{size}"]
            vs_nginx[f"throughput_{size}_vs_{ref}"] = ratio(gw["requests_per_sec"], n["requests_per_sec"])
            vs_nginx[f"proxy_cpu_{size}_vs_{ref}"] = ratio(gw["proxy_cpu_us_per_request"],
                                                           n["proxy_cpu_us_per_request"])
    if memory:
        vs_nginx["idle_kib_per_connection_vs_nginx1"] = ratio(
            memory["gateway"]["kib_per_connection"], memory["nginx1"]["kib_per_connection"])
    if handshakes:
        vs_nginx["handshakes_vs_nginx1"] = ratio(handshakes["gateway"], handshakes["nginx1"])
    report = {
        "when_utc": os.path.basename(out)[:-5], "commit": commit, "load_generator": oha,
        "nginx": nginx,
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release(), "cpu": next(
            (l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
             if l.startswith("model name")), "?"),
            "loadavg_at_end": open("/proc/loadavg").read().split()[:3]},
        "settings": {"duration_s": int(duration), "rounds": runs, "connections": int(conns),
                     "threads": {"gateway": int(gwt), "connector": int(cpt), "mp": int(mpt),
                                 "nginx_workers": int(ngw)}},
        "results": results, "ratio_vs_direct": ratios, "cmg_vs_nginx": vs_nginx,
        "channel_losses": int(losses), "idle_memory": memory, "handshakes_per_sec": handshakes,
    }
    with open(out, "w") as f:
        json.dump(report, f, indent=2)

    print(f"\ncmg benchmark  {report['when_utc']}  commit {commit}  {oha}  {nginx}  "
          f"{os.cpu_count()} CPUs  {conns} connections  {duration}s per case x {runs} rounds "
          f"(medians)  load average "
          f"{' '.join(report['machine']['loadavg_at_end'])}")
    print(f"threads: gateway {gwt}, connector {cpt}, mp {mpt}, nginx workers {ngw} per instance\n")
    print(f"{'case':<20}{'req/s':>9}{'p50 ms':>8}{'p99 ms':>8}{'/direct':>8}"
          f"{'proxy CPU us/req':>17}{'(range)':>14}{'MP us/req':>10}  status")
    bad = False
    for name in cases:
        r = results[name]
        codes = ",".join(f"{k}:{v}" for k, v in r["status_codes"].items())
        if set(r["status_codes"]) - {"200"} or r["errors"]:
            bad = True
            codes += f" errors:{r['errors']}"
        rr = ratios.get(name)
        lo, hi = r["proxy_cpu_us_per_request_range"]
        spread = f"{lo}-{hi}" if r["proxy_cpu_us_per_request"] else ""
        print(f"{name:<20}{r['requests_per_sec']:>9.0f}{r['p50_ms']:>8.2f}{r['p99_ms']:>8.2f}"
              f"{(f'{rr:.3f}' if rr else ''):>8}{r['proxy_cpu_us_per_request'] or '':>17}"
              f"{spread:>14}{r['cpu_us_per_request']['mp']:>10}  {codes}")
    print("\ncmg (gateway + connection point, HTTP/1.1) against nginx, same run "
          "(CPU: lower is better, so <1 is ahead):")
    for k, v in vs_nginx.items():
        print(f"  {k:<40}{v}")
    if memory:
        print("\nidle mTLS connections (RSS of the server's processes; slope over the steps):")
        for name, m in memory.items():
            steps = ", ".join(f"{s['open']}/{s['requested']} open -> {s['rss_kib']} KiB"
                              for s in m["steps"])
            print(f"  {name:<8} before {m['rss_before_kib']} KiB; {steps}; "
                  f"{m['still_open_after_measurement']} still open after: "
                  f"{m['kib_per_connection']} KiB per connection")
            if any(s["open"] < s["requested"] for s in m["steps"]):
                print(f"  WARNING: {name}: not every idle connection opened: "
                      f"{[s['errors'] for s in m['steps']]}")
    if handshakes:
        print(f"\nfull mTLS handshakes/s (openssl s_time -new, TLS 1.3): {handshakes}")
    if int(losses):
        print(f"\nchannel lost {losses} time(s) during the run (connection point log)")
    print(f"\nwritten: {out}")
    if bad:
        print("WARNING: some responses were not 200 or failed; the figures above are suspect")
        sys.exit(1)


if __name__ == "__main__":
    main()
